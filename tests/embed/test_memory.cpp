// Memory measured as the system sees it (RSS). Labelled "memory": meaningless under the sanitizers,
// whose allocators keep freed memory on purpose, so the sanitizer stage leaves these out.
#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>

#include "leanembed/embedder.h"
#include "leanembed/error.h"
#include "leanembed/tokenizer.h"
#include "embed_test_support.h"

using namespace leanembed;
using test::charged_model_bytes;
using test::cosine;
using test::model_dir;
using test::options_for;
using test::same;

namespace {

// Resident set size of this process now, bytes (/proc/self/statm).
std::size_t rss_now() {
  std::ifstream f("/proc/self/statm");
  std::size_t pages_total = 0, pages_resident = 0;
  f >> pages_total >> pages_resident;
  return pages_resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

TEST(Memory, UnloadGivesTheMemoryBack) {
  // The bare process: everything but a model (libraries loaded, kernels' threads started).
  {
    Embedder warm_up(options_for("tiny-bert-synthetic"));
    warm_up.embed_one("warm up the libraries");
  }
  const std::size_t bare = rss_now();
  Embedder e(options_for("minilm-l6-synthetic"));
  std::vector<float> v = e.embed_one("load every weight of the full-size model");
  const std::size_t loaded = rss_now();
  // Weights are mapped and paged in as read: every linear layer (42 MB) is, the embedding table only
  // for the rows used.
  EXPECT_GT(loaded, bare + (30u << 20)) << "the model should be resident while loaded";
  for (int cycle = 0; cycle < 3; ++cycle) {
    e.unload();
    const std::size_t after = rss_now();
    RecordProperty("rss_after_unload_" + std::to_string(cycle), std::to_string(after));
    EXPECT_LE(after, bare + bare / 20 + (1u << 20)) << "bare " << bare << " B, loaded " << loaded << " B, after unload " << after << " B";
    EXPECT_TRUE(same(e.embed_one("load every weight of the full-size model"), v));
  }
  RecordProperty("reload_seconds", std::to_string(e.info().last_load_seconds));
}


// The figure the budget charges for the tokenizer is what its loading leaves allocated.
TEST(Memory, TokenizerMemoryBytesIsWhatItHolds) {
  for (const char* model : {"minilm-l6-synthetic", "tiny-bert-synthetic"}) {
    malloc_trim(0);
    const struct mallinfo2 before = mallinfo2();
    std::optional<Tokenizer> t(Tokenizer::load(model_dir(model)));
    malloc_trim(0);
    const struct mallinfo2 after = mallinfo2();
    const double held = static_cast<double>((after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd));
    const double reported = static_cast<double>(t->memory_bytes());
    RecordProperty(std::string(model) + "_tokenizer_bytes", std::to_string(t->memory_bytes()));
    EXPECT_GT(held, 1 << 20) << model;  // a 30k-entry vocabulary
    // malloc's per-block headers and page rounding are on top of the reported bytes.
    EXPECT_NEAR(reported, held, 0.15 * held) << model << ": reported " << reported << " B, allocations held " << held << " B";
  }
}

// A budget that leaves little work memory: batches are cut (more encoder runs) and the vectors are
// the unbudgeted ones; one figure short of the least that loads is refused naming every charge.
TEST(Memory, TightBudgetCutsBatchesKeepsVectorsAndRefusesNamingTheFigures) {
  EmbedderOptions o = options_for("tiny-bert-synthetic");
  // One batch for all 200 texts (~3400 tokens, ~4.5 MB of arena + buffers) unless the budget cuts it:
  // charged file + 17 MiB leaves ~1.7 MB of work memory, so it must.
  o.batch_size = 256;
  o.batch_tokens = 1 << 20;
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back("sentence number " + std::to_string(i) + " with a few more words in it, and then some");
  const std::vector<std::vector<float>> want = Embedder(o).embed(texts);
  // What the budget charges for the file: all but the word table (read with pread).
  const std::size_t file = charged_model_bytes("tiny-bert-synthetic");
  // Fixed charges for tiny-bert: file 7.9 MB less its 7.8 MB word table + tokenizer 2.6 + runtime
  // 12.75 + one 256-token text ~1 MB.
  o.max_memory_bytes = file + (16u << 20);
  try {
    Embedder e(o);
    FAIL() << "charged file + 16 MiB should not fit the fixed charges and one text";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::out_of_memory);
    for (const char* part : {"the model file (", "read with pread", "the tokenizer", "the runtime", "one text of", "in all"})
      EXPECT_NE(std::string(err.what()).find(part), std::string::npos) << part << " in: " << err.what();
  }
  o.max_memory_bytes = file + (17u << 20);
  Embedder budgeted(o);
  const std::vector<std::vector<float>> got = budgeted.embed(texts);
  for (std::size_t i = 0; i < texts.size(); ++i) EXPECT_TRUE(same(got[i], want[i])) << i;
}
