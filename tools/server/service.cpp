#include "service.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <thread>

#include "leanembed/error.h"

namespace leanembed::server {

using nlohmann::json;

namespace {

enum class Protocol { tei, openai };

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
std::string millis(double seconds) { return std::to_string(static_cast<int64_t>(seconds * 1000.0)); }

// Unicode code points of UTF-8 text (continuation bytes not counted), as TEI's x-compute-characters.
std::size_t count_chars(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

void append_vector(std::string& out, const float* v, int64_t n) {
  out += '[';
  char buf[32];
  for (int64_t d = 0; d < n; ++d) {
    if (d) out += ',';
    auto r = std::to_chars(buf, buf + sizeof buf, v[d]);  // shortest form that reads back as the same float
    out.append(buf, r.ptr);
  }
  out += ']';
}

std::string base64(const unsigned char* data, std::size_t n) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (std::size_t i = 0; i < n; i += 3) {
    const uint32_t b = static_cast<uint32_t>(data[i]) << 16 | (i + 1 < n ? static_cast<uint32_t>(data[i + 1]) << 8 : 0) |
                       (i + 2 < n ? data[i + 2] : 0);
    out += table[(b >> 18) & 63];
    out += table[(b >> 12) & 63];
    out += i + 1 < n ? table[(b >> 6) & 63] : '=';
    out += i + 2 < n ? table[b & 63] : '=';
  }
  return out;
}

// A request's inputs: texts or token-id sequences, one or many.
struct Inputs {
  std::vector<std::string> texts;
  std::vector<std::vector<int64_t>> ids;
  bool by_ids = false;
  std::size_t size() const { return by_ids ? ids.size() : texts.size(); }
};

struct Invalid {
  int status;
  std::string message;
  std::string type = "validation";
};

std::vector<int64_t> id_sequence(const json& a, const std::string& where) {
  std::vector<int64_t> ids;
  ids.reserve(a.size());
  for (const json& v : a) {
    if (!v.is_number_integer()) throw Invalid{422, where + " must hold integer token ids"};
    ids.push_back(v.get<int64_t>());
  }
  return ids;
}

Inputs parse_inputs(const json& body, const std::string& field) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) throw Invalid{422, "missing field `" + field + "`"};
  const json& v = *it;
  Inputs in;
  const std::string expected = "`" + field + "` must be a string, an array of strings, an array of token ids or an array of arrays of token ids";
  if (v.is_string()) {
    in.texts.push_back(v.get<std::string>());
    return in;
  }
  if (!v.is_array()) throw Invalid{422, expected};
  if (v.empty()) throw Invalid{422, "`" + field + "` cannot be empty"};
  if (v[0].is_number()) {
    in.by_ids = true;
    in.ids.push_back(id_sequence(v, "`" + field + "`"));
    return in;
  }
  if (v[0].is_array()) {
    in.by_ids = true;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_array()) throw Invalid{422, expected};
      in.ids.push_back(id_sequence(v[i], "`" + field + "`[" + std::to_string(i) + "]"));
    }
    return in;
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) throw Invalid{422, expected + " (element " + std::to_string(i) + " is not a string)"};
    in.texts.push_back(v[i].get<std::string>());
  }
  return in;
}

template <typename T>
T optional_field(const json& body, const char* name, T fallback, const char* what) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    throw Invalid{422, std::string("`") + name + "` must be " + what};
  }
}

json parse_body(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    throw Invalid{422, std::string("the body is not valid JSON: ") + e.what()};
  }
  if (!j.is_object()) throw Invalid{422, "the body must be a JSON object"};
  return j;
}

const char* openai_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable";
    default: return status >= 500 || status == 424 ? "server_error" : "invalid_request_error";
  }
}

bool same_secret(const std::string& a, const std::string& b) {  // time independent of where they differ
  unsigned char diff = a.size() != b.size();
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

}  // namespace

struct Service::Call {
  std::string route;
  Protocol protocol = Protocol::tei;
  std::shared_ptr<Exchange> exchange;
  Clock::time_point arrived = Clock::now();
  std::vector<std::pair<std::string, std::string>> cors;  // headers every answer carries
  bool admitted = false;
  std::atomic<bool> answered{false};
};

