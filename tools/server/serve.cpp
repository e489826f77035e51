// run_server: the life cycle of `leanembed serve` — load, listen, serve, and on SIGTERM / SIGINT stop
// accepting, finish what is in flight (bounded by graceful_timeout_seconds), exit 0.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "http_server.h"
#include "leanembed/error.h"
#include "metrics.h"
#include "server.h"
#include "service.h"

namespace leanembed::server {

int run_server(const ServerOptions& options) {
  // Signals are taken by this thread only (sigtimedwait below): every thread started from here on
  // inherits the mask. SIGPIPE: a client that hangs up must not end the process.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  EmbedderOptions eo = options.embedder;
  eo.normalize = false;  // per request: the server keeps `dimensions` first, then normalises
  eo.dims = 0;
  Embedder embedder(eo);
  const EmbedderInfo info = embedder.info();
  if (options.max_batch_tokens < info.max_length) {
    throw Error(ErrorCode::invalid_argument, "--max-batch-tokens " + std::to_string(options.max_batch_tokens) +
                                                 " is less than the model's maximum input length " +
                                                 std::to_string(info.max_length) + ": a long input could never run");
  }
  Metrics metrics;
  Service service(options, embedder, metrics);  // its batcher warms the encoder up on its own thread
  HttpOptions ho;
  ho.hostname = options.hostname;
  ho.port = options.port;
  ho.payload_limit_bytes = options.payload_limit;
  ho.client_timeout_seconds = options.client_timeout_seconds;
  ho.max_connections = options.max_connections;
  HttpServer http(ho, [&service](HttpRequest&& r, std::shared_ptr<Exchange> e) { service.handle(std::move(r), std::move(e)); });
  std::fprintf(stderr, "leanembed serve: %s (%s path, %lld dims, max %lld tokens) listening on http://%s:%u\n",
               info.model_path.c_str(), info.path.c_str(), static_cast<long long>(info.hidden_size),
               static_cast<long long>(info.max_length), options.hostname.c_str(), static_cast<unsigned>(http.port()));
  std::fflush(stderr);

  int signal_number = 0;
  while (signal_number <= 0) signal_number = sigwaitinfo(&stop_signals, nullptr);
  std::fprintf(stderr, "leanembed serve: %s: no new connections; finishing %lld requests in flight\n",
               signal_number == SIGTERM ? "SIGTERM" : "SIGINT", static_cast<long long>(service.in_flight()));
  std::fflush(stderr);
  service.start_draining();
  http.stop_accepting();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(options.graceful_timeout_seconds);
  while (service.in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const int64_t left = service.in_flight();
  if (left > 0) {
    std::fprintf(stderr, "leanembed serve: %lld requests still in flight after %.0f s: answering them 503\n",
                 static_cast<long long>(left), options.graceful_timeout_seconds);
  }
  service.stop("the server is shutting down");  // answers whatever waits (503), stops the threads
  http.wait_for_answers_sent(2.0);
  http.stop();
  std::fprintf(stderr, "leanembed serve: stopped\n");
  return 0;
}

}  // namespace leanembed::server
