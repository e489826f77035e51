// Downloads from the Hugging Face hub's URL layout, against a server on 127.0.0.1 started by the
// test (test_hub_server.h): which files are fetched, redirects and the token, every failure's
// error and that the cache never holds a partial file, offline mode, the lock between fetchers,
// and that a fetched model embeds bitwise as the local folder does.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "embed/model_folder.h"
#include "hub/http_get.h"
#include "hub/hub.h"
#include "hub_test_support.h"
#include "leanembed/embedder.h"
#include "leanembed/error.h"
#include "test_hub_server.h"
#include "test_tls.h"

namespace fs = std::filesystem;
using namespace leanembed;
using leanembed::test::TestHubServer;
using Act = TestHubServer::Act;

namespace {

const std::string kId = "test-org/tiny-bert";
const std::vector<std::string> kFp32 = {"onnx/model.onnx"};

// What a fp32 fetch of tiny-bert-synthetic brings: config, tokenizer, sentence-transformers
// metadata and onnx/model.onnx; not vocab.txt, special_tokens_map.json, model.safetensors or the
// other onnx files the folder also holds.
const std::set<std::string> kFp32Files = {
    "config.json",  "tokenizer_config.json", "modules.json",     "1_Pooling/config.json", "sentence_bert_config.json",
    "config_sentence_transformers.json",     "tokenizer.json", "onnx/model.onnx"};

class Hub : public ::testing::Test {
 protected:
  void SetUp() override {
    test::clean_hub_environment();
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    cache_ = test::hub_scratch(info->name());
  }
  void TearDown() override { test::clean_hub_environment(); }

  ModelLocation location(const TestHubServer& server, const std::string& id = kId) const {
    ModelLocation where;
    where.model = id;
    where.model_cache_dir = cache_.string();
    where.endpoint = server.endpoint();
    return where;
  }
  fs::path folder(const std::string& id = kId) const { return cache_ / id; }

  // The error fetch_model throws (the test fails if it returns).
  Error fetch_error(const ModelLocation& where, const std::vector<std::string>& files = kFp32, hub::FetchOptions options = {}) {
    try {
      hub::fetch_model(where, cache_.string(), files, options);
    } catch (const Error& e) {
      return e;
    }
    ADD_FAILURE() << "expected an error";
    return Error(ErrorCode::runtime, "");
  }

  // No "<file>.incomplete" anywhere and each file there identical to the source.
  void expect_only_whole_files(const fs::path& source = test::tiny_model()) {
    for (const auto& name : test::files_in(folder())) {
      EXPECT_FALSE(name.ends_with(".incomplete")) << name;
      if (!name.ends_with(".incomplete")) {
        EXPECT_TRUE(test::same_files(source, folder(), {name})) << name;
      }
    }
  }

  fs::path cache_;
};

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

}  // namespace

TEST_F(Hub, FetchesOnlyTheFilesTheDtypeNeedsAndNothingOnTheNextLoad) {
  TestHubServer server(test::tiny_model(), kId);
  const fs::path got = hub::fetch_model(location(server), cache_.string(), kFp32);
  EXPECT_EQ(got, folder());
  EXPECT_EQ(test::files_in(folder()), kFp32Files);
  EXPECT_TRUE(test::same_files(test::tiny_model(), folder(), kFp32Files));
  EXPECT_EQ(server.count("onnx/model.onnx_data"), 1);  // external data: asked for, absent (404), remembered
  EXPECT_EQ(server.count("vocab.txt"), 0);
  EXPECT_EQ(server.count("model.safetensors"), 0);
  EXPECT_TRUE(contains(test::read_file((folder() / ".leanembed-hub-absent").string()), "onnx/model.onnx_data"));
  const size_t asked = server.requests().size();
  EXPECT_EQ(hub::fetch_model(location(server), cache_.string(), kFp32), folder());
  EXPECT_EQ(server.requests().size(), asked);  // complete: no request at all
  for (const auto& r : server.requests()) EXPECT_EQ(r.authorization, "") << r.path;  // no token: no header
}

