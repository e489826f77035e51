// The memory budget as the system sees it: `leanembed embed --max-memory B` on the corpus, with the
// CLI's peak RSS (ru_maxrss, through tests/cli/peak_rss) against B + the bare process' peak RSS
// (`leanembed --version`, measured here the same way), and the vectors against an unbudgeted run.
// Labelled "memory": the sanitizers' allocators keep freed memory on purpose, so the sanitizer stage
// leaves it out.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_test_support.h"
#include "onnx/reader.h"

extern char** environ;

namespace fs = std::filesystem;
using leanembed::test::read_f32;

namespace {

struct Child {
  int code = -1;
  std::size_t peak_rss = 0;  // bytes
  std::string err;
};

fs::path work_dir() {
  fs::path p = fs::path(leanembed::test::binary_dir()) / "test_cli_memory";
  fs::create_directories(p);
  return p;
}

// Runs the CLI with `args` through tests/cli/peak_rss (see there why not directly), stdout to
// /dev/null, stderr captured; returns its exit code and peak RSS.
Child run(const std::vector<std::string>& args) {
  // Per test: ctest runs these tests in parallel (-j), and they share work_dir().
  const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  const fs::path err_path = work_dir() / (test + "-stderr.txt"), result_path = work_dir() / (test + "-peak.txt");
  std::vector<std::string> words{LEANEMBED_PEAK_RSS, result_path.string(), LEANEMBED_CLI};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  Child c;
  const int spawned = posix_spawn(&pid, LEANEMBED_PEAK_RSS, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    ADD_FAILURE() << "cannot start " << LEANEMBED_PEAK_RSS;
    return c;
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ADD_FAILURE() << "peak_rss failed for " << LEANEMBED_CLI;
    return c;
  }
  std::ifstream result(result_path);
  long kib = 0;
  result >> c.code >> kib;
  c.peak_rss = static_cast<std::size_t>(kib) * 1024;
  c.err = leanembed::test::read_file(err_path.string());
  return c;
}

std::string minilm() { return leanembed::test::shared_dir() + "/models/minilm-l6-synthetic"; }
std::size_t minilm_file_bytes() { return fs::file_size(minilm() + "/onnx/model.onnx"); }
// The word table's bytes: the fast path reads its rows with pread, so the budget does not charge them.
std::size_t minilm_word_table_bytes() {
  const leanembed::onnx::Model m = leanembed::onnx::read_model(minilm() + "/onnx/model.onnx");
  const leanembed::onnx::TensorData* t = m.graph.initializer("embeddings.word_embeddings.weight");
  if (!t) throw std::runtime_error("test: no word table in the MiniLM fixture");
  return t->bytes.size();
}
// What the budget charges for the file: all of it but the word table.
std::size_t minilm_charged_bytes() { return minilm_file_bytes() - minilm_word_table_bytes(); }

// The first `lines` lines of `from` (all when 0), written to `to`.
fs::path corpus_slice(const std::string& from, const std::string& to, std::size_t lines) {
  std::ifstream in(from, std::ios::binary);
  if (!in) throw std::runtime_error("test: cannot read " + from + " (../shared/corpus is missing)");
  const fs::path out_path = work_dir() / to;
  std::ofstream out(out_path, std::ios::binary);
  std::string line;
  for (std::size_t n = 0; (lines == 0 || n < lines) && std::getline(in, line); ++n) out << line << '\n';
  return out_path;
}

std::vector<std::string> embed_args(const fs::path& input, const fs::path& output) {
  return {"embed", "-m", minilm(), "-t", "2", "--idle-unload", "0", "--format", "f32", "-i", input.string(), "-o", output.string()};
}

std::string mb_text(std::size_t bytes) {
  char s[32];
  std::snprintf(s, sizeof s, "%.1f MB", static_cast<double>(bytes) / 1048576.0);
  return s;
}

// Embeds `input` without a budget and under each budget (the file's charged part + extra MiB); each budgeted run
// must peak at most budget + bare RSS and give the unbudgeted vectors.
void check_budgets(const fs::path& input, const std::string& name, std::initializer_list<std::size_t> extra_mib) {
  const Child bare = run({"--version"});
  ASSERT_EQ(bare.code, 0) << bare.err;
  const fs::path reference_out = work_dir() / (name + "-unbudgeted.f32");
  const Child free_run = run(embed_args(input, reference_out));
  ASSERT_EQ(free_run.code, 0) << free_run.err;
  const std::vector<float> want = read_f32(reference_out);
  ASSERT_FALSE(want.empty());
  for (std::size_t extra : extra_mib) {
    const std::size_t budget = minilm_charged_bytes() + (extra << 20);
    const fs::path out = work_dir() / (name + "-budget.f32");
    std::vector<std::string> args = embed_args(input, out);
    args.insert(args.end(), {"--max-memory", std::to_string(budget)});
    const Child c = run(args);
    ASSERT_EQ(c.code, 0) << "budget charged file + " << extra << " MiB: " << c.err;
    const std::size_t limit = budget + bare.peak_rss;
    std::printf("%s, budget = file + %zu MiB: peak RSS %.1f MB, budget + bare (%.1f MB) = %.1f MB, margin %.1f MB; "
                "unbudgeted peak %.1f MB\n",
                name.c_str(), extra, c.peak_rss / 1048576.0, bare.peak_rss / 1048576.0, limit / 1048576.0,
                (static_cast<double>(limit) - static_cast<double>(c.peak_rss)) / 1048576.0, free_run.peak_rss / 1048576.0);
    ::testing::Test::RecordProperty(name + "_file_plus_" + std::to_string(extra) + "MiB_peak_rss", std::to_string(c.peak_rss));
    ::testing::Test::RecordProperty(name + "_file_plus_" + std::to_string(extra) + "MiB_limit", std::to_string(limit));
    EXPECT_LE(c.peak_rss, limit) << name << ", budget file + " << extra << " MiB: peak RSS " << c.peak_rss
                                 << " B > budget " << budget << " B + bare " << bare.peak_rss << " B";
    const std::vector<float> got = read_f32(out);
    ASSERT_EQ(got.size(), want.size());
    std::size_t differing = 0;
    for (std::size_t i = 0; i < got.size(); ++i) differing += std::fabs(got[i] - want[i]) > 1e-6f;
    EXPECT_EQ(differing, 0u) << name << ", budget file + " << extra << " MiB: components differing from the unbudgeted run";
  }
}

}  // namespace