Service::Service(const ServerOptions& options, Embedder& embedder, Metrics& metrics)
    : options_(options),
      embedder_(embedder),
      metrics_(metrics),
      model_(embedder.info()),
      special_ids_(embedder.tokenize("", Truncation::none, false).ids),
      workers_(options.tokenization_workers > 0 ? options.tokenization_workers
                                                : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
      batcher_(embedder, BatchLimits{options.max_batch_tokens, options.max_batch_requests}, metrics) {}

Service::~Service() { stop("the server is shutting down"); }

void Service::stop(const std::string& error) {
  batcher_.stop(error);
  workers_.stop();
}

void Service::answer(Call& call, HttpResponse response) {
  if (call.answered.exchange(true)) return;
  for (const auto& h : call.cors) response.headers.push_back(h);
  metrics_.request(call.route, response.status);
  call.exchange->respond(std::move(response));
  if (call.admitted) --in_flight_;
}

void Service::error(Call& call, int status, const std::string& message, const std::string& type) {
  json body;
  if (call.protocol == Protocol::openai) {
    body = {{"error", {{"message", message}, {"type", openai_type(status)}, {"code", status}}}};
  } else {
    body = {{"error", message}, {"error_type", type}};
  }
  HttpResponse r{status, "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace), {}};
  if (status == 503) r.headers.emplace_back("Connection", "close");
  answer(call, std::move(r));
}

void Service::handle(HttpRequest&& request, std::shared_ptr<Exchange> exchange) {
  auto call = std::make_shared<Call>();
  call->exchange = std::move(exchange);
  const std::string& path = request.path;
  call->route = path;
  call->protocol = path == "/v1/embeddings" || path == "/embeddings" ? Protocol::openai : Protocol::tei;

  // CORS: the listed origins (or any, with "*") get the headers; preflights are answered here.
  if (!options_.cors_allow_origin.empty()) {
    if (const std::string* origin = request.header("origin")) {
      const auto& allowed = options_.cors_allow_origin;
      if (std::find(allowed.begin(), allowed.end(), "*") != allowed.end()) {
        call->cors.emplace_back("Access-Control-Allow-Origin", "*");
      } else if (std::find(allowed.begin(), allowed.end(), *origin) != allowed.end()) {
        call->cors.emplace_back("Access-Control-Allow-Origin", *origin);
        call->cors.emplace_back("Vary", "Origin");
      }
    }
  }
  if (request.method == "OPTIONS") {
    HttpResponse r{204, "", "", {}};
    if (!call->cors.empty()) {
      r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      r.headers.emplace_back("Access-Control-Allow-Headers", "authorization, content-type");
      r.headers.emplace_back("Access-Control-Max-Age", "3600");
    }
    call->route = "OPTIONS";
    return answer(*call, std::move(r));
  }

  static const std::vector<std::string> get_routes = {"/health", "/info", "/metrics"};
  // "/" is TEI's route for the model's task (here /embed): where Inference Endpoints clients post.
  static const std::vector<std::string> post_routes = {"/", "/embed", "/v1/embeddings", "/embeddings", "/tokenize"};
  const bool is_get = std::find(get_routes.begin(), get_routes.end(), path) != get_routes.end();
  const bool is_post = std::find(post_routes.begin(), post_routes.end(), path) != post_routes.end();
  if (!is_get && !is_post) {
    call->route = "other";
    return error(*call, 404, "no route " + path + " (routes: POST /, /embed, /v1/embeddings, /embeddings, /tokenize; GET /health, /info, /metrics)", "not_found");
  }
  if ((is_get && request.method != "GET" && request.method != "HEAD") || (is_post && request.method != "POST")) {
    HttpResponse r{405, "application/json", json({{"error", "method " + request.method + " not allowed on " + path}, {"error_type", "validation"}}).dump(), {}};
    r.headers.emplace_back("Allow", is_get ? "GET" : "POST");
    return answer(*call, std::move(r));
  }
  // /health stays open to load balancers; every other route needs the key when there is one.
  if (!options_.api_key.empty() && path != "/health") {
    const std::string* auth = request.header("authorization");
    const std::string prefix = "Bearer ";
    if (!auth || auth->rfind(prefix, 0) != 0 || !same_secret(auth->substr(prefix.size()), options_.api_key)) {
      HttpResponse r;
      if (call->protocol == Protocol::openai) {
        r = {401, "application/json", json({{"error", {{"message", "missing or wrong API key (Authorization: Bearer <key>)"}, {"type", "authentication_error"}, {"code", 401}}}}).dump(), {}};
      } else {
        r = {401, "application/json", json({{"error", "missing or wrong API key (Authorization: Bearer <key>)"}, {"error_type", "unauthorized"}}).dump(), {}};
      }
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return answer(*call, std::move(r));
    }
  }
  if (path == "/health") {
    if (draining_) return error(*call, 503, "unhealthy", "unhealthy");
    return answer(*call, HttpResponse{200, "", "", {}});
  }
  // info() waits while the model (re)loads: not on the event loop.
  if (path == "/info") return workers_.post([this, call] { answer(*call, info_response()); });
  if (path == "/metrics") return workers_.post([this, call] { answer(*call, metrics_response()); });

  if (request.body_too_large) {
    return error(*call, 413, "the request body is larger than the payload limit of " + std::to_string(options_.payload_limit) + " bytes (--payload-limit)", "validation");
  }
  if (draining_) return error(*call, 503, "the server is shutting down", "unhealthy");
  if (in_flight_.fetch_add(1) >= options_.max_concurrent_requests) {
    --in_flight_;
    return error(*call, 429, "Model is overloaded", "overloaded");
  }
  call->admitted = true;
  std::string body = std::move(request.body);
  if (path == "/tokenize") {
    workers_.post([this, call, body = std::move(body)]() mutable { tokenize_request(call, std::move(body)); });
  } else {
    workers_.post([this, call, body = std::move(body)]() mutable { embed_request(call, std::move(body)); });
  }
}

void Service::embed_request(std::shared_ptr<Call> call, std::string body) {
  const auto started = Clock::now();
  try {
    if (call->exchange->client_gone()) {  // gave up while waiting for a worker
      metrics_.client_gone(0);
      return error(*call, 499, "client closed request", "validation");
    }
    const bool openai = call->protocol == Protocol::openai;
    const json j = parse_body(body);
    std::string().swap(body);
    Inputs inputs = parse_inputs(j, openai ? "input" : "inputs");
    const bool normalize = openai ? true : optional_field<bool>(j, "normalize", true, "a boolean");
    const bool truncate = openai ? options_.auto_truncate : optional_field<bool>(j, "truncate", options_.auto_truncate, "a boolean");
    Truncation side = Truncation::right;
    if (!openai) {
      std::string direction = optional_field<std::string>(j, "truncation_direction", "Right", "\"Left\" or \"Right\"");
      std::transform(direction.begin(), direction.end(), direction.begin(), [](unsigned char c) { return std::tolower(c); });
      if (direction == "left") side = Truncation::left;
      else if (direction != "right") throw Invalid{422, "`truncation_direction` must be \"Left\" or \"Right\""};
      if (j.contains("prompt_name") && !j["prompt_name"].is_null()) {
        throw Invalid{422, "`prompt_name` is not supported by this server (prepend the prompt to the text)"};
      }
    }
    const int64_t hidden = model_.hidden_size;
    int64_t dims = hidden;
    if (auto it = j.find("dimensions"); it != j.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<int64_t>() <= 0) throw Invalid{422, "`dimensions` must be a positive integer"};
      dims = it->get<int64_t>();
      if (dims > hidden) {
        throw Invalid{422, "`dimensions` " + std::to_string(dims) + " is more than the model's " + std::to_string(hidden) + " dimensions"};
      }
    }
    bool as_base64 = false;
    if (openai) {
      const std::string format = optional_field<std::string>(j, "encoding_format", "float", "\"float\" or \"base64\"");
      if (format == "base64") as_base64 = true;
      else if (format != "float") throw Invalid{422, "`encoding_format` must be \"float\" or \"base64\""};
      if (auto it = j.find("model"); it != j.end() && !it->is_null() && !it->is_string()) throw Invalid{422, "`model` must be a string"};
      if (auto it = j.find("user"); it != j.end() && !it->is_null() && !it->is_string()) throw Invalid{422, "`user` must be a string"};
    }
    const std::size_t n = inputs.size();
    if (static_cast<int64_t>(n) > options_.max_client_batch_size) {
      throw Invalid{422, "batch size " + std::to_string(n) + " > maximum allowed batch size " + std::to_string(options_.max_client_batch_size)};
    }

    auto job = std::make_shared<Job>();
    std::size_t chars = 0;
    const auto max_length = static_cast<std::size_t>(model_.max_length);
    const std::string input_name = openai ? "input" : "inputs";
    for (std::size_t i = 0; i < n; ++i) {
      const std::string which = n > 1 ? "`" + input_name + "`[" + std::to_string(i) + "]" : "`" + input_name + "`";
      if (inputs.by_ids) {
        std::vector<int64_t>& ids = inputs.ids[i];
        if (ids.empty()) throw Invalid{422, which + " cannot be empty"};
        if (ids.size() > max_length) {
          throw Invalid{422, which + " has " + std::to_string(ids.size()) + " token ids, more than the model's maximum of " +
                                 std::to_string(max_length) + " (token ids are never truncated)"};
        }
        for (int64_t id : ids) {
          if (id < 0 || id >= model_.vocab_size) {
            throw Invalid{422, which + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(model_.vocab_size) + ")"};
          }
        }
        job->ids.push_back(std::move(ids));
        continue;
      }
      const std::string& text = inputs.texts[i];
      if (text.empty()) throw Invalid{422, which + " cannot be empty"};
      chars += count_chars(text);
      Tokenized t = embedder_.tokenize(text, truncate ? side : Truncation::none, false);
      if (t.ids.size() > max_length) {
        throw Invalid{422, which + " has " + std::to_string(t.ids.size()) + " tokens, more than the model's maximum of " +
                               std::to_string(max_length) + " (send \"truncate\": true, or start the server with --auto-truncate)"};
      }
      job->ids.push_back(std::move(t.ids));
    }
    // The embedding cache is keyed by text and keeps the right-hand cut: such texts go by text.
    if (!inputs.by_ids && side == Truncation::right && model_.cache_enabled) job->cache_texts = std::move(inputs.texts);
    const double tokenization = seconds_between(started, Clock::now());
    metrics_.tokenization_seconds.observe(tokenization);

    job->exchange = call->exchange;
    const Shape shape{.normalize = normalize, .dims = dims, .as_base64 = as_base64, .chars = chars, .inputs = n,
                      .tokenization_seconds = tokenization};
    job->on_done = [this, call, shape](Job& done) {
      std::shared_ptr<Job> job = done.self.lock();
      workers_.post([this, call, job, shape] { finish_embedding(call, job, shape); });
    };
    job->self = job;
    batcher_.submit(job);
  } catch (const Invalid& e) {
    error(*call, e.status, e.message, e.type);
  } catch (const Error& e) {
    error(*call, e.code() == ErrorCode::invalid_argument ? 422 : 424, e.what(),
          e.code() == ErrorCode::invalid_argument ? "validation" : "backend");
  } catch (const std::exception& e) {
    error(*call, 500, std::string("internal error: ") + e.what(), "backend");
  }
}

// On a worker, once the batcher is done with the job: per-request dimensions and normalisation, the
// answer in the route's format, TEI's headers, the durations' metrics.
void Service::finish_embedding(std::shared_ptr<Call> call, std::shared_ptr<Job> job, const Shape& shape) {
  try {
    if (job->client_gone) return error(*call, 499, "client closed request", "validation");
    if (job->error_status) {
      return error(*call, job->error_status, job->error,
                   job->error_status == 503 ? "unhealthy" : job->error_status == 422 ? "validation" : "backend");
    }
    const std::size_t n = shape.inputs;
    const int64_t dims = shape.dims;
    const int64_t width = static_cast<int64_t>(job->vectors.size() / n);
    std::size_t tokens = 0;
    for (const auto& ids : job->ids) tokens += ids.size();
    const bool openai = call->protocol == Protocol::openai;
    std::string out;
    out.reserve(n * static_cast<std::size_t>(dims) * 12 + 128);
    out += openai ? "{\"object\":\"list\",\"data\":[" : "[";
    for (std::size_t i = 0; i < n; ++i) {
      std::span<float> v(job->vectors.data() + i * width, static_cast<std::size_t>(dims));
      if (shape.normalize) l2_normalize(v);
      if (i) out += ',';
      if (!openai) {
        append_vector(out, v.data(), dims);
        continue;
      }
      out += "{\"object\":\"embedding\",\"embedding\":";
      if (shape.as_base64) {
        out += '"' + base64(reinterpret_cast<const unsigned char*>(v.data()), v.size() * sizeof(float)) + '"';
      } else {
        append_vector(out, v.data(), dims);
      }
      out += ",\"index\":" + std::to_string(i) + "}";
    }
    if (openai) {
      out += "],\"model\":" + json(options_.served_model_name).dump(-1, ' ', false, json::error_handler_t::replace) +
             ",\"usage\":{\"prompt_tokens\":" + std::to_string(tokens) + ",\"total_tokens\":" + std::to_string(tokens) + "}}";
    } else {
      out += ']';
    }
    const double total = seconds_between(call->arrived, Clock::now());
    const double queue = seconds_between(job->queued_at, job->first_batch_at);
    metrics_.queue_seconds.observe(queue);
    metrics_.inference_seconds.observe(job->inference_seconds);
    metrics_.request_seconds.observe(total);
    HttpResponse r{200, "application/json", std::move(out), {}};
    r.headers = {{"x-compute-type", "cpu"},
                 {"x-compute-time", millis(total)},
                 {"x-compute-characters", std::to_string(shape.chars)},
                 {"x-compute-tokens", std::to_string(tokens)},
                 {"x-total-time", millis(total)},
                 {"x-tokenization-time", millis(shape.tokenization_seconds)},
                 {"x-queue-time", millis(queue)},
                 {"x-inference-time", millis(job->inference_seconds)}};
    answer(*call, std::move(r));
  } catch (const std::exception& e) {
    error(*call, 500, std::string("internal error: ") + e.what(), "backend");
  }
}

void Service::tokenize_request(std::shared_ptr<Call> call, std::string body) {
  try {
    const json j = parse_body(body);
    Inputs inputs = parse_inputs(j, "inputs");
    if (inputs.by_ids) throw Invalid{422, "`inputs` must be a string or an array of strings"};
    if (static_cast<int64_t>(inputs.size()) > options_.max_client_batch_size) {
      throw Invalid{422, "batch size " + std::to_string(inputs.size()) + " > maximum allowed batch size " +
                             std::to_string(options_.max_client_batch_size)};
    }
    const bool add_special = optional_field<bool>(j, "add_special_tokens", true, "a boolean");
    if (j.contains("prompt_name") && !j["prompt_name"].is_null()) {
      throw Invalid{422, "`prompt_name` is not supported by this server (prepend the prompt to the text)"};
    }
    json out = json::array();
    const std::size_t s = special_ids_.size();
    for (const std::string& text : inputs.texts) {
      Tokenized t = embedder_.tokenize(text, Truncation::none, true);
      const std::size_t n = t.ids.size();
      // The post-processor's special tokens: `lead` of them open the sequence, s - lead close it.
      std::size_t lead = 0;
      while (lead < s && lead < n && t.ids[lead] == special_ids_[lead]) ++lead;
      auto closes = [&](std::size_t k) {
        return n >= s && std::equal(special_ids_.begin() + k, special_ids_.end(), t.ids.end() - (s - k));
      };
      while (lead > 0 && !closes(lead)) --lead;
      const bool have_specials = closes(lead);
      json tokens = json::array();
      for (std::size_t i = 0; i < n; ++i) {
        const bool special = have_specials && (i < lead || i >= n - (s - lead));
        if (special && !add_special) continue;
        tokens.push_back({{"id", t.ids[i]}, {"text", t.tokens[i]}, {"special", special}, {"start", nullptr}, {"stop", nullptr}});
      }
      out.push_back(std::move(tokens));
    }
    answer(*call, HttpResponse{200, "application/json", out.dump(-1, ' ', false, json::error_handler_t::replace), {}});
  } catch (const Invalid& e) {
    error(*call, e.status, e.message, e.type);
  } catch (const Error& e) {
    error(*call, e.code() == ErrorCode::invalid_argument ? 422 : 424, e.what(), e.code() == ErrorCode::invalid_argument ? "tokenizer" : "backend");
  } catch (const std::exception& e) {
    error(*call, 500, std::string("internal error: ") + e.what(), "backend");
  }
}

HttpResponse Service::info_response() const {
  const EmbedderInfo i = embedder_.info();
  json j = {
      {"model_id", options_.served_model_name},
      {"model_sha", nullptr},
      {"model_dtype", i.dtype},
      {"model_type", {{"embedding", {{"pooling", pooling_name(i.pooling)}}}}},
      {"max_concurrent_requests", options_.max_concurrent_requests},
      {"max_input_length", i.max_length},
      {"max_batch_tokens", options_.max_batch_tokens},
      {"max_batch_requests", options_.max_batch_requests > 0 ? json(options_.max_batch_requests) : json(nullptr)},
      {"max_client_batch_size", options_.max_client_batch_size},
      {"auto_truncate", options_.auto_truncate},
      {"tokenization_workers", options_.tokenization_workers > 0 ? options_.tokenization_workers
                                                                  : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))},
      {"version", "leanembed 0.1.0"},
      {"sha", nullptr},
      {"docker_label", nullptr},
      // leanembed's own fields
      {"hidden_size", i.hidden_size},
      {"vocab_size", i.vocab_size},
      {"execution_path", i.path},
      {"model_loaded", i.loaded},
      {"embedding_cache", i.cache_enabled},
  };
  return HttpResponse{200, "application/json", j.dump(-1, ' ', false, json::error_handler_t::replace), {}};
}

HttpResponse Service::metrics_response() const {
  const EmbedderInfo i = embedder_.info();
  Gauges g;
  g.queue_entries = batcher_.queued();
  g.in_flight = in_flight_;
  g.model_loaded = i.loaded;
  g.model_loads = i.loads;
  g.model_unloads = i.unloads;
  g.cache_hits = i.cache_hits;
  g.cache_misses = i.cache_misses;
  return HttpResponse{200, "text/plain; version=0.0.4", metrics_.render(g), {}};
}

}  // namespace leanembed::server
