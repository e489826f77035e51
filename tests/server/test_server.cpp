// `leanembed serve` end to end on the tiny model, as a child process on 127.0.0.1: every route,
// option and error, token-id input, truncation sides, slow clients, idle unload, the cache, the
// graceful timeout's expiry, the connection limit, LEANEMBED_<FLAG> variables of each kind.
// (test_server_load.cpp: the full-size model — vectors against the CLI, concurrency, overload,
// vanished clients, SIGTERM under load.)
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "server_test_support.h"

using namespace leanembed::test;
using nlohmann::json;

TEST(Server, HealthInfoMetricsAndUnknownRoutes) {
  ServerProcess s({"--model", tiny_model(), "--max-batch-requests", "7"});
  auto c = s.client();
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto info = c.Get("/info");
  ASSERT_TRUE(info);
  json i = json::parse(info->body);
  EXPECT_EQ(i["model_id"], tiny_model());
  EXPECT_EQ(i["max_client_batch_size"], 32);
  EXPECT_EQ(i["max_concurrent_requests"], 512);
  EXPECT_EQ(i["max_batch_tokens"], 16384);
  EXPECT_EQ(i["max_batch_requests"], 7);
  EXPECT_EQ(i["auto_truncate"], false);
  EXPECT_GT(i["max_input_length"].get<int>(), 2);
  EXPECT_EQ(i["model_type"]["embedding"]["pooling"], "mean");
  EXPECT_TRUE(i.contains("model_dtype") && i.contains("version") && i.contains("tokenization_workers"));
  post_json(c, "/embed", {{"inputs", "one"}});
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  const std::string& m = metrics->body;
  EXPECT_NE(m.find("leanembed_requests_total{route=\"/embed\",status=\"200\",outcome=\"success\"} 1"), std::string::npos) << m;
  for (const char* name : {"leanembed_tokenization_duration_seconds_count", "leanembed_queue_duration_seconds_count",
                           "leanembed_inference_duration_seconds_count", "leanembed_batch_inputs_count", "leanembed_batch_tokens_count"}) {
    EXPECT_EQ(metric(m, name), 1) << name;
  }
  EXPECT_EQ(metric(m, "leanembed_model_loaded"), 1);
  EXPECT_EQ(metric(m, "leanembed_queue_inputs"), 0);
  EXPECT_GT(metric(m, "leanembed_resident_memory_bytes"), 1e6);
  auto missing = c.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto wrong_method = c.Get("/embed");
  ASSERT_TRUE(wrong_method);
  EXPECT_EQ(wrong_method->status, 405);
  EXPECT_EQ(s.stop(), 0);
}

// Every encoder run, the warm-up included, happens on the batcher's thread (batcher.h): libgomp
// makes a pool of OpenMP threads for every thread that runs a parallel region, and a warm-up on
// the main thread made a second one (its thread appeared with the first request), past the core
// count, where libgomp stops its threads spinning. Counted: requests add no thread to the server.
TEST(Server, RequestsAddNoOpenMpPool) {
  ServerProcess s({"--model", minilm_model(), "--threads", "2"});  // MiniLM: its warm-up runs parallel products
  const auto threads = [&] {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(s.pid()) + "/task")) ++n;
    return n;
  };
  const std::size_t before = threads();
  auto c = s.client();
  std::vector<std::string> texts;
  for (int i = 0; i < 32; ++i) texts.push_back("sentence number " + std::to_string(i) + " of a batch long enough for two threads");
  for (int round = 0; round < 3; ++round) {
    auto r = c.Post("/embed", json({{"inputs", texts}}).dump(), kJson);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }
  EXPECT_EQ(threads(), before) << "threads of the server before the requests: " << before;
}