TEST_F(Hub, ModelFolderResolutionFetchesAHubIdAndPrefersTheDtypesOwnFile) {
  TestHubServer server(test::tiny_model(), kId);
  ModelLocation where = location(server);
  where.dtype = Dtype::q8;
  const ModelFolder m = resolve_model_folder(where);
  EXPECT_EQ(m.folder, folder().string());
  EXPECT_EQ(m.onnx_path, (folder() / "onnx/model_quantized.onnx").string());
  EXPECT_FALSE(m.quantize_at_load);
  EXPECT_EQ(server.count("onnx/model.onnx"), 0);
  EXPECT_EQ(m.pooling, Pooling::mean);
  EXPECT_EQ(m.max_length, 256);  // sentence_bert_config.json came along
  EXPECT_TRUE(test::same_files(test::tiny_model(), folder(), {"onnx/model_quantized.onnx"}));
}

TEST_F(Hub, DtypeFileTheHubLacksFallsBackToModelOnnxQuantizedAtLoad) {
  TestHubServer server(test::tiny_model(), kId);
  server.set("onnx/model_q4.onnx", {.act = Act::not_found});
  ModelLocation where = location(server);
  where.dtype = Dtype::q4;
  ModelFolder m = resolve_model_folder(where);
  EXPECT_EQ(m.onnx_path, (folder() / "onnx/model.onnx").string());
  EXPECT_TRUE(m.quantize_at_load);
  const size_t asked = server.requests().size();
  m = resolve_model_folder(where);  // the 404 is remembered: the next load asks nothing
  EXPECT_TRUE(m.quantize_at_load);
  EXPECT_EQ(server.requests().size(), asked);
  EXPECT_EQ(server.count("onnx/model_q4.onnx"), 1);
}

TEST_F(Hub, DtypeWeCannotMakeIsAnErrorWhenTheHubLacksIt) {
  TestHubServer server(test::tiny_model(), kId);
  ModelLocation where = location(server);
  where.dtype = Dtype::q4f16;  // not in the folder, and not one leanembed quantizes to
  try {
    resolve_model_folder(where);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io);
    EXPECT_TRUE(contains(e.what(), server.endpoint() + "/" + kId + "/resolve/main/onnx/model_q4f16.onnx")) << e.what();
    EXPECT_TRUE(contains(e.what(), "--dtype")) << e.what();
  }
  EXPECT_FALSE(fs::exists(folder() / "onnx/model_q4f16.onnx"));
  expect_only_whole_files();
}

TEST_F(Hub, RedirectToAnotherHostIsFollowedWithoutTheToken) {
  TestHubServer cdn(test::tiny_model(), kId);
  TestHubServer server(test::tiny_model(), kId);
  server.require_token("hf_good_token");
  server.set("onnx/model.onnx", {.act = Act::redirect, .target = &cdn});
  server.set("tokenizer.json", {.act = Act::redirect, .target = &cdn});
  ModelLocation where = location(server);
  where.token = "hf_good_token";
  hub::fetch_model(where, cache_.string(), kFp32);
  EXPECT_EQ(test::files_in(folder()), kFp32Files);
  EXPECT_TRUE(test::same_files(test::tiny_model(), folder(), kFp32Files));
  for (const auto& r : server.requests()) EXPECT_EQ(r.authorization, "Bearer hf_good_token") << r.path;
  ASSERT_EQ(cdn.requests().size(), 2u);
  for (const auto& r : cdn.requests()) {
    EXPECT_EQ(r.authorization, "") << "the token went to the redirect's host: " << r.path;
    EXPECT_EQ(r.host, "localhost:" + std::to_string(cdn.port()));
  }
}

TEST_F(Hub, OptionalFileThe404sIsFineAndNotAskedForAgain) {
  TestHubServer server(test::tiny_model(), kId);
  server.set("modules.json", {.act = Act::not_found});
  hub::fetch_model(location(server), cache_.string(), kFp32);
  std::set<std::string> expected = kFp32Files;
  expected.erase("modules.json");
  expected.erase("1_Pooling/config.json");  // only modules.json says where the Pooling module is
  EXPECT_EQ(test::files_in(folder()), expected);
  EXPECT_EQ(server.count("1_Pooling/config.json"), 0);
  // Another dtype later: its file is fetched, the remembered 404 is not asked again.
  hub::fetch_model(location(server), cache_.string(), {"onnx/model_fp16.onnx"});
  EXPECT_TRUE(test::same_files(test::tiny_model(), folder(), {"onnx/model_fp16.onnx"}));
  EXPECT_EQ(server.count("modules.json"), 1);
  EXPECT_EQ(server.count("onnx/model_fp16.onnx_data"), 1);
}

