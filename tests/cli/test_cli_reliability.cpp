// The leanembed command under careless or hostile use (issue 16): output files never destroyed by a
// failing run, streamed stdin answered line by line, long lines kept bounded without changing
// vectors, unreadable input and bad model-folder values reported with exit 1, --threads bounded.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli_test_support.h"
#include "test_support.h"

namespace fs = std::filesystem;
using nlohmann::json;
using leanembed::test::CliResult;

namespace {

fs::path work_dir() {
  fs::path p = fs::path(leanembed::test::binary_dir()) / "test_cli_reliability";
  fs::create_directories(p);
  return p;
}

CliResult run(const std::string& args, const std::string& stdin_text = "") {
  return leanembed::test::run_cli(work_dir() / "io", args, stdin_text);
}

std::string tiny() { return leanembed::test::shared_dir() + "/models/tiny-bert-synthetic"; }

std::vector<std::vector<float>> jsonl_vectors(const std::string& out) {
  std::vector<std::vector<float>> rows;
  std::istringstream s(out);
  std::string line;
  while (std::getline(s, line)) rows.push_back(json::parse(line).get<std::vector<float>>());
  return rows;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A copy of the tiny model's folder whose files are symlinks, for tests that change metadata.
fs::path tiny_copy(const std::string& name) {
  fs::path f = work_dir() / name;
  fs::remove_all(f);
  fs::create_directories(f / "onnx");
  for (const char* file : {"config.json", "tokenizer.json", "tokenizer_config.json"})
    fs::create_symlink(fs::path(tiny()) / file, f / file);
  fs::create_symlink(fs::path(tiny()) / "onnx" / "model.onnx", f / "onnx" / "model.onnx");
  return f;
}

}  // namespace

// ---- 16: model-folder values ---------------------------------------------------------------------

TEST(CliReliability, ModelFolderValueErrorsExitOneNamingFileAndField) {
  fs::path f = tiny_copy("bad-values");
  std::ofstream(f / "sentence_bert_config.json") << R"({"max_seq_length": 2})";
  CliResult r = run("embed --model " + f.string() + " hello");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("sentence_bert_config.json"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("max_seq_length"), std::string::npos) << r.err;

  std::ofstream(f / "sentence_bert_config.json", std::ios::trunc) << R"({"max_seq_length": 1e30})";
  r = run("embed --model " + f.string() + " hello");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("max_seq_length"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("-9223372036854775808"), std::string::npos) << r.err;
}

// ---- 10: unreadable --input ----------------------------------------------------------------------

TEST(CliReliability, InputThatIsADirectoryOrUnreadableExitsOneNamingIt) {
  fs::path dir = work_dir() / "a-directory";
  fs::create_directories(dir);
  CliResult r = run("embed --model " + tiny() + " --input " + dir.string());
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find(dir.string()), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  // A read error in the middle of the file (reading /proc/self/mem at offset 0 fails with EIO).
  r = run("embed --model " + tiny() + " --input /proc/self/mem");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("/proc/self/mem"), std::string::npos) << r.err;
  r = run("precompute --model " + tiny() + " --embedding-cache " + (work_dir() / "cache").string() + " --input " + dir.string());
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find(dir.string()), std::string::npos) << r.err;
  r = run("bench --model " + tiny() + " --input " + dir.string());
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find(dir.string()), std::string::npos) << r.err;
}