TEST(Server, TokenizeRoute) {
  ServerProcess s({"--model", tiny_model()});
  auto c = s.client();
  int status = 0;
  json t = post_json(c, "/tokenize", {{"inputs", "hello world"}}, &status);
  ASSERT_EQ(status, 200) << t.dump();
  ASSERT_EQ(t.size(), 1u);
  ASSERT_GE(t[0].size(), 3u);
  EXPECT_EQ(t[0][0]["special"], true);
  EXPECT_EQ(t[0][0]["text"], "[CLS]");
  EXPECT_EQ(t[0].back()["special"], true);
  EXPECT_EQ(t[0][1]["special"], false);
  EXPECT_TRUE(t[0][1].contains("id") && t[0][1].contains("start") && t[0][1].contains("stop"));
  json plain = post_json(c, "/tokenize", {{"inputs", json::array({"hello world", "a"})}, {"add_special_tokens", false}});
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain[0].size(), t[0].size() - 2);
  for (const auto& tok : plain[0]) EXPECT_EQ(tok["special"], false);
  // Not truncated: a long text gives all its tokens.
  json longer = post_json(c, "/tokenize", {{"inputs", long_text(400)}});
  auto info = json::parse(c.Get("/info")->body);
  EXPECT_GT(longer[0].size(), info["max_input_length"].get<size_t>());
  expect_tei_error(c.Post("/tokenize", "{\"inputs\": 3}", kJson), 422, "validation", "`inputs` must be");
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, TokenIdInputsAndLeftTruncation) {
  ServerProcess s({"--model", tiny_model()});
  auto c = s.client();
  const std::string text = "Token ids give the same vector as the text.";
  json tokens = post_json(c, "/tokenize", {{"inputs", text}});
  std::vector<int64_t> ids;
  for (const auto& t : tokens[0]) ids.push_back(t["id"]);
  json by_text = post_json(c, "/v1/embeddings", {{"input", text}});
  json by_ids = post_json(c, "/v1/embeddings", {{"input", json::array({ids})}});
  json by_flat_ids = post_json(c, "/embed", {{"inputs", ids}});
  EXPECT_TRUE(bitwise(as_floats(by_ids["data"][0]["embedding"]), as_floats(by_text["data"][0]["embedding"])));
  EXPECT_TRUE(bitwise(as_floats(by_flat_ids[0]), as_floats(by_text["data"][0]["embedding"])));
  expect_openai_error(c.Post("/v1/embeddings", json({{"input", json::array({json::array({101, 99999999, 102})})}}).dump(), kJson),
                      422, "outside the vocabulary");
  expect_openai_error(c.Post("/v1/embeddings", json({{"input", json::array({json::array({101, 1.5, 102})})}}).dump(), kJson),
                      422, "integer token ids");
  // Left truncation keeps [CLS] + the last tokens + [SEP]: the vector of exactly those ids.
  const std::string longer = long_text(400);
  const size_t max_length = json::parse(c.Get("/info")->body)["max_input_length"];
  json all = post_json(c, "/tokenize", {{"inputs", longer}});
  std::vector<int64_t> full;
  for (const auto& t : all[0]) full.push_back(t["id"]);
  std::vector<int64_t> left = {full.front()};
  left.insert(left.end(), full.end() - static_cast<std::ptrdiff_t>(max_length - 1), full.end());
  std::vector<int64_t> right(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(max_length - 1));
  right.push_back(full.back());
  json left_text = post_json(c, "/embed", {{"inputs", longer}, {"truncate", true}, {"truncation_direction", "Left"}});
  json right_text = post_json(c, "/embed", {{"inputs", longer}, {"truncate", true}});
  EXPECT_TRUE(bitwise(as_floats(left_text[0]), as_floats(post_json(c, "/embed", {{"inputs", left}})[0])));
  EXPECT_TRUE(bitwise(as_floats(right_text[0]), as_floats(post_json(c, "/embed", {{"inputs", right}})[0])));
  EXPECT_FALSE(bitwise(as_floats(left_text[0]), as_floats(right_text[0])));
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, ValidationErrorsAsTeiAndOpenAi) {
  ServerProcess s({"--model", tiny_model(), "--payload-limit", "5000"});
  auto c = s.client();
  expect_tei_error(c.Post("/embed", "{\"inputs\": [\"a\"", kJson), 422, "validation", "not valid JSON");
  expect_tei_error(c.Post("/embed", "[1,2]", kJson), 422, "validation", "JSON object");
  expect_tei_error(c.Post("/embed", "{}", kJson), 422, "validation", "missing field `inputs`");
  expect_tei_error(c.Post("/embed", "{\"inputs\": 5}", kJson), 422, "validation", "`inputs` must be");
  expect_tei_error(c.Post("/embed", "{\"inputs\": [\"a\", 5]}", kJson), 422, "validation", "element 1");
  expect_tei_error(c.Post("/embed", "{\"inputs\": \"a\", \"normalize\": \"yes\"}", kJson), 422, "validation", "`normalize` must be");
  expect_tei_error(c.Post("/embed", "{\"inputs\": \"\"}", kJson), 422, "validation", "cannot be empty");
  expect_tei_error(c.Post("/embed", "{\"inputs\": []}", kJson), 422, "validation", "cannot be empty");
  expect_tei_error(c.Post("/embed", "{\"inputs\": \"a\", \"dimensions\": 100000}", kJson), 422, "validation", "more than the model's");
  expect_tei_error(c.Post("/embed", "{\"inputs\": \"a\", \"dimensions\": 0}", kJson), 422, "validation", "positive integer");
  expect_tei_error(c.Post("/embed", "{\"inputs\": \"a\", \"truncation_direction\": \"Up\"}", kJson), 422, "validation", "truncation_direction");
  json many = json::array();
  for (int i = 0; i < 33; ++i) many.push_back("text");
  expect_tei_error(c.Post("/embed", json({{"inputs", many}}).dump(), kJson), 422, "validation", "batch size 33 > maximum allowed batch size 32");
  many.erase(many.begin());
  EXPECT_EQ(c.Post("/embed", json({{"inputs", many}}).dump(), kJson)->status, 200);
  // Too long without truncation → 422 naming the limit; with truncate: true → 200.
  const std::string longer = long_text(300);
  expect_tei_error(c.Post("/embed", json({{"inputs", longer}}).dump(), kJson), 422, "validation", "more than the model's maximum");
  EXPECT_EQ(c.Post("/embed", json({{"inputs", longer}, {"truncate", true}}).dump(), kJson)->status, 200);
  // Payload limit → 413 (body read and dropped, or refused from its Content-Length).
  const std::string big = json({{"inputs", std::string(6000, 'a')}}).dump();
  expect_tei_error(c.Post("/embed", big, kJson), 413, "validation", "payload limit of 5000 bytes");
  {
    int fd = connect_to(s.port());
    send_all(fd, "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
    auto [got, closed] = read_until_closed(fd, 20);
    ::close(fd);
    EXPECT_NE(got.find(" 413 "), std::string::npos) << got;
  }
  // OpenAI routes: {error: {message, type, code}}.
  expect_openai_error(c.Post("/v1/embeddings", "{\"input\": [}", kJson), 422, "not valid JSON");
  expect_openai_error(c.Post("/v1/embeddings", "{\"input\": \"a\", \"encoding_format\": \"int8\"}", kJson), 422, "encoding_format");
  expect_openai_error(c.Post("/v1/embeddings", "{\"inputs\": \"a\"}", kJson), 422, "missing field `input`");
  expect_openai_error(c.Post("/embeddings", "{\"input\": \"a\", \"dimensions\": 100000}", kJson), 422, "dimensions");
  expect_openai_error(c.Post("/v1/embeddings", big, kJson), 413, "payload limit");
  // The server is still fine.
  EXPECT_EQ(c.Post("/embed", "{\"inputs\": \"still here\"}", kJson)->status, 200);
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, AutoTruncateAndEnvironmentVariables) {
  // TEI's variable names work; LEANEMBED_<FLAG> wins over them; the command line over both.
  ServerProcess s({"--model", tiny_model()}, {"AUTO_TRUNCATE=true", "MAX_CLIENT_BATCH_SIZE=2", "LEANEMBED_PAYLOAD_LIMIT=100000",
                                              "PAYLOAD_LIMIT=10", "SERVED_MODEL_NAME=served-name"});
  auto c = s.client();
  json info = json::parse(c.Get("/info")->body);
  EXPECT_EQ(info["auto_truncate"], true);
  EXPECT_EQ(info["max_client_batch_size"], 2);
  EXPECT_EQ(info["model_id"], "served-name");
  EXPECT_EQ(c.Post("/embed", json({{"inputs", long_text(300)}}).dump(), kJson)->status, 200);
  expect_tei_error(c.Post("/embed", json({{"inputs", {"a", "b", "c"}}}).dump(), kJson), 422, "validation", "batch size 3");
  EXPECT_EQ(post_json(c, "/v1/embeddings", {{"input", "a"}})["model"], "served-name");
  EXPECT_EQ(s.stop(), 0);
  ServerProcess t({"--model", tiny_model(), "--max-client-batch-size", "5"}, {"MAX_CLIENT_BATCH_SIZE=2", "LEANEMBED_MAX_CLIENT_BATCH_SIZE=3"});
  EXPECT_EQ(json::parse(t.client().Get("/info")->body)["max_client_batch_size"], 5);
  ServerProcess u({"--model", tiny_model()}, {"MAX_CLIENT_BATCH_SIZE=2", "LEANEMBED_MAX_CLIENT_BATCH_SIZE=3"});
  EXPECT_EQ(json::parse(u.client().Get("/info")->body)["max_client_batch_size"], 3);
}

TEST(Server, ApiKeyAndCors) {
  ServerProcess s({"--model", tiny_model(), "--api-key", "s3cret", "--cors-allow-origin", "http://app.example"});
  auto c = s.client();
  EXPECT_EQ(c.Get("/health")->status, 200);  // load balancers' probe needs no key
  auto denied = c.Post("/embed", "{\"inputs\":\"a\"}", kJson);
  expect_tei_error(denied, 401, "unauthorized", "API key");
  expect_openai_error(c.Post("/v1/embeddings", "{\"input\":\"a\"}", kJson), 401, "API key");
  EXPECT_EQ(c.Get("/info")->status, 401);
  EXPECT_EQ(c.Post("/embed", {{"Authorization", "Bearer wrong"}}, "{\"inputs\":\"a\"}", kJson)->status, 401);
  EXPECT_EQ(c.Post("/embed", {{"Authorization", "Bearer s3cret"}}, "{\"inputs\":\"a\"}", kJson)->status, 200);
  auto preflight = c.Options("/embed", {{"Origin", "http://app.example"}, {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(preflight);
  EXPECT_EQ(preflight->status, 204);
  EXPECT_EQ(preflight->get_header_value("Access-Control-Allow-Origin"), "http://app.example");
  EXPECT_NE(preflight->get_header_value("Access-Control-Allow-Headers").find("authorization"), std::string::npos);
  auto allowed = c.Post("/embed", {{"Authorization", "Bearer s3cret"}, {"Origin", "http://app.example"}}, "{\"inputs\":\"a\"}", kJson);
  EXPECT_EQ(allowed->get_header_value("Access-Control-Allow-Origin"), "http://app.example");
  auto other = c.Post("/embed", {{"Authorization", "Bearer s3cret"}, {"Origin", "http://evil.example"}}, "{\"inputs\":\"a\"}", kJson);
  EXPECT_FALSE(other->has_header("Access-Control-Allow-Origin"));
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, SlowAndHalfOpenClientsTimeOutWithoutBlockingOthers) {
  ServerProcess s({"--model", tiny_model(), "--client-timeout", "1"});
  std::vector<int> slow;
  for (int i = 0; i < 20; ++i) {
    int fd = connect_to(s.port());
    ASSERT_GE(fd, 0);
    if (i % 2) send_all(fd, "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inp");  // body never finished
    else send_all(fd, "GET /hea");  // headers never finished
    slow.push_back(fd);
  }
  // Others are served meanwhile.
  auto c = s.client();
  EXPECT_EQ(c.Post("/embed", "{\"inputs\":\"served while others stall\"}", kJson)->status, 200);
  // Each stalled connection is closed by the server (bounded wait).
  int closed = 0;
  for (int fd : slow) {
    if (read_until_closed(fd, 30).second) ++closed;
    ::close(fd);
  }
  EXPECT_EQ(closed, 20);
  EXPECT_EQ(c.Get("/health")->status, 200);
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, IdleUnloadKeepsHealthAndReloadsOnTheNextRequest) {
  ServerProcess s({"--model", tiny_model(), "--idle-unload", "1"});
  auto c = s.client();
  json first = post_json(c, "/embed", {{"inputs", "before the unload"}});
  bool unloaded = false;
  for (int i = 0; i < 200 && !unloaded; ++i) {
    unloaded = json::parse(c.Get("/info")->body)["model_loaded"] == false;
    if (!unloaded) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(unloaded);
  EXPECT_EQ(c.Get("/health")->status, 200);
  EXPECT_EQ(metric(c.Get("/metrics")->body, "leanembed_model_loaded"), 0);
  json again = post_json(c, "/embed", {{"inputs", "before the unload"}});
  EXPECT_TRUE(bitwise(as_floats(first[0]), as_floats(again[0])));
  EXPECT_GE(metric(c.Get("/metrics")->body, "leanembed_model_loads"), 2);
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, EmbeddingCacheIsSharedByReplicas) {
  const std::filesystem::path store = std::filesystem::path(binary_dir()) / "test_server_tmp" / ("cache-" + std::to_string(::getpid()));
  std::filesystem::remove_all(store);
  ServerProcess a({"--model", tiny_model(), "--embedding-cache", store.string()});
  ServerProcess b({"--model", tiny_model(), "--embedding-cache", store.string()});
  auto ca = a.client();
  auto cb = b.client();
  json first = post_json(ca, "/embed", {{"inputs", {"cached text one", "cached text two"}}});
  json second = post_json(cb, "/embed", {{"inputs", {"cached text two", "cached text one"}}});
  EXPECT_TRUE(bitwise(as_floats(first[0]), as_floats(second[1])));
  EXPECT_TRUE(bitwise(as_floats(first[1]), as_floats(second[0])));
  EXPECT_EQ(metric(cb.Get("/metrics")->body, "leanembed_cache_hits"), 2);
  EXPECT_EQ(metric(ca.Get("/metrics")->body, "leanembed_cache_misses"), 2);
  // The same vector as without a cache.
  ServerProcess plain({"--model", tiny_model()});
  auto plain_client = plain.client();
  json fresh = post_json(plain_client, "/embed", {{"inputs", "cached text one"}});
  EXPECT_TRUE(bitwise(as_floats(first[0]), as_floats(fresh[0])));
  EXPECT_EQ(a.stop(), 0);
  EXPECT_EQ(b.stop(), 0);
  std::filesystem::remove_all(store);
}

TEST(Server, RefusesToStartWithBadOptions) {
  EXPECT_THROW(ServerProcess({"--model", tiny_model(), "--max-batch-tokens", "4"}), std::runtime_error);
  EXPECT_THROW(ServerProcess({"--model", "/nonexistent/model/folder"}), std::runtime_error);
}

TEST(Server, BatchesRespectTheTokenAndInputLimits) {
  // Limits far below what the concurrent load offers: every batch must stay within them (the
  // histograms' buckets at the limits hold every batch), and answers stay right.
  ServerProcess s({"--model", tiny_model(), "--max-batch-tokens", "128", "--max-batch-requests", "4", "--max-length", "64"});
  std::vector<std::string> texts = corpus_sentences(64);
  auto first = s.client();
  json want = post_json(first, "/embed", {{"inputs", json(std::vector<std::string>(texts.begin(), texts.begin() + 32))}, {"truncate", true}});
  ASSERT_EQ(want.size(), 32u) << want.dump();
  std::atomic<int> wrong{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&] {
      auto c = s.client();
      for (int k = 0; k < 4; ++k) {
        auto r = c.Post("/embed", json({{"inputs", json(std::vector<std::string>(texts.begin(), texts.begin() + 32))}, {"truncate", true}}).dump(), kJson);
        if (!r || r->status != 200 || json::parse(r->body) != want) ++wrong;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(wrong.load(), 0);
  const std::string m = s.client().Get("/metrics")->body;
  const double batches = metric(m, "leanembed_batch_inputs_count");
  EXPECT_GE(batches, 25 * 32 / 4);  // 25 requests of 32 inputs, at most 4 inputs per batch
  auto bucket = [&](const std::string& name, const std::string& le) {
    const std::string key = name + "_bucket{le=\"" + le + "\"} ";
    const size_t at = m.find(key);
    return at == std::string::npos ? -1.0 : std::stod(m.substr(at + key.size()));
  };
  EXPECT_EQ(bucket("leanembed_batch_inputs", "4"), batches);
  EXPECT_EQ(bucket("leanembed_batch_tokens", "128"), batches);
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, ServesASafetensorsFolderAsTheCliDoes) {
  ServerProcess s({"--model", tiny_model(), "--model-format", "safetensors"});
  auto c = s.client();
  const std::vector<std::string> texts = {"Weights from model.safetensors.", "A second one."};
  json got = post_json(c, "/embed", {{"inputs", texts}});
  const auto want = cli_vectors(tiny_model(), texts, "--model-format safetensors");
  ASSERT_EQ(got.size(), 2u);
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_TRUE(bitwise(as_floats(got[i]), want[i])) << i;
  EXPECT_EQ(s.stop(), 0);
}

// ---- Shutdown: --graceful-timeout ----

namespace {

// `count` distinct inputs of about 300 words each (truncated to the model's 256 tokens): with
// --max-batch-requests 1 the encoder runs them one at a time, so the request stays in flight for
// `count` encoder runs.
json many_long_inputs(int count) {
  json inputs = json::array();
  for (int i = 0; i < count; ++i) inputs.push_back(long_text(300) + std::to_string(i));
  return inputs;
}

// Waits (bounded) until the server counts a request in flight; false if it never did.
bool wait_until_in_flight(ServerProcess& s, const std::atomic<bool>& answered) {
  for (int i = 0; i < 2000 && !answered; ++i) {
    auto m = s.client().Get("/metrics");
    if (m && metric(m->body, "leanembed_requests_in_flight") >= 1) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// Sends SIGTERM while a request of 1024 inputs is in flight (the signal comes right after the
// server reports it admitted; it cannot have run 1024 encoder runs by then) and checks that with a
// graceful timeout this short (`s` is started with one) the request is answered 503, not computed
// to the end, and the process exits 0 within the guard. Fails if the timeout were ignored (200, or
// no exit before the guard), if what is left were dropped unanswered (no answer, or the client's
// read guard), or if the process crashed or exited non-zero.
void expect_503_when_the_graceful_timeout_expires(ServerProcess& s) {
  const std::string body = json({{"inputs", many_long_inputs(1024)}, {"truncate", true}}).dump();
  std::atomic<bool> answered{false};
  int status = 0;
  std::string answer;
  std::thread client([&] {
    auto c = s.client(120);
    auto r = c.Post("/embed", body, kJson);
    status = r ? r->status : -1;
    if (r) answer = r->body;
    answered = true;
  });
  const bool in_flight = wait_until_in_flight(s, answered);
  ::kill(s.pid(), SIGTERM);
  const int code = s.stop(SIGTERM, 120);  // the guard: a correct server exits at once
  client.join();
  ASSERT_TRUE(in_flight) << "the request was never admitted; status " << status << " " << answer;
  EXPECT_EQ(code, 0) << s.stderr_text();
  ASSERT_EQ(status, 503) << answer.substr(0, 300);
  const json j = json::parse(answer);
  EXPECT_EQ(j["error_type"], "unhealthy") << answer;
  EXPECT_NE(j["error"].get<std::string>().find("shutting down"), std::string::npos) << answer;
  EXPECT_NE(s.stderr_text().find("answering them 503"), std::string::npos) << s.stderr_text();
}

}  // namespace

TEST(Server, GracefulTimeoutExpiryAnswersTheRequestInFlight503AndExitsZero) {
  ServerProcess s({"--model", tiny_model(), "--graceful-timeout", "0", "--max-batch-requests", "1",
                   "--max-client-batch-size", "1024", "--payload-limit", "8000000"});
  expect_503_when_the_graceful_timeout_expires(s);
}

TEST(Server, RequestFinishingWithinTheGracefulTimeoutGetsItsVectors) {
  // 256 inputs run one by one: still in flight when SIGTERM comes right after its admission (the
  // server's "finishing 1 requests in flight" line says so); the timeout (a guard) leaves it time
  // to finish. Fails if draining cut it short (503), lost or mixed up vectors (not bitwise the
  // CLI's), or the process did not exit 0.
  const json inputs = many_long_inputs(256);
  ServerProcess s({"--model", tiny_model(), "--graceful-timeout", "600", "--max-batch-requests", "1",
                   "--max-client-batch-size", "256"});
  const std::string body = json({{"inputs", inputs}, {"truncate", true}}).dump();
  std::atomic<bool> answered{false};
  int status = 0;
  std::string answer;
  std::thread client([&] {
    auto c = s.client(600);
    auto r = c.Post("/embed", body, kJson);
    status = r ? r->status : -1;
    if (r) answer = r->body;
    answered = true;
  });
  const bool in_flight = wait_until_in_flight(s, answered);
  ::kill(s.pid(), SIGTERM);
  const int code = s.stop(SIGTERM, 600);
  client.join();
  ASSERT_TRUE(in_flight) << "the request was never admitted; status " << status;
  EXPECT_NE(s.stderr_text().find("finishing 1 requests in flight"), std::string::npos) << s.stderr_text();
  EXPECT_EQ(s.stderr_text().find("answering them 503"), std::string::npos) << s.stderr_text();
  EXPECT_EQ(code, 0) << s.stderr_text();
  ASSERT_EQ(status, 200) << answer.substr(0, 300);
  const json got = json::parse(answer);
  ASSERT_EQ(got.size(), inputs.size());
  const auto want = cli_vectors(tiny_model(), inputs.get<std::vector<std::string>>());
  int different = 0;
  for (size_t i = 0; i < want.size(); ++i) different += !bitwise(as_floats(got[i]), want[i]);
  EXPECT_EQ(different, 0);
}

// ---- --max-connections ----

namespace {

const std::string kHealth = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

// A connection the server has surely accepted: one request answered on it, then left open (idle
// keep-alive). -1 if that failed.
int accepted_connection(int port) {
  const int fd = connect_to(port);
  if (fd < 0) return -1;
  send_all(fd, kHealth);
  if (read_response(fd, 60).status != 200) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

TEST(Server, MaxConnectionsKeepsAnExtraClientInTheBacklogUntilOneCloses) {
  // --max-connections 2, both taken: one idle keep-alive, one with a half-sent request. Two more
  // clients connect (the kernel queues them in the listen backlog) and send a request. Neither may
  // be answered while both slots are held; closing one slot lets exactly the first of them in (the
  // second still waits: the limit holds again), closing the other lets the second in. Fails if the
  // server served beyond its limit, refused or reset the waiting clients instead of keeping them,
  // never took them in after a slot freed (the read guard), or crashed or hung (no clean exit).
  // --client-timeout is long so that no slot frees itself during the test.
  ServerProcess s({"--model", tiny_model(), "--max-connections", "2", "--client-timeout", "600"});
  const int idle = accepted_connection(s.port());
  ASSERT_GE(idle, 0);
  const int half = accepted_connection(s.port());
  ASSERT_GE(half, 0);
  send_all(half, "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inp");  // body never finished

  const int first = connect_to(s.port());
  const int second = connect_to(s.port());
  ASSERT_GE(first, 0);
  ASSERT_GE(second, 0);
  send_all(first, kHealth);
  send_all(second, post_request("/embed", json({{"inputs", "a client from the backlog"}}).dump()));
  // Round trips on the idle slot: the server's event loop has turned since the extra clients'
  // requests were sent, and the server is still serving its open connections.
  for (int i = 0; i < 2; ++i) {
    send_all(idle, kHealth);
    EXPECT_EQ(read_response(idle, 60).status, 200);
  }
  EXPECT_TRUE(stays_silent(first, 0.5)) << "answered beyond --max-connections 2";
  EXPECT_TRUE(stays_silent(second, 0.5)) << "answered beyond --max-connections 2";

  ::close(idle);  // one slot frees: the first extra client is served (its /health), the second waits
  const RawResponse first_answer = read_response(first, 60);
  EXPECT_EQ(first_answer.status, 200) << first_answer.head;
  EXPECT_TRUE(stays_silent(second, 0.5)) << "answered beyond --max-connections 2 after one slot freed";

  ::close(half);  // the second slot frees: the second extra client's /embed is served
  const RawResponse second_answer = read_response(second, 60);
  ASSERT_EQ(second_answer.status, 200) << second_answer.head;
  const json vector = json::parse(second_answer.body);
  ::close(first);
  ::close(second);

  // The server is fine: a new client is served (slots are free again) and gets the same vector.
  auto c = s.client();
  EXPECT_TRUE(bitwise(as_floats(vector[0]), as_floats(post_json(c, "/embed", {{"inputs", "a client from the backlog"}})[0])));
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, LeanembedVariablesOfEveryKindConfigureTheServer) {
  // No flag on the command line but the fixture's: every setting below comes from LEANEMBED_<FLAG>
  // (text, choice, integer, switch, list, unsigned, seconds). Each check fails if its variable
  // were not read (the server would run on the default, named after the check).
  ServerProcess s({}, {"LEANEMBED_MODEL=" + tiny_model(),             // text (default: the hub's MiniLM)
                       "LEANEMBED_POOLING=cls",                       // choice (default: the folder's mean)
                       "LEANEMBED_MAX_BATCH_REQUESTS=3",              // integer (default: none)
                       "LEANEMBED_AUTO_TRUNCATE=true",                // switch (default: off)
                       "LEANEMBED_CORS_ALLOW_ORIGIN=http://a.example,http://b.example",  // list (default: none)
                       "LEANEMBED_MAX_CONNECTIONS=2",                 // unsigned (default: 1024)
                       "LEANEMBED_CLIENT_TIMEOUT=600",                // unsigned (default 10 s would free slots)
                       "LEANEMBED_GRACEFUL_TIMEOUT=0",                // seconds (default: 30)
                       "LEANEMBED_MAX_CLIENT_BATCH_SIZE=1024", "LEANEMBED_PAYLOAD_LIMIT=8000000"});
  {
    auto c = s.client();
    const json info = json::parse(c.Get("/info")->body);
    EXPECT_EQ(info["model_id"], tiny_model());
    EXPECT_EQ(info["model_type"]["embedding"]["pooling"], "cls");
    EXPECT_EQ(info["max_batch_requests"], 3);
    EXPECT_EQ(info["auto_truncate"], true);
    for (const char* origin : {"http://a.example", "http://b.example"}) {
      auto r = c.Get("/health", {{"Origin", origin}});
      ASSERT_TRUE(r);
      EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), origin);
    }
  }
  {  // --max-connections 2: with two connections held, a third waits until one closes.
    const int a = accepted_connection(s.port());
    const int b = accepted_connection(s.port());
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    const int extra = connect_to(s.port());
    ASSERT_GE(extra, 0);
    send_all(extra, kHealth);
    send_all(a, kHealth);
    EXPECT_EQ(read_response(a, 60).status, 200);
    EXPECT_TRUE(stays_silent(extra, 0.5)) << "answered beyond LEANEMBED_MAX_CONNECTIONS=2";
    ::close(a);
    EXPECT_EQ(read_response(extra, 60).status, 200);
    ::close(b);
    ::close(extra);
  }
  // --graceful-timeout 0: the request in flight at SIGTERM is answered 503.
  expect_503_when_the_graceful_timeout_expires(s);
}