TEST_F(Hub, ServerErrorIsAnIoErrorNamingTheUrlAndKeepsNothing) {
  TestHubServer server(test::tiny_model(), kId);
  server.set("tokenizer.json", {.act = Act::server_error});
  const Error e = fetch_error(location(server));
  EXPECT_EQ(e.code(), ErrorCode::io);
  EXPECT_TRUE(contains(e.what(), server.endpoint() + "/" + kId + "/resolve/main/tokenizer.json")) << e.what();
  EXPECT_TRUE(contains(e.what(), "HTTP 500")) << e.what();
  EXPECT_FALSE(fs::exists(folder() / "tokenizer.json"));
  EXPECT_FALSE(fs::exists(folder() / "onnx/model.onnx"));
  expect_only_whole_files();
  EXPECT_FALSE(fs::exists(folder() / ".leanembed-hub-absent"));  // a failed session remembers nothing
}

TEST_F(Hub, ConnectionCutMidFileKeepsNothingAndTheNextFetchCompletes) {
  TestHubServer server(test::tiny_model(), kId);
  const auto size = fs::file_size(fs::path(test::tiny_model()) / "onnx/model.onnx");
  server.set("onnx/model.onnx", {.act = Act::cut, .bytes = size / 2, .times = 1});
  const Error e = fetch_error(location(server));
  EXPECT_EQ(e.code(), ErrorCode::io);
  EXPECT_TRUE(contains(e.what(), "onnx/model.onnx")) << e.what();
  EXPECT_TRUE(contains(e.what(), "cut") || contains(e.what(), "closed")) << e.what();
  EXPECT_FALSE(fs::exists(folder() / "onnx/model.onnx"));
  expect_only_whole_files();
  EXPECT_THROW(resolve_model_folder([&] {
                 ModelLocation w = location(server);
                 w.local_files_only = true;  // what is there does not load
                 return w;
               }()),
               Error);
  hub::fetch_model(location(server), cache_.string(), kFp32);
  EXPECT_EQ(test::files_in(folder()), kFp32Files);
  EXPECT_TRUE(test::same_files(test::tiny_model(), folder(), kFp32Files));
  EXPECT_EQ(server.count("tokenizer.json"), 1);  // whole files of the failed session are kept
}

TEST_F(Hub, BodyShorterThanItsContentLengthIsAnError) {
  TestHubServer server(test::tiny_model(), kId);
  server.set("tokenizer.json", {.act = Act::short_body, .bytes = 1000});
  const Error e = fetch_error(location(server));
  EXPECT_EQ(e.code(), ErrorCode::io);
  EXPECT_TRUE(contains(e.what(), "tokenizer.json")) << e.what();
  EXPECT_TRUE(contains(e.what(), "shorter than its Content-Length")) << e.what();
  EXPECT_FALSE(fs::exists(folder() / "tokenizer.json"));
  expect_only_whole_files();
}

TEST_F(Hub, StalledTransferTimesOut) {
  TestHubServer server(test::tiny_model(), kId);
  server.set("tokenizer.json", {.act = Act::stall, .bytes = 100});
  const Error e = fetch_error(location(server), kFp32, {.stall_timeout_seconds = 1});
  EXPECT_EQ(e.code(), ErrorCode::io);
  EXPECT_TRUE(contains(e.what(), "timed out")) << e.what();
  EXPECT_FALSE(fs::exists(folder() / "tokenizer.json"));
  expect_only_whole_files();
}

TEST_F(Hub, NoServerIsAnIoErrorNamingTheUrl) {
  int port = 0;
  {
    TestHubServer gone(test::tiny_model(), kId);
    port = gone.port();
  }
  ModelLocation where;
  where.model = kId;
  where.model_cache_dir = cache_.string();
  where.endpoint = "http://127.0.0.1:" + std::to_string(port);
  const Error e = fetch_error(where);
  EXPECT_EQ(e.code(), ErrorCode::io);
  EXPECT_TRUE(contains(e.what(), "cannot connect")) << e.what();
  EXPECT_TRUE(contains(e.what(), where.endpoint + "/" + kId + "/resolve/main/config.json")) << e.what();
}

