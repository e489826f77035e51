// Batching across requests: one encoder thread takes batches of inputs from a queue, filled up to a
// token budget (max_batch_tokens) and a count (max_batch_requests, 0 = no limit) in arrival order;
// while a batch runs, the next one is filled from what arrives. Before a batch runs, requests whose
// client has gone are dropped. A text's vector does not depend on its batch mates (the fast path is
// padding-free and computes each text on its own; tests/server checks bitwise equality).
//
// Every encoder run of the server happens on that one thread, the warm-up included: libgomp keeps a
// pool of OpenMP threads per thread that starts a parallel region, and once its pools hold more
// threads than there are cores it cuts its threads' spinning between regions to 100 rounds, whatever
// GOMP_SPINCOUNT says (a warm-up on the main thread made a second pool, by accident).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http_server.h"
#include "leanembed/embedder.h"
#include "metrics.h"

namespace leanembed::server {

using Clock = std::chrono::steady_clock;

// One request's inputs on their way through the encoder.
struct Job {
  std::vector<std::vector<int64_t>> ids;  // per input, as the encoder sees it
  std::vector<std::string> cache_texts;   // per input when the embedding cache applies (texts cut on the right): embedded by text
  std::shared_ptr<Exchange> exchange;     // asked whether the client has gone
  std::function<void(Job&)> on_done;      // called once, on the encoder thread, when every input is done (or dropped)
  std::weak_ptr<Job> self;                // for on_done, to keep the job alive past it

  // Filled by the batcher.
  std::vector<float> vectors;             // inputs × width floats (the embedder's dims)
  bool client_gone = false;
  int error_status = 0;                   // set (with error) if an input could not be embedded
  std::string error;
  void fail(int status, const std::string& message) {
    if (error_status) return;
    error_status = status;
    error = message;
  }
  Clock::time_point queued_at, first_batch_at{}, last_batch_end{};
  double inference_seconds = 0;

  std::size_t remaining = 0;  // inputs not yet done (batcher's)
  uint64_t last_batch = 0;    // the batch that last counted its inference time (batcher's)
};

struct BatchLimits {
  int64_t max_batch_tokens = 16384;
  int64_t max_batch_requests = 0;  // inputs per batch; 0 = no limit
};

class Batcher {
 public:
  // Starts the encoder thread and returns once it has embedded a first input (oneDNN builds its
  // kernels on the first run: the first request must not pay for it); rethrows what that threw.
  Batcher(Embedder& embedder, BatchLimits limits, Metrics& metrics);
  ~Batcher();
  // Queues the job's inputs; never blocks (the server's admission bounds the queue).
  void submit(std::shared_ptr<Job> job);
  // Inputs waiting (queued or in the next batch).
  int64_t queued() const;
  // Finishes every waiting job with `error` (shutdown after the grace period), then stops the thread.
  void stop(const std::string& error);

 private:
  struct Entry {
    std::shared_ptr<Job> job;
    std::size_t index;
  };
  void warm_up();
  void run();
  void fill_next_locked();
  void run_batch(std::vector<Entry>& batch);
  void compute(std::vector<Entry>& batch, std::vector<float>& out);

  Embedder& embedder_;
  BatchLimits limits_;
  Metrics& metrics_;
  const int64_t width_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Entry> pending_;
  std::vector<Entry> next_;
  int64_t next_tokens_ = 0;
  bool stopping_ = false;
  uint64_t batches_ = 0;
  std::thread thread_;
};

}  // namespace leanembed::server
