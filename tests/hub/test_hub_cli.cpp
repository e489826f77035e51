// `leanembed embed --model <hub id>` fetching from HF_ENDPOINT (a server on 127.0.0.1 started by
// the test): the vectors are bitwise those of the local folder; --offline / LEANEMBED_OFFLINE name
// the files to fetch; --revision; two processes fetching the same model at once.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cli/cli_test_support.h"
#include "hub_test_support.h"
#include "test_hub_server.h"

namespace fs = std::filesystem;
using leanembed::test::TestHubServer;

namespace {

const std::string kId = "test-org/tiny-bert";

class HubCli : public ::testing::Test {
 protected:
  void SetUp() override {
    leanembed::test::clean_hub_environment();
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = leanembed::test::hub_scratch(std::string("cli-") + info->name());
    cache_ = dir_ / "models";
  }
  // The CLI with HF_ENDPOINT set to `server` (and the `env` assignments), the model cache in the scratch folder.
  leanembed::test::CliResult run(const TestHubServer& server, const std::string& args, const std::string& env = "") {
    const fs::path out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    const std::string cmd = "env HF_ENDPOINT=" + server.endpoint() + " " + env + " " + LEANEMBED_CLI + " " + args +
                            " --model-cache-dir " + cache_.string() + " < /dev/null > " + out.string() + " 2> " + err.string();
    const int status = std::system(cmd.c_str());
    leanembed::test::CliResult r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = leanembed::test::read_file(out.string());
    r.err = leanembed::test::read_file(err.string());
    return r;
  }
  fs::path dir_, cache_;
};

}  // namespace

TEST_F(HubCli, EmbedAHubIdFetchedFromHfEndpointGivesTheLocalFoldersVectorsBitwise) {
  TestHubServer server(leanembed::test::tiny_model(), kId);
  const fs::path fetched = dir_ / "fetched.f32", local = dir_ / "local.f32";
  auto r = run(server, "embed --model " + kId + " --format f32 -o " + fetched.string() + " 'A sentence.' 'Another one.'");
  ASSERT_EQ(r.code, 0) << r.err;
  r = leanembed::test::run_cli(dir_ / "run", "embed --model " + leanembed::test::tiny_model() + " --format f32 -o " +
                                                 local.string() + " 'A sentence.' 'Another one.'");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string want = leanembed::test::read_file(local.string());
  EXPECT_FALSE(want.empty());
  EXPECT_EQ(leanembed::test::read_file(fetched.string()), want);
  EXPECT_EQ(r.err, "");  // stderr is not a terminal: no progress bar, no notice
  // Offline now works from the cache, and asks the server nothing.
  const size_t asked = server.requests().size();
  r = run(server, "embed --offline --model " + kId + " --format f32 -o " + fetched.string() + " 'A sentence.' 'Another one.'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(leanembed::test::read_file(fetched.string()), want);
  EXPECT_EQ(server.requests().size(), asked);
}

TEST_F(HubCli, OfflineNamesTheFilesToFetchAndWhere) {
  TestHubServer server(leanembed::test::tiny_model(), kId);
  for (const std::string& how : {std::string("embed --offline"), std::string("embed")}) {
    const auto r = run(server, how + " --model " + kId + " x", how == "embed" ? "LEANEMBED_OFFLINE=1" : "");
    EXPECT_EQ(r.code, 1) << how;
    EXPECT_NE(r.err.find(server.endpoint() + "/" + kId + "/resolve/main/tokenizer.json"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(server.endpoint() + "/" + kId + "/resolve/main/onnx/model.onnx"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find((cache_ / kId).string()), std::string::npos) << r.err;
  }
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(HubCli, RevisionFlagFetchesThatRevisionIntoItsOwnFolder) {
  TestHubServer server(leanembed::test::tiny_model(), kId, "v2");
  const auto r = run(server, "tokenize --revision v2 --model " + kId + " hello");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"ids\""), std::string::npos) << r.out;
  EXPECT_TRUE(fs::is_regular_file(cache_ / kId / "v2" / "tokenizer.json"));
  EXPECT_FALSE(fs::exists(cache_ / kId / "tokenizer.json"));
}

TEST_F(HubCli, TwoProcessesFetchingTheSameModelAtOnceBothSucceed) {
  TestHubServer server(leanembed::test::tiny_model(), kId);
  // Both started together by one shell; each one's exit code recorded.
  std::string script;
  for (int i = 0; i < 2; ++i) {
    const std::string out = (dir_ / ("p" + std::to_string(i) + ".f32")).string();
    script += "(env HF_ENDPOINT=" + server.endpoint() + " " + LEANEMBED_CLI + " embed --model " + kId +
              " --model-cache-dir " + cache_.string() + " --format f32 -o " + out + " 'A sentence.' 2>" + out +
              ".err; echo $? > " + out + ".code) & ";
  }
  script += "wait";
  ASSERT_EQ(std::system(("sh -c '" + [&] {
                          std::string quoted;
                          for (char c : script) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
                          return quoted;
                        }() + "'").c_str()),
            0);
  for (int i = 0; i < 2; ++i) {
    const std::string out = (dir_ / ("p" + std::to_string(i) + ".f32")).string();
    EXPECT_EQ(leanembed::test::read_file(out + ".code"), "0\n") << leanembed::test::read_file(out + ".err");
  }
  EXPECT_EQ(leanembed::test::read_file((dir_ / "p0.f32").string()), leanembed::test::read_file((dir_ / "p1.f32").string()));
  EXPECT_EQ(server.count("onnx/model.onnx"), 1);
  const std::set<std::string> files = leanembed::test::files_in(cache_ / kId);
  EXPECT_TRUE(files.count("onnx/model.onnx"));
  EXPECT_TRUE(leanembed::test::same_files(leanembed::test::tiny_model(), cache_ / kId, files));
}