TEST_F(Hub, WrongOrMissingTokenIsA401ThatNamesHfTokenButNeverTheToken) {
  TestHubServer server(test::tiny_model(), kId);
  server.require_token("hf_right");
  ::setenv("HF_TOKEN", "hf_wrong_secret_value", 1);
  Error e = fetch_error(location(server));
  EXPECT_EQ(e.code(), ErrorCode::io);
  EXPECT_TRUE(contains(e.what(), "HTTP 401")) << e.what();
  EXPECT_TRUE(contains(e.what(), "HF_TOKEN")) << e.what();
  EXPECT_TRUE(contains(e.what(), "refused")) << e.what();
  EXPECT_FALSE(contains(e.what(), "hf_wrong_secret_value")) << e.what();
  EXPECT_EQ(server.requests().at(0).authorization, "Bearer hf_wrong_secret_value");
  ::unsetenv("HF_TOKEN");
  e = fetch_error(location(server));
  EXPECT_TRUE(contains(e.what(), "no token was sent")) << e.what();
  expect_only_whole_files();
  EXPECT_TRUE(test::files_in(folder()).empty());
  // The right token through the API (it wins over $HF_TOKEN).
  ::setenv("HF_TOKEN", "hf_wrong_secret_value", 1);
  ModelLocation where = location(server);
  where.token = "hf_right";
  hub::fetch_model(where, cache_.string(), kFp32);
  EXPECT_EQ(test::files_in(folder()), kFp32Files);
}

TEST_F(Hub, MissingModelRevisionOrTokenizerSaySo) {
  TestHubServer server(test::tiny_model(), kId);
  Error e = fetch_error(location(server, "test-org/no-such-model"));
  EXPECT_TRUE(contains(e.what(), "model 'test-org/no-such-model' does not exist")) << e.what();
  ModelLocation where = location(server);
  where.revision = "v9";
  e = fetch_error(where);
  EXPECT_TRUE(contains(e.what(), "revision 'v9'")) << e.what();
  EXPECT_TRUE(contains(e.what(), "does not exist")) << e.what();
  server.set("tokenizer.json", {.act = Act::not_found});
  server.set("vocab.txt", {.act = Act::not_found});
  e = fetch_error(location(server));
  EXPECT_EQ(e.code(), ErrorCode::io);
  EXPECT_TRUE(contains(e.what(), "has no tokenizer")) << e.what();
  EXPECT_TRUE(contains(e.what(), "/resolve/main/tokenizer.json")) << e.what();
}

TEST_F(Hub, VocabTxtWhenTheHubHasNoTokenizerJson) {
  TestHubServer server(test::tiny_model(), kId);
  server.set("tokenizer.json", {.act = Act::not_found});
  const ModelFolder m = resolve_model_folder(location(server));
  EXPECT_EQ(m.tokenizer_json, "");
  EXPECT_EQ(m.vocab_txt, (folder() / "vocab.txt").string());
  EXPECT_TRUE(test::same_files(test::tiny_model(), folder(), {"vocab.txt", "special_tokens_map.json"}));
  const size_t asked = server.requests().size();
  resolve_model_folder(location(server));
  EXPECT_EQ(server.requests().size(), asked);
}

TEST_F(Hub, OfflineNamesTheUrlsAndTheFolderAndAsksNothing) {
  TestHubServer server(test::tiny_model(), kId);
  auto check = [&](const ModelLocation& where, const std::string& reason) {
    const Error e = fetch_error(where);
    EXPECT_EQ(e.code(), ErrorCode::io);
    EXPECT_TRUE(contains(e.what(), reason)) << e.what();
    EXPECT_TRUE(contains(e.what(), server.endpoint() + "/" + kId + "/resolve/main/tokenizer.json")) << e.what();
    EXPECT_TRUE(contains(e.what(), server.endpoint() + "/" + kId + "/resolve/main/onnx/model.onnx")) << e.what();
    EXPECT_TRUE(contains(e.what(), folder().string())) << e.what();
  };
  ModelLocation where = location(server);
  where.local_files_only = true;
  check(where, "local_files_only");
  ::setenv("LEANEMBED_OFFLINE", "1", 1);
  check(location(server), "LEANEMBED_OFFLINE=1");
  ::unsetenv("LEANEMBED_OFFLINE");
  ::setenv("HF_HUB_OFFLINE", "true", 1);
  check(location(server), "HF_HUB_OFFLINE=true");
  EXPECT_TRUE(server.requests().empty());
  ::setenv("HF_HUB_OFFLINE", "0", 1);  // "0" is not on
  hub::fetch_model(location(server), cache_.string(), kFp32);
  ::setenv("HF_HUB_OFFLINE", "1", 1);  // complete: offline loads it
  EXPECT_EQ(hub::fetch_model(location(server), cache_.string(), kFp32), folder());
}

