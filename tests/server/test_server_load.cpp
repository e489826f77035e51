// `leanembed serve` on the full-size MiniLM: vectors bitwise equal to `leanembed embed` (also under
// concurrent clients, in batches of every shape), 429 at once when overloaded, vanished clients
// dropped before compute, SIGTERM finishing what is in flight. Labelled heavy (release stage only).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "server_test_support.h"

using namespace leanembed::test;
using nlohmann::json;

TEST(Server, EmbedAndOpenAiGiveTheCliVectorsBitwise) {
  ServerProcess s({"--model", minilm_model()});
  auto c = s.client();
  const std::vector<std::string> texts = {"The cat sat on the mat.", "A second, somewhat longer sentence about servers.",
                                          "Ünïcödé text — with dashes."};
  const auto want = cli_vectors(minilm_model(), texts);
  int status = 0;
  json single = post_json(c, "/embed", {{"inputs", texts[0]}}, &status);
  ASSERT_EQ(status, 200);
  ASSERT_EQ(single.size(), 1u);
  EXPECT_TRUE(bitwise(as_floats(single[0]), want[0]));
  json batch = post_json(c, "/embed", {{"inputs", texts}});
  ASSERT_EQ(batch.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_TRUE(bitwise(as_floats(batch[i]), want[i])) << i;
  for (const char* route : {"/v1/embeddings", "/embeddings"}) {
    json o = post_json(c, route, {{"input", texts}, {"model", "anything"}}, &status);
    ASSERT_EQ(status, 200) << o.dump();
    EXPECT_EQ(o["object"], "list");
    EXPECT_EQ(o["model"], minilm_model());
    ASSERT_EQ(o["data"].size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      EXPECT_EQ(o["data"][i]["object"], "embedding");
      EXPECT_EQ(o["data"][i]["index"], i);
      EXPECT_TRUE(bitwise(as_floats(o["data"][i]["embedding"]), want[i])) << route << " " << i;
    }
    EXPECT_GT(o["usage"]["prompt_tokens"].get<int>(), 10);
    EXPECT_EQ(o["usage"]["prompt_tokens"], o["usage"]["total_tokens"]);
  }
  // base64: the little-endian float32 bytes.
  json b = post_json(c, "/v1/embeddings", {{"input", texts[1]}, {"encoding_format", "base64"}});
  const std::string encoded = b["data"][0]["embedding"];
  std::string bytes;
  {
    auto value = [](char ch) -> int { const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"; return static_cast<int>(std::strchr(t, ch) - t); };
    for (size_t i = 0; i + 3 < encoded.size() + 0 && i < encoded.size(); i += 4) {
      uint32_t v = 0;
      int pad = 0;
      for (int k = 0; k < 4; ++k) {
        char ch = encoded[i + k];
        if (ch == '=') { ++pad; v <<= 6; } else v = (v << 6) | static_cast<uint32_t>(value(ch));
      }
      bytes += static_cast<char>(v >> 16);
      if (pad < 2) bytes += static_cast<char>(v >> 8);
      if (pad < 1) bytes += static_cast<char>(v);
    }
  }
  ASSERT_EQ(bytes.size(), want[1].size() * 4);
  EXPECT_EQ(std::memcmp(bytes.data(), want[1].data(), bytes.size()), 0);
  // TEI's headers.
  auto r = c.Post("/embed", json({{"inputs", texts}}).dump(), kJson);
  ASSERT_TRUE(r);
  for (const char* h : {"x-compute-time", "x-compute-tokens", "x-compute-characters", "x-total-time", "x-tokenization-time",
                        "x-queue-time", "x-inference-time"}) {
    EXPECT_TRUE(r->has_header(h)) << h;
  }
  size_t chars = 0;
  for (const auto& t : texts) chars += static_cast<size_t>(std::count_if(t.begin(), t.end(), [](char ch) { return (static_cast<unsigned char>(ch) & 0xC0) != 0x80; }));
  EXPECT_EQ(r->get_header_value("x-compute-characters"), std::to_string(chars));
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, DimensionsAndNormalizeMatchTheCliOptions) {
  ServerProcess s({"--model", minilm_model()});
  auto c = s.client();
  const std::vector<std::string> texts = {"Matryoshka vectors keep their first dimensions."};
  json d = post_json(c, "/embed", {{"inputs", texts}, {"dimensions", 64}});
  EXPECT_TRUE(bitwise(as_floats(d[0]), cli_vectors(minilm_model(), texts, "--dims 64")[0]));
  json raw = post_json(c, "/embed", {{"inputs", texts}, {"normalize", false}});
  EXPECT_TRUE(bitwise(as_floats(raw[0]), cli_vectors(minilm_model(), texts, "--no-normalize")[0]));
  json o = post_json(c, "/v1/embeddings", {{"input", texts}, {"dimensions", 32}});
  EXPECT_TRUE(bitwise(as_floats(o["data"][0]["embedding"]), cli_vectors(minilm_model(), texts, "--dims 32")[0]));
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, ConcurrentClientsEachGetTheCliVectorBitwise) {
  ServerProcess s({"--model", minilm_model(), "--max-batch-requests", "16", "--tokenization-workers", "2"});
  const std::vector<std::string> texts = corpus_sentences(96);
  const auto want = cli_vectors(minilm_model(), texts);
  std::atomic<int> wrong{0}, failed{0};
  std::mutex problem_mutex;
  std::string first_problem;  // what the first failed request or differing vector was
  auto note = [&](const std::string& what) {
    std::lock_guard lock(problem_mutex);
    if (first_problem.empty()) first_problem = what;
  };
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      auto c = s.client();
      for (size_t i = static_cast<size_t>(t); i < texts.size(); i += 8) {
        // Alternate single-text and 3-text requests so batches mix requests of every shape.
        std::vector<size_t> idx = {i};
        if (i % 2 == 0) idx = {i, (i + 31) % texts.size(), (i + 57) % texts.size()};
        json inputs = json::array();
        for (size_t k : idx) inputs.push_back(texts[k]);
        auto r = c.Post(i % 3 == 0 ? "/v1/embeddings" : "/embed", json({{i % 3 == 0 ? "input" : "inputs", inputs}}).dump(), kJson);
        if (!r || r->status != 200) {
          ++failed;
          note("request " + std::to_string(i) + ": " +
               (r ? "status " + std::to_string(r->status) + ", body " + r->body.substr(0, 300)
                  : "no answer (" + httplib::to_string(r.error()) + ")"));
          continue;
        }
        json j = json::parse(r->body);
        for (size_t k = 0; k < idx.size(); ++k) {
          const json& v = i % 3 == 0 ? j["data"][k]["embedding"] : j[k];
          if (!bitwise(as_floats(v), want[idx[k]])) {
            ++wrong;
            note("request " + std::to_string(i) + ": the vector of text " + std::to_string(idx[k]) + " differs from the CLI's");
          }
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0) << first_problem;
  EXPECT_EQ(wrong.load(), 0) << first_problem;
  // Requests were batched together (some batch held more than one input).
  auto m = s.client().Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_GT(metric(m->body, "leanembed_batch_inputs_count"), 0);
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, OverloadIsRefusedAtOnceWith429) {
  // One request admitted at a time; clients fire together until one is refused (bounded rounds).
  ServerProcess s({"--model", minilm_model(), "--max-concurrent-requests", "1", "--tokenization-workers", "1"});
  json inputs = json::array();
  for (int i = 0; i < 32; ++i) inputs.push_back(long_text(200) + std::to_string(i));
  const std::string body = json({{"inputs", inputs}, {"truncate", true}}).dump();
  int refused = 0, ok = 0, other = 0;
  std::string refusal;
  for (int round = 0; round < 10 && refused == 0; ++round) {
    std::mutex mu;
    std::vector<std::thread> clients;
    for (int t = 0; t < 6; ++t) {
      clients.emplace_back([&] {
        auto c = s.client();
        auto r = c.Post("/embed", body, kJson);
        std::lock_guard lock(mu);
        if (r && r->status == 429) ++refused, refusal = r->body;
        else if (r && r->status == 200) ++ok;
        else ++other;
      });
    }
    for (auto& t : clients) t.join();
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(ok, 0);
  EXPECT_EQ(other, 0);
  if (refused) {
    json j = json::parse(refusal);
    EXPECT_EQ(j["error"], "Model is overloaded");
    EXPECT_EQ(j["error_type"], "overloaded");
  }
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, VanishedClientsAreDroppedBeforeCompute) {
  // Batches of one input: a 32-input request keeps the encoder busy while a second client sends its
  // request and hangs up; its inputs must be dropped, not computed.
  ServerProcess s({"--model", minilm_model(), "--max-batch-requests", "1"});
  json inputs = json::array();
  for (int i = 0; i < 32; ++i) inputs.push_back(long_text(200) + std::to_string(i));
  std::thread busy([&] {
    auto c = s.client();
    auto r = c.Post("/embed", json({{"inputs", inputs}, {"truncate", true}}).dump(), kJson);
    EXPECT_TRUE(r && r->status == 200);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int k = 0; k < 3; ++k) {
    int fd = connect_to(s.port());
    send_all(fd, post_request("/embed", json({{"inputs", inputs}, {"truncate", true}}).dump()));
    ::close(fd);
  }
  busy.join();
  double gone = 0;
  for (int i = 0; i < 200 && gone < 3; ++i) {  // the last dropped one may still be in the queue
    gone = metric(s.client().Get("/metrics")->body, "leanembed_client_gone_requests_total");
    if (gone < 3) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(gone, 3);
  const std::string m = s.client().Get("/metrics")->body;
  // 32 inputs computed for the client that stayed; none for the three that left (at most one each
  // if its hang-up reached the server only after its first batch was taken).
  EXPECT_GE(metric(m, "leanembed_batch_inputs_sum"), 32);
  EXPECT_LE(metric(m, "leanembed_batch_inputs_sum"), 32 + 3);
  EXPECT_EQ(s.stop(), 0);
}

TEST(Server, SigtermFinishesRequestsInFlightThenExitsZero) {
  ServerProcess s({"--model", minilm_model(), "--max-batch-requests", "1"});
  json inputs = json::array();
  for (int i = 0; i < 32; ++i) inputs.push_back(long_text(200) + std::to_string(i));
  const std::string body = json({{"inputs", inputs}, {"truncate", true}}).dump();
  std::atomic<int> status{0};
  std::string answer;
  std::thread client([&] {
    auto c = s.client();
    auto r = c.Post("/embed", body, kJson);
    if (r) answer = r->body;
    status = r ? r->status : -1;
  });
  // Wait until the request is admitted, then ask the server to stop.
  bool admitted = false;
  for (int i = 0; i < 400 && !admitted && status == 0; ++i) {
    auto m = s.client().Get("/metrics");
    admitted = m && metric(m->body, "leanembed_requests_in_flight") >= 1;
    if (!admitted) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(admitted);
  // A kept-alive connection opened before the signal: once draining, /health and new work get 503
  // (load balancers take the replica out) while the request in flight goes on.
  const int kept = connect_to(s.port());
  send_all(kept, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string first_health;
  for (int i = 0; i < 200 && first_health.find("\r\n\r\n") == std::string::npos; ++i) {
    char buf[512];
    pollfd p{kept, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      ssize_t n = ::recv(kept, buf, sizeof buf, 0);
      if (n <= 0) break;
      first_health.append(buf, static_cast<size_t>(n));
    }
  }
  EXPECT_NE(first_health.find(" 200 "), std::string::npos) << first_health;
  ::kill(s.pid(), SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (status == 0) {  // still in flight: the server is draining
    send_all(kept, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    auto [draining, closed] = read_until_closed(kept, 10);
    EXPECT_NE(draining.find(" 503 "), std::string::npos) << draining;
  }
  ::close(kept);
  const int code = s.stop(SIGTERM, 120);
  client.join();
  EXPECT_EQ(code, 0);
  EXPECT_EQ(status.load(), 200);
  if (status == 200) {
    EXPECT_EQ(json::parse(answer).size(), 32u);
  }
  // Nobody listens any more.
  EXPECT_LT(connect_to(s.port()), 0);
}
