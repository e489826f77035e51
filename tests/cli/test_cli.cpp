// The leanembed command: outputs, formats and exit codes, run as a user runs it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_test_support.h"
#include "test_support.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Result = leanembed::test::CliResult;

fs::path work_dir() { return leanembed::test::per_test_dir("test_cli"); }

// Runs the CLI with `args` (shell words), optional stdin text; captures stdout, stderr, exit code.
Result run(const std::string& args, const std::string& stdin_text = "") {
  return leanembed::test::run_cli(work_dir(), args, stdin_text);
}

std::string tiny() { return leanembed::test::shared_dir() + "/models/tiny-bert-synthetic"; }

std::vector<std::vector<float>> jsonl_vectors(const std::string& out) {
  std::vector<std::vector<float>> rows;
  std::istringstream s(out);
  std::string line;
  while (std::getline(s, line)) rows.push_back(json::parse(line).get<std::vector<float>>());
  return rows;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) d += double(a[i]) * b[i], na += double(a[i]) * a[i], nb += double(b[i]) * b[i];
  return d / std::sqrt(na * nb);
}

}  // namespace

TEST(Cli, EmbedsTheReferenceSentencesFromStdinInOrder) {
  auto ref = json::parse(leanembed::test::read_file(leanembed::test::shared_dir() +
                                                    "/models/expected/tiny-bert-synthetic/torch_fp32.json"));
  std::string input;
  for (const auto& s : ref["sentences"]) input += s.get<std::string>() + "\n";
  Result r = run("embed --model " + tiny(), input);
  ASSERT_EQ(r.code, 0) << r.err;
  auto rows = jsonl_vectors(r.out);
  ASSERT_EQ(rows.size(), ref["embeddings"].size());
  for (size_t i = 0; i < rows.size(); ++i)
    EXPECT_GE(cosine(rows[i], ref["embeddings"][i].get<std::vector<float>>()), 0.99999) << "line " << i;
}

TEST(Cli, LinesSplitOnNewlineOnlyAndEdgeLinesEmbed) {
  // An empty line, a line with CRLF, a line holding U+2028 and a NUL, an invalid UTF-8 line, a long line.
  std::string input = std::string("\n") + "crlf line\r\n" + "a\xE2\x80\xA8" + "b" + std::string(1, '\0') + "c\n" +
                      "bad \xC3\x28 utf8\n" + std::string(20000, 'x') + " " + std::string(5000, 'y') + "\n";
  Result r = run("embed --model " + tiny(), input);
  ASSERT_EQ(r.code, 0) << r.err;
  auto rows = jsonl_vectors(r.out);
  ASSERT_EQ(rows.size(), 5u);
  Result crlf = run("embed --model " + tiny() + " 'crlf line'");
  EXPECT_GE(cosine(rows[1], jsonl_vectors(crlf.out).at(0)), 0.999999);
  for (const auto& v : rows) {
    double n = 0;
    for (float x : v) n += double(x) * x;
    EXPECT_NEAR(n, 1.0, 1e-5);
  }
}

TEST(Cli, FormatsJsonNpyF32AgreeWithJsonl) {
  Result jl = run("embed --model " + tiny() + " one two");
  ASSERT_EQ(jl.code, 0) << jl.err;
  auto rows = jsonl_vectors(jl.out);
  ASSERT_EQ(rows.size(), 2u);
  Result js = run("embed --format json --model " + tiny() + " one two");
  ASSERT_EQ(js.code, 0);
  EXPECT_EQ(json::parse(js.out).get<std::vector<std::vector<float>>>(), rows);

  fs::path f32 = work_dir() / "v.f32", npy = work_dir() / "v.npy";
  ASSERT_EQ(run("embed --format f32 -o " + f32.string() + " --model " + tiny(), "one\ntwo\n").code, 0);
  std::string raw = leanembed::test::read_file(f32.string());
  ASSERT_EQ(raw.size(), 2 * rows[0].size() * 4);
  EXPECT_EQ(0, std::memcmp(raw.data() + rows[0].size() * 4, rows[1].data(), rows[1].size() * 4));

  ASSERT_EQ(run("embed --format npy -o " + npy.string() + " --model " + tiny(), "one\ntwo\n").code, 0);
  std::string n = leanembed::test::read_file(npy.string());
  ASSERT_GT(n.size(), 10u);
  EXPECT_EQ(n.substr(0, 6), "\x93NUMPY");
  uint16_t hlen = static_cast<uint8_t>(n[8]) | (static_cast<uint8_t>(n[9]) << 8);
  std::string header = n.substr(10, hlen);
  EXPECT_NE(header.find("'shape': (2, " + std::to_string(rows[0].size()) + ")"), std::string::npos) << header;
  EXPECT_EQ((10 + hlen) % 64, 0);
  EXPECT_EQ(n.size(), 10 + hlen + raw.size());
  EXPECT_EQ(0, std::memcmp(n.data() + 10 + hlen, raw.data(), raw.size()));
}