TEST_F(Hub, RevisionOtherThanMainHasItsOwnFolderAndUrl) {
  TestHubServer server(test::tiny_model(), kId, "v1.0");
  ModelLocation where = location(server);
  where.revision = "v1.0";
  EXPECT_EQ(hub::fetch_model(where, cache_.string(), kFp32), cache_ / kId / "v1.0");
  EXPECT_EQ(test::files_in(cache_ / kId / "v1.0"), kFp32Files);
  EXPECT_TRUE(contains(server.requests().at(0).path, "/" + kId + "/resolve/v1.0/"));

  TestHubServer pr(test::tiny_model(), kId, "refs%2Fpr%2F1");  // encoded as encodeURIComponent does
  where = location(pr);
  where.revision = "refs/pr/1";
  EXPECT_EQ(hub::fetch_model(where, cache_.string(), kFp32), cache_ / kId / "refs/pr/1");
  where.revision = "../escape";
  EXPECT_EQ(fetch_error(where).code(), ErrorCode::invalid_argument);
  where.revision = "main";
  where.model = "test-org/bad?name";
  EXPECT_EQ(fetch_error(where).code(), ErrorCode::invalid_argument);
}

TEST_F(Hub, ModelFileNamesWhatIsFetched) {
  TestHubServer server(test::tiny_model(), kId);
  ModelLocation where = location(server);
  where.model_file = "model.safetensors";
  const ModelFolder m = resolve_model_folder(where);
  EXPECT_EQ(m.onnx_path, (folder() / "model.safetensors").string());
  EXPECT_TRUE(test::same_files(test::tiny_model(), folder(), {"model.safetensors"}));
  EXPECT_EQ(server.count("onnx/model.onnx"), 0);
  EXPECT_EQ(server.count("model.safetensors_data"), 0);  // external data is an ONNX thing
}

TEST_F(Hub, ExternalDataIsFetchedWhenTheHubHasIt) {
  const fs::path source = test::hub_scratch("external-data-source");
  for (const char* f : {"config.json", "tokenizer.json", "onnx/model.onnx"}) {
    fs::create_directories((source / f).parent_path());
    fs::copy_file(fs::path(test::tiny_model()) / f, source / f);
  }
  { std::ofstream(source / "onnx/model.onnx_data", std::ios::binary) << std::string(5000, 'w'); }
  TestHubServer server(source.string(), kId);
  hub::fetch_model(location(server), cache_.string(), kFp32);
  EXPECT_EQ(test::files_in(folder()), (std::set<std::string>{"config.json", "tokenizer.json", "onnx/model.onnx",
                                                              "onnx/model.onnx_data"}));
  expect_only_whole_files(source);
}

