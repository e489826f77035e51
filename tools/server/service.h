// The routes of `leanembed serve` (TEI 1.9 and OpenAI): request parsing and validation, admission
// (max_concurrent_requests → 429 at once), tokenization on the worker pool, batching through the
// Batcher, answers with TEI's timing headers, errors in each protocol's body.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "batcher.h"
#include "http_server.h"
#include "metrics.h"
#include "server.h"
#include "worker_pool.h"

namespace leanembed::server {

class Service {
 public:
  Service(const ServerOptions& options, Embedder& embedder, Metrics& metrics);
  ~Service();
  // On an event-loop thread: answers at once (GET routes, refusals) or hands the request on.
  void handle(HttpRequest&& request, std::shared_ptr<Exchange> exchange);
  // From now on /health answers 503 and new POSTs 503 (load balancers take the replica out).
  void start_draining() { draining_ = true; }
  int64_t in_flight() const { return in_flight_; }
  // Answers what is still waiting with 503 `error` and stops the threads.
  void stop(const std::string& error);

  struct Call;

 private:
  void answer(Call& call, HttpResponse response);
  void error(Call& call, int status, const std::string& message, const std::string& type);
  void embed_request(std::shared_ptr<Call> call, std::string body);
  void tokenize_request(std::shared_ptr<Call> call, std::string body);
  // What the answer needs besides the vectors.
  struct Shape {
    bool normalize = true;
    int64_t dims = 0;
    bool as_base64 = false;
    std::size_t chars = 0, inputs = 0;
    double tokenization_seconds = 0;
  };
  void finish_embedding(std::shared_ptr<Call> call, std::shared_ptr<Job> job, const Shape& shape);
  HttpResponse info_response() const;
  HttpResponse metrics_response() const;

  const ServerOptions options_;
  Embedder& embedder_;
  Metrics& metrics_;
  EmbedderInfo model_;                   // what does not change: max_length, hidden size, vocabulary
  std::vector<int64_t> special_ids_;     // the post-processor's special tokens (the empty text's ids)
  std::atomic<int64_t> in_flight_{0};
  std::atomic<bool> draining_{false};
  WorkerPool workers_;
  Batcher batcher_;
};

}  // namespace leanembed::server
