#include "metrics.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace leanembed::server {

namespace {

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::vector<double> seconds_bounds() { return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}; }
std::vector<double> count_bounds() { return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512}; }
std::vector<double> token_bounds() { return {16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768}; }

}  // namespace

void Histogram::observe(double value) {
  std::lock_guard lock(mutex_);
  std::size_t b = 0;
  while (b < bounds_.size() && value > bounds_[b]) ++b;
  ++counts_[b];
  sum_ += value;
  ++count_;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard lock(mutex_);
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cumulative = 0;
  for (std::size_t b = 0; b < bounds_.size(); ++b) {
    cumulative += counts_[b];
    out += name + "_bucket{le=\"" + number(bounds_[b]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + number(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : tokenization_seconds(seconds_bounds()), queue_seconds(seconds_bounds()), inference_seconds(seconds_bounds()),
      request_seconds(seconds_bounds()), batch_inputs(count_bounds()), batch_tokens(token_bounds()) {}

void Metrics::request(const std::string& route, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
}

void Metrics::client_gone(uint64_t inputs) {
  std::lock_guard lock(mutex_);
  ++gone_requests_;
  gone_inputs_ += inputs;
}

std::string Metrics::render(const Gauges& g) const {
  std::string out;
  {
    std::lock_guard lock(mutex_);
    out += "# HELP leanembed_requests_total Requests answered, by route and HTTP status.\n";
    out += "# TYPE leanembed_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
      const char* outcome = key.second < 400 ? "success" : key.second == 429 ? "overloaded" : key.second < 500 ? "client_error" : "server_error";
      out += "leanembed_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) +
             "\",outcome=\"" + outcome + "\"} " + std::to_string(n) + "\n";
    }
    out += "# HELP leanembed_client_gone_requests_total Requests dropped before compute because the client had gone.\n";
    out += "# TYPE leanembed_client_gone_requests_total counter\nleanembed_client_gone_requests_total " +
           std::to_string(gone_requests_) + "\n";
    out += "# HELP leanembed_client_gone_inputs_total Inputs of those requests not computed.\n";
    out += "# TYPE leanembed_client_gone_inputs_total counter\nleanembed_client_gone_inputs_total " +
           std::to_string(gone_inputs_) + "\n";
  }
  tokenization_seconds.write(out, "leanembed_tokenization_duration_seconds", "Tokenization time per request.");
  queue_seconds.write(out, "leanembed_queue_duration_seconds", "Time from tokenized to the first batch that runs the request.");
  inference_seconds.write(out, "leanembed_inference_duration_seconds", "Encoder time of the batches that ran the request.");
  request_seconds.write(out, "leanembed_request_duration_seconds", "Time from the request's arrival to its answer (successful requests).");
  batch_inputs.write(out, "leanembed_batch_inputs", "Inputs per encoder batch.");
  batch_tokens.write(out, "leanembed_batch_tokens", "Tokens per encoder batch.");
  auto gauge = [&](const std::string& name, const std::string& help, const std::string& value) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " + value + "\n";
  };
  gauge("leanembed_queue_inputs", "Inputs waiting for a batch.", std::to_string(g.queue_entries));
  gauge("leanembed_requests_in_flight", "Requests admitted and not yet answered.", std::to_string(g.in_flight));
  gauge("leanembed_resident_memory_bytes", "Resident set size of the process.", std::to_string(resident_bytes()));
  gauge("leanembed_model_loaded", "1 when the model is in memory (0 after an idle unload).", g.model_loaded ? "1" : "0");
  gauge("leanembed_model_loads", "Times the model was loaded.", std::to_string(g.model_loads));
  gauge("leanembed_model_unloads", "Times the model was unloaded.", std::to_string(g.model_unloads));
  gauge("leanembed_cache_hits", "Embedding cache hits.", std::to_string(g.cache_hits));
  gauge("leanembed_cache_misses", "Embedding cache misses.", std::to_string(g.cache_misses));
  return out;
}

uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace leanembed::server