TEST_F(Hub, ASecondFetcherWaitsForTheLockThenUsesWhatTheFirstFetched) {
  TestHubServer server(test::tiny_model(), kId);
  fs::create_directories(folder());
  const int lock_fd = ::open((folder() / ".leanembed-hub.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(lock_fd, 0);
  ASSERT_EQ(::flock(lock_fd, LOCK_EX), 0);  // "another process" is fetching
  std::mutex m;
  std::condition_variable cv;
  bool waiting = false;
  std::string notice;
  hub::FetchOptions options;
  options.on_wait = [&](const std::string& message) {
    std::lock_guard<std::mutex> lock(m);
    waiting = true;
    notice = message;
    cv.notify_all();
  };
  fs::path result;
  std::string error;
  std::thread second([&] {
    try {
      result = hub::fetch_model(location(server), cache_.string(), kFp32, options);
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  {
    std::unique_lock<std::mutex> lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return waiting; }));
  }
  EXPECT_TRUE(contains(notice, "waiting for another process")) << notice;
  // The first fetcher finishes: the files appear, then it lets go.
  for (const auto& f : kFp32Files) {
    fs::create_directories((folder() / f).parent_path());
    fs::copy_file(fs::path(test::tiny_model()) / f, folder() / f);
  }
  ::flock(lock_fd, LOCK_UN);
  ::close(lock_fd);
  second.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(result, folder());
  EXPECT_TRUE(server.requests().empty());  // it re-checked after the lock and fetched nothing
}

TEST_F(Hub, TwoConcurrentFetchesOfTheSameModelBothSucceedWithIdenticalFiles) {
  TestHubServer server(test::tiny_model(), kId);
  std::string errors[2];
  std::thread fetchers[2];
  for (int i = 0; i < 2; ++i) {
    fetchers[i] = std::thread([&, i] {
      try {
        hub::fetch_model(location(server), cache_.string(), kFp32);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : fetchers) t.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
  EXPECT_EQ(test::files_in(folder()), kFp32Files);
  EXPECT_TRUE(test::same_files(test::tiny_model(), folder(), kFp32Files));
  EXPECT_EQ(server.count("onnx/model.onnx"), 1);  // one fetched, the other waited and found it there
}

TEST_F(Hub, FetchedModelEmbedsBitwiseAsTheLocalFolder) {
  TestHubServer server(test::minilm_model(), "test-org/minilm");
  const std::vector<std::string> texts = {"A sentence to embed.", "Another, longer sentence about hubs and caches.", ""};
  EmbedderOptions local;
  local.location.model = test::minilm_model();
  local.threads = 2;
  EmbedderOptions fetched = local;
  fetched.location = location(server, "test-org/minilm");
  const auto want = Embedder(local).embed(texts);
  const auto got = Embedder(fetched).embed(texts);
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(want[i].size(), got[i].size());
    EXPECT_EQ(std::memcmp(want[i].data(), got[i].data(), want[i].size() * sizeof(float)), 0) << "text " << i;
  }
  EXPECT_TRUE(test::same_files(test::minilm_model(), folder("test-org/minilm"), {"onnx/model.onnx", "tokenizer.json"}));
}

TEST_F(Hub, HttpsVerifiesTheCertificateAndTheHostName) {
  const fs::path dir = test::hub_scratch("tls-certificate");
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  test::make_self_signed_certificate(cert, key);
  TestHubServer server(test::tiny_model(), kId, "main", cert, key);
  ASSERT_EQ(server.endpoint().rfind("https://127.0.0.1:", 0), 0u);
  // Not in the trust store: refused before any request is sent.
  Error e = fetch_error(location(server));
  EXPECT_EQ(e.code(), ErrorCode::io);
  EXPECT_TRUE(contains(e.what(), "TLS failed")) << e.what();
  EXPECT_TRUE(contains(e.what(), server.endpoint())) << e.what();
  EXPECT_TRUE(server.requests().empty());
  EXPECT_TRUE(test::files_in(folder()).empty());
  // Trusted (CURL_CA_BUNDLE names it), but the name asked for is not the certificate's.
  ::setenv("CURL_CA_BUNDLE", cert.c_str(), 1);
  ModelLocation by_name = location(server);
  by_name.endpoint = "https://localhost:" + std::to_string(server.port());
  e = fetch_error(by_name);
  EXPECT_TRUE(contains(e.what(), "TLS failed")) << e.what();
  EXPECT_TRUE(server.requests().empty());
  // Trusted and the right name: fetched.
  hub::fetch_model(location(server), cache_.string(), kFp32);
  EXPECT_EQ(test::files_in(folder()), kFp32Files);
  EXPECT_TRUE(test::same_files(test::tiny_model(), folder(), kFp32Files));
}

TEST(HubProgress, LineShowsSizesBarAndPercent) {
  EXPECT_EQ(hub::progress_line("onnx/model.onnx", 45 << 20, 90 << 20, 10), "  onnx/model.onnx  45.0 / 90.0 MB [#####.....]  50%");
  EXPECT_EQ(hub::progress_line("a", 3 << 20, 3 << 20, 4), "  a  3.0 / 3.0 MB [####] 100%");
  EXPECT_EQ(hub::progress_line("a", 1 << 20, 0), "  a  1.0 MB");  // size unknown
}
