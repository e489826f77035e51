#include "serve_command.h"

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "leanembed/error.h"
#include "server.h"

namespace leanembed::server {

namespace {

struct ServeFlags {
  ServerOptions server;
  std::string model = "Xenova/all-MiniLM-L6-v2";
  std::string model_cache_dir, dtype = "fp32", model_file, pooling, path = "auto", embedding_cache;
  std::string revision = "main", model_format = "auto";
  bool offline = false;
  int threads = 0;
  int64_t parallel_min_tokens = -1;
  int64_t max_length = 0;
  int64_t batch_size = EmbedderOptions{}.batch_size, batch_tokens = EmbedderOptions{}.batch_tokens;
  std::size_t max_memory = 0, cache_memory = 0;
  double idle_unload = 300;
  int port = 3000;
};

// TEI's variable for a flag, read when LEANEMBED_<FLAG> is not set (the command line wins over both).
// HOSTNAME is left out: shells and containers set it to the machine's name.
const std::vector<std::pair<const char*, const char*>> tei_variables = {
    {"LEANEMBED_MODEL", "MODEL_ID"},
    {"LEANEMBED_REVISION", "REVISION"},
    {"LEANEMBED_DTYPE", "DTYPE"},
    {"LEANEMBED_POOLING", "POOLING"},
    {"LEANEMBED_SERVED_MODEL_NAME", "SERVED_MODEL_NAME"},
    {"LEANEMBED_PORT", "PORT"},
    {"LEANEMBED_MAX_CONCURRENT_REQUESTS", "MAX_CONCURRENT_REQUESTS"},
    {"LEANEMBED_MAX_BATCH_TOKENS", "MAX_BATCH_TOKENS"},
    {"LEANEMBED_MAX_BATCH_REQUESTS", "MAX_BATCH_REQUESTS"},
    {"LEANEMBED_MAX_CLIENT_BATCH_SIZE", "MAX_CLIENT_BATCH_SIZE"},
    {"LEANEMBED_TOKENIZATION_WORKERS", "TOKENIZATION_WORKERS"},
    {"LEANEMBED_AUTO_TRUNCATE", "AUTO_TRUNCATE"},
    {"LEANEMBED_PAYLOAD_LIMIT", "PAYLOAD_LIMIT"},
    {"LEANEMBED_API_KEY", "API_KEY"},
    {"LEANEMBED_CORS_ALLOW_ORIGIN", "CORS_ALLOW_ORIGIN"},
};

// Older names of our variables, read when the current one is not set (as `leanembed embed` does).
const std::vector<std::pair<const char*, const char*>> older_variables = {
    {"LEANEMBED_EMBEDDING_CACHE", "LEANEMBED_CACHE"},
};

// TEI's dtype names.
std::string dtype_name_of(const std::string& d) {
  if (d == "float32") return "fp32";
  if (d == "float16") return "fp16";
  return d;
}

}  // namespace

ServeCommand add_serve_command(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  ServerOptions& s = f->server;
  CLI::App* cmd = app.add_subcommand(
      "serve", "HTTP embedding server: text-embeddings-inference routes (/embed, /tokenize, /info, /health, /metrics) and OpenAI's /v1/embeddings");
  cmd->preparse_callback([](std::size_t) {
    for (const auto* table : {&tei_variables, &older_variables}) {
      for (const auto& [ours, other] : *table) {
        const char* value = std::getenv(other);
        if (value && !std::getenv(ours)) ::setenv(ours, value, 0);
      }
    }
  });
  // The model (as `leanembed embed`).
  cmd->add_option("-m,--model,--model-id", f->model, "Model folder, or Hugging Face id looked up in the cache folder")
      ->envname("LEANEMBED_MODEL")->capture_default_str();
  cmd->add_option("--model-cache-dir,--cache-dir", f->model_cache_dir, "Model cache folder for hub ids (default ./models)")
      ->envname("LEANEMBED_MODEL_CACHE_DIR");
  cmd->add_option("--dtype", f->dtype, "fp32, fp16, q8, int8, uint8, q4 (TEI's float32 / float16 too)")
      ->envname("LEANEMBED_DTYPE")->capture_default_str();
  cmd->add_option("--model-file", f->model_file, "ONNX file to load instead")->envname("LEANEMBED_MODEL_FILE");
  cmd->add_option("--revision", f->revision, "Hub revision (branch, tag or commit) to fetch a hub id at")
      ->envname("LEANEMBED_REVISION")->capture_default_str();
  cmd->add_flag("--offline", f->offline, "Never download: a hub id must already be in the model cache folder")
      ->envname("LEANEMBED_OFFLINE");
  cmd->add_option("--model-format", f->model_format, "Weights file: auto (the dtype's ONNX file, else model.safetensors), onnx, safetensors")
      ->envname("LEANEMBED_MODEL_FORMAT")->check(CLI::IsMember({"auto", "onnx", "safetensors"}))->capture_default_str();
  cmd->add_option("--max-length", f->max_length, "Maximum input length in tokens (default: the model folder's)")
      ->envname("LEANEMBED_MAX_LENGTH")->check(CLI::NonNegativeNumber);
  cmd->add_option("--pooling", f->pooling, "mean, cls, max, lasttoken (default: the model's)")
      ->envname("LEANEMBED_POOLING")->check(CLI::IsMember({"mean", "cls", "max", "lasttoken", "mean_sqrt_len"}));
  cmd->add_option("-t,--threads", f->threads, "Intra-op threads of the encoder (0 = all cores)")
      ->envname("LEANEMBED_THREADS")->check(CLI::NonNegativeNumber);
  cmd->add_option("--parallel-min-tokens", f->parallel_min_tokens,
                  "Encoder runs of fewer tokens use one thread (-1 = automatic: a measured figure for the model's "
                  "weights when OpenMP threads sleep between regions, as serve's do by default, else 0; 0 = never)")
      ->envname("LEANEMBED_PARALLEL_MIN_TOKENS")->check(CLI::Range(int64_t{-1}, std::numeric_limits<int64_t>::max()))
      ->capture_default_str();
  cmd->add_option("--batch-size", f->batch_size, "Texts per encoder run at most (a server batch is cut into runs)")
      ->envname("LEANEMBED_BATCH_SIZE")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--batch-tokens", f->batch_tokens, "Tokens per encoder run at most (bounds the work arena)")
      ->envname("LEANEMBED_BATCH_TOKENS")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--max-memory", f->max_memory, "Memory budget for weights + work memory, bytes (0 = none)")
      ->envname("LEANEMBED_MAX_MEMORY")->check(CLI::NonNegativeNumber);
  cmd->add_option("--idle-unload", f->idle_unload, "Unload the model after this many seconds without requests; 0 = never")
      ->envname("LEANEMBED_IDLE_UNLOAD")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--path", f->path, "Execution path: auto, fast, interpreter")
      ->envname("LEANEMBED_PATH")->check(CLI::IsMember({"auto", "fast", "interpreter"}));
  cmd->add_option("--embedding-cache,--cache", f->embedding_cache, "Embedding cache store (LMDB folder, shareable by replicas)")
      ->envname("LEANEMBED_EMBEDDING_CACHE");
  cmd->add_option("--cache-memory", f->cache_memory, "In-memory cache level, bytes (0 = none)")
      ->envname("LEANEMBED_CACHE_MEMORY")->check(CLI::NonNegativeNumber);
  // The server (TEI's names and defaults).
  cmd->add_option("--served-model-name", s.served_model_name, "Model name in OpenAI answers and /info (default: --model)")
      ->envname("LEANEMBED_SERVED_MODEL_NAME");
  cmd->add_option("--hostname", s.hostname, "Address to listen on (TEI's default is 0.0.0.0)")
      ->envname("LEANEMBED_HOSTNAME")->capture_default_str();
  cmd->add_option("-p,--port", f->port, "Port to listen on (0 = any free port, printed at start)")
      ->envname("LEANEMBED_PORT")->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--max-concurrent-requests", s.max_concurrent_requests, "Requests admitted at once; more are refused with 429 at once")
      ->envname("LEANEMBED_MAX_CONCURRENT_REQUESTS")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--max-batch-tokens", s.max_batch_tokens, "Tokens per server batch at most")
      ->envname("LEANEMBED_MAX_BATCH_TOKENS")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--max-batch-requests", s.max_batch_requests, "Inputs per server batch at most (0 = no limit)")
      ->envname("LEANEMBED_MAX_BATCH_REQUESTS")->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-client-batch-size", s.max_client_batch_size, "Inputs per request at most; more → 422")
      ->envname("LEANEMBED_MAX_CLIENT_BATCH_SIZE")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--tokenization-workers", s.tokenization_workers, "Threads that parse, validate and tokenize requests (0 = cores)")
      ->envname("LEANEMBED_TOKENIZATION_WORKERS")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--auto-truncate", s.auto_truncate, "Truncate inputs longer than the maximum length instead of answering 422")
      ->envname("LEANEMBED_AUTO_TRUNCATE");
  cmd->add_option("--payload-limit", s.payload_limit, "Request body bytes at most; more → 413")
      ->envname("LEANEMBED_PAYLOAD_LIMIT")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--api-key", s.api_key, "Require `Authorization: Bearer <key>` (all routes but /health); else 401")
      ->envname("LEANEMBED_API_KEY");
  cmd->add_option("--cors-allow-origin", s.cors_allow_origin, "Origins allowed by CORS (repeat or comma-separate; * = any; default none)")
      ->envname("LEANEMBED_CORS_ALLOW_ORIGIN")->delimiter(',');
  cmd->add_option("--client-timeout", s.client_timeout_seconds, "Seconds a connection may stay silent (slow or half-open clients) before it is closed")
      ->envname("LEANEMBED_CLIENT_TIMEOUT")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--max-connections", s.max_connections, "Open connections at most (others wait in the listen backlog)")
      ->envname("LEANEMBED_MAX_CONNECTIONS")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--graceful-timeout", s.graceful_timeout_seconds, "On SIGTERM/SIGINT: seconds requests in flight may take before they get 503")
      ->envname("LEANEMBED_GRACEFUL_TIMEOUT")->check(CLI::NonNegativeNumber)->capture_default_str();

  ServeCommand c;
  c.command = cmd;
  c.run = [f]() -> int {
    ServerOptions o = f->server;
    EmbedderOptions& e = o.embedder;
    e.location.model = f->model;
    e.location.model_cache_dir = f->model_cache_dir;
    e.location.dtype = dtype_from_name(dtype_name_of(f->dtype));
    e.location.model_file = f->model_file;
    e.location.revision = f->revision;
    e.location.local_files_only = f->offline;
    e.location.format = model_format_from_name(f->model_format);
    e.threads = f->threads;
    e.parallel_min_tokens = f->parallel_min_tokens;
    e.max_length = f->max_length;
    if (!f->pooling.empty()) e.pooling = pooling_from_name(f->pooling);
    e.batch_size = f->batch_size;
    e.batch_tokens = f->batch_tokens;
    e.max_memory_bytes = f->max_memory;
    e.idle_unload_seconds = f->idle_unload;
    e.embedding_cache_dir = f->embedding_cache;
    e.cache_memory_bytes = f->cache_memory;
    e.path = f->path == "fast" ? ExecutionPath::fast : f->path == "interpreter" ? ExecutionPath::interpreter : ExecutionPath::automatic;
    o.port = static_cast<uint16_t>(f->port);
    if (o.served_model_name.empty()) o.served_model_name = f->model;
    return run_server(o);
  };
  return c;
}

}  // namespace leanembed::server