TEST(Cli, TokenizeAndInfo) {
  Result t = run("tokenize --model " + tiny() + " 'Hello, world!'");
  ASSERT_EQ(t.code, 0) << t.err;
  json j = json::parse(t.out);
  EXPECT_EQ(j["tokens"], json({"[CLS]", "hello", ",", "world", "!", "[SEP]"}));
  EXPECT_EQ(j["ids"].size(), 6u);
  Result i = run("info --model " + tiny());
  ASSERT_EQ(i.code, 0) << i.err;
  EXPECT_NE(i.out.find("fast path"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("planned arena"), std::string::npos);
}

// Small runs on one thread (--parallel-min-tokens): the automatic threshold applies when OpenMP's
// threads sleep between regions, decided from the environment as libgomp decides (GOMP_SPINCOUNT,
// when set, overrides OMP_WAIT_POLICY); `info` says which; vectors do not depend on it.
TEST(Cli, SmallRunsOnOneThreadFollowTheWaitPolicy) {
  const std::string minilm = leanembed::test::shared_dir() + "/models/minilm-l6-synthetic";
  auto info = [&](const std::string& env, const std::string& args) {
    const fs::path out = work_dir() / "info.txt";
    const std::string cmd = "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT " + env + " " + std::string(LEANEMBED_CLI) +
                            " info --model " + minilm + " --threads 2 --force-threads " + args + " > " + out.string() +
                            " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return leanembed::test::read_file(out.string());
  };
  EXPECT_NE(info("OMP_WAIT_POLICY=passive", "--dtype q8").find("2 threads (runs under 129 tokens: 1)"), std::string::npos)
      << info("OMP_WAIT_POLICY=passive", "--dtype q8");
  EXPECT_NE(info("OMP_WAIT_POLICY=PASSIVE", "").find("2 threads (runs under 32 tokens: 1)"), std::string::npos);
  EXPECT_NE(info("GOMP_SPINCOUNT=0", "").find("(runs under 32 tokens: 1)"), std::string::npos);
  for (const char* spinning : {"", "GOMP_SPINCOUNT=10000", "OMP_WAIT_POLICY=passive GOMP_SPINCOUNT=1000"})
    EXPECT_EQ(info(spinning, "--dtype q8").find("runs under"), std::string::npos) << spinning;
  EXPECT_EQ(info("OMP_WAIT_POLICY=passive", "--dtype q8 --parallel-min-tokens 0").find("runs under"), std::string::npos);
  EXPECT_NE(info("", "--parallel-min-tokens 100").find("2 threads (runs under 100 tokens: 1)"), std::string::npos);

  Result bad = run("info --model " + minilm + " --parallel-min-tokens -2");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--parallel-min-tokens"), std::string::npos) << bad.err;

  // 40 sentences in batches of 1, 4 and 32 texts: the same bytes whether runs stay on one thread or not.
  const fs::path input = work_dir() / "sentences40.txt";
  {
    std::ifstream corpus(leanembed::test::shared_dir() + "/corpus/sentences.txt");
    std::ofstream first40(input);
    std::string line;
    for (int i = 0; i < 40 && std::getline(corpus, line); ++i) first40 << line << "\n";
  }
  for (const char* dtype : {"q8", "fp32"}) {
    std::string first;
    for (const char* setting : {"0", "1000000"})
      for (const char* batch : {"1", "4", "32"}) {
        const fs::path out = work_dir() / (std::string(dtype) + "_" + setting + "_" + batch + ".f32");
        Result r = run("embed --model " + minilm + " --dtype " + dtype + " --input " + input.string() +
                       " --threads 2 --force-threads --format f32 --batch-size " + batch +
                       " --parallel-min-tokens " + setting + " -o " + out.string());
        ASSERT_EQ(r.code, 0) << r.err;
        const std::string bytes = leanembed::test::read_file(out.string());
        EXPECT_EQ(bytes.size(), 40u * 384 * 4);
        if (first.empty()) first = bytes;
        EXPECT_TRUE(bytes == first) << dtype << ", --parallel-min-tokens " << setting << ", batch " << batch;
      }
  }
}

TEST(Cli, OptionsComeFromEnvironmentVariables) {
  Result r = run("tokenize --offline 'Hello'", "");
  EXPECT_NE(r.code, 0);  // the default model id is not in ./models here (and is not fetched offline)
  std::string cmd = "env LEANEMBED_MODEL=" + tiny() + " LEANEMBED_MAX_LENGTH=3 " + std::string(LEANEMBED_CLI) +
                    " tokenize 'Hello world again' > " + (work_dir() / "env.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(json::parse(leanembed::test::read_file((work_dir() / "env.txt").string()))["ids"].size(), 3u);
}

TEST(Cli, ExitCodesForUsageAndRuntimeErrors) {
  EXPECT_EQ(run("").code, 2);
  EXPECT_EQ(run("embed --no-such-flag").code, 2);
  EXPECT_EQ(run("embed --format xml --model " + tiny() + " x").code, 2);
  EXPECT_EQ(run("embed --dtype fp8 --model " + tiny() + " x").code, 2);
  EXPECT_EQ(run("embed --help").code, 0);

  Result missing = run("embed --model /nonexistent/folder x");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("/nonexistent/folder"), std::string::npos) << missing.err;

  Result no_dtype = run("embed --dtype q4f16 --model " + leanembed::test::shared_dir() + "/models/minilm-l6-synthetic x");
  EXPECT_EQ(no_dtype.code, 1);
  EXPECT_NE(no_dtype.err.find("model_q4f16.onnx"), std::string::npos) << no_dtype.err;

  // A corrupt model file: the shared folder's metadata with a truncated ONNX file.
  fs::path bad = work_dir() / "corrupt-model";
  fs::remove_all(bad);
  fs::create_directories(bad / "onnx");
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(fs::path(tiny()) / f, bad / f);
  std::string onnx = leanembed::test::read_file(tiny() + "/onnx/model.onnx");
  std::ofstream(bad / "onnx" / "model.onnx", std::ios::binary) << onnx.substr(0, onnx.size() / 2);
  Result corrupt = run("embed --model " + bad.string() + " x");
  EXPECT_EQ(corrupt.code, 1);
  EXPECT_NE(corrupt.err.find("model.onnx"), std::string::npos) << corrupt.err;
}

// Peak RSS (KB) of `leanembed embed` over `lines` copies of a line, measured by /usr/bin/time.
static long embed_peak_rss_kb(int lines) {
  fs::path in = work_dir() / "many.txt", rss = work_dir() / "rss.txt";
  {
    std::ofstream f(in);
    for (int i = 0; i < lines; ++i) f << "line number " << i << " of a long input stream\n";
  }
  // Under ASan the allocator's quarantine would grow RSS with the number of frees: keep it tiny.
  std::string cmd = "ASAN_OPTIONS=quarantine_size_mb=1:detect_leaks=0 /usr/bin/time -f %M -o " + rss.string() + " " + LEANEMBED_CLI + " embed --threads 1 --model " + tiny() +
                    " --format f32 -o /dev/null --input " + in.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return std::stol(leanembed::test::read_file(rss.string()));
}

TEST(Cli, MemoryDoesNotGrowWithTheNumberOfInputs) {
  const long small = embed_peak_rss_kb(5000);
  const long large = embed_peak_rss_kb(50000);
  RecordProperty("peak_rss_kb_5000", std::to_string(small));
  RecordProperty("peak_rss_kb_50000", std::to_string(large));
  EXPECT_LT(large, small + 2048) << "5k lines: " << small << " KB, 50k lines: " << large << " KB";
}

TEST(Cli, NpyToAPipeAndWriteFailures) {
  // Texts as arguments: the count is known, so npy streams to a pipe with the right header.
  fs::path piped = work_dir() / "piped.npy";
  std::string cmd = std::string(LEANEMBED_CLI) + " embed --format npy --model " + tiny() + " one two | cat > " + piped.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::string n = leanembed::test::read_file(piped.string());
  ASSERT_GT(n.size(), 128u);
  EXPECT_NE(n.substr(10, 118).find("'shape': (2, 64)"), std::string::npos) << n.substr(10, 118);
  EXPECT_EQ(n.size(), 128u + 2 * 64 * 4);
  // Texts from stdin to a pipe: refused up front (usage), nothing half-written.
  fs::path code = work_dir() / "npy_pipe_code.txt";
  cmd = "echo hello | (" + std::string(LEANEMBED_CLI) + " embed --format npy --model " + tiny() + " 2>/dev/null; echo $? > " +
        code.string() + ") | cat > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(std::stoi(leanembed::test::read_file(code.string())), 2);
  // A full disk is an error, not a silent truncation.
  Result full = run("embed --model " + tiny() + " -o /dev/full hello");
  EXPECT_EQ(full.code, 1);
  EXPECT_NE(full.err.find("/dev/full"), std::string::npos) << full.err;
}