TEST(CliMemory, CorpusSentencesStayWithinTheBudget) {
  const fs::path input = corpus_slice(leanembed::test::shared_dir() + "/corpus/sentences.txt", "sentences-2000.txt", 2000);
  // charged file + 18 MiB (~61 MB, below the 90 MB file: the word table is read with pread) is
  // about the least MiniLM loads with (file, tokenizer, runtime allowance, one 256-token text);
  // + 32 MiB lets batches grow past oneDNN's copy threshold.
  check_budgets(input, "sentences", {18, 32});
}

TEST(CliMemory, CorpusPassagesStayWithinTheBudget) {
  const fs::path input = corpus_slice(leanembed::test::shared_dir() + "/corpus/docs.txt", "docs.txt", 0);
  check_budgets(input, "docs", {18, 32});
}

TEST(CliMemory, LoadRefusesABudgetTheModelCannotFitNamingTheFigures) {
  const fs::path input = corpus_slice(leanembed::test::shared_dir() + "/corpus/sentences.txt", "sentences-4.txt", 4);
  const fs::path out = work_dir() / "refused.f32";
  // Below the file's charged part: the file's size, the word table's, the charge and the budget.
  std::vector<std::string> args = embed_args(input, out);
  args.insert(args.end(), {"--max-memory", std::to_string(30u << 20)});
  Child c = run(args);
  EXPECT_EQ(c.code, 1);
  EXPECT_NE(c.err.find("out_of_memory"), std::string::npos) << c.err;
  for (const std::string& part : {mb_text(minilm_file_bytes()), mb_text(minilm_word_table_bytes()),
                                  mb_text(minilm_charged_bytes()), std::string("30.0 MB"), std::string("alone")})
    EXPECT_NE(c.err.find(part), std::string::npos) << part << " in: " << c.err;
  // Above the charged part but below it + tokenizer + runtime + one text: every figure and the total.
  const std::size_t budget = minilm_charged_bytes() + (8u << 20);
  args = embed_args(input, out);
  args.insert(args.end(), {"--max-memory", std::to_string(budget)});
  c = run(args);
  EXPECT_EQ(c.code, 1);
  EXPECT_NE(c.err.find(mb_text(budget)), std::string::npos) << c.err;
  EXPECT_NE(c.err.find(mb_text(minilm_charged_bytes())), std::string::npos) << c.err;
  for (const char* part : {"the tokenizer", "the runtime", "one text of 256 tokens", "in all"})
    EXPECT_NE(c.err.find(part), std::string::npos) << part << " in: " << c.err;
}
