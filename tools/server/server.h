// `leanembed serve`: an embedding server that speaks text-embeddings-inference (TEI 1.9) and
// OpenAI's embeddings API, on the public C++ API (include/leanembed/). See README.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "leanembed/embedder.h"

namespace leanembed::server {

struct ServerOptions {
  EmbedderOptions embedder;            // normalize and dims are per request: the server sets them
  std::string served_model_name;       // "model" in OpenAI answers and model_id in /info
  std::string hostname = "127.0.0.1";
  uint16_t port = 3000;
  int64_t max_concurrent_requests = 512;  // requests admitted (queued or running); more → 429 at once
  int64_t max_batch_tokens = 16384;       // tokens per server batch (the embedder cuts it by batch_tokens)
  int64_t max_batch_requests = 0;         // inputs per server batch; 0 = no limit
  int64_t max_client_batch_size = 32;     // inputs per request; more → 422
  int tokenization_workers = 0;           // 0 = number of cores
  bool auto_truncate = false;             // default of `truncate`; without it long inputs → 422
  std::size_t payload_limit = 2000000;    // bytes of request body; more → 413
  std::string api_key;                    // "" = none; else `Authorization: Bearer <key>` or 401
  std::vector<std::string> cors_allow_origin;  // origins ("*" = any) answered with CORS headers
  unsigned client_timeout_seconds = 10;   // a connection silent this long is closed
  unsigned max_connections = 1024;        // open connections at most (more wait in the backlog)
  double graceful_timeout_seconds = 30;   // SIGTERM/SIGINT: how long requests in flight may take
};

// Loads the model, listens, serves until SIGTERM or SIGINT, finishes the requests in flight (up to
// graceful_timeout_seconds) and returns 0. Prints "leanembed serve: listening on http://HOST:PORT"
// on stderr once ready. Throws leanembed::Error for a model that does not load, std::runtime_error
// when it cannot listen.
int run_server(const ServerOptions& options);

}  // namespace leanembed::server
