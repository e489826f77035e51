// Prometheus metrics of `leanembed serve` (GET /metrics, text exposition format 0.0.4): requests by
// route and status, the tokenization / queue / inference / total durations, batch sizes and tokens,
// queue depth, requests in flight, clients gone before compute, RSS and the model's state.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace leanembed::server {

// A histogram with fixed upper bounds (cumulative buckets, as Prometheus wants them).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double value);
  // Appends "<name>_bucket{le=…} …", "_sum", "_count" lines.
  void write(std::string& out, const std::string& name, const std::string& help) const;

 private:
  mutable std::mutex mutex_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct Gauges {  // read when /metrics is asked for
  int64_t queue_entries = 0, in_flight = 0;
  bool model_loaded = false;
  uint64_t model_loads = 0, model_unloads = 0;
  uint64_t cache_hits = 0, cache_misses = 0;
};

class Metrics {
 public:
  Metrics();
  void request(const std::string& route, int status);
  void client_gone(uint64_t inputs);
  Histogram tokenization_seconds, queue_seconds, inference_seconds, request_seconds, batch_inputs, batch_tokens;
  std::string render(const Gauges& gauges) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t gone_requests_ = 0, gone_inputs_ = 0;
};

// This process' resident set size, bytes (/proc/self/statm); 0 if unreadable.
uint64_t resident_bytes();

}  // namespace leanembed::server
