// Running the leanembed program (LEANEMBED_CLI, set by tests/cli/CMakeLists.txt) from tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace leanembed::test {

struct CliResult {
  int code = -1;  // exit code; -1 if killed by a signal
  std::string out, err;
};

// Runs the CLI with `args` (shell words) and `stdin_text` on its stdin; stdin, stdout and stderr go
// through files in `dir` (created if needed).
inline CliResult run_cli(const std::filesystem::path& dir, const std::string& args, const std::string& stdin_text = "") {
  std::filesystem::create_directories(dir);
  const std::filesystem::path in = dir / "stdin.txt", out = dir / "stdout.txt", err = dir / "stderr.txt";
  std::ofstream(in, std::ios::binary) << stdin_text;
  const std::string cmd = std::string(LEANEMBED_CLI) + " " + args + " < " + in.string() + " > " + out.string() + " 2> " + err.string();
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out.string());
  r.err = read_file(err.string());
  return r;
}

// <build>/<suite>/<the running test's name>, created: one folder per test, since ctest runs the
// tests of one file in parallel processes.
inline std::filesystem::path per_test_dir(const std::string& suite) {
  const std::filesystem::path p = std::filesystem::path(binary_dir()) / suite /
                                  ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::filesystem::create_directories(p);
  return p;
}

// The float32 values of a file the CLI wrote with --format f32 (row after row).
inline std::vector<float> read_f32(const std::filesystem::path& p) {
  const std::string bytes = read_file(p.string());
  std::vector<float> v(bytes.size() / sizeof(float));
  if (!v.empty()) std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

}  // namespace leanembed::test
