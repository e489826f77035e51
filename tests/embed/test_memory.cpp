// Memory measured as the system sees it (RSS). Labelled "memory": meaningless under the sanitizers,
// whose allocators keep freed memory on purpose, so the sanitizer stage leaves these out.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>

#include "leanembed/embedder.h"
#include "embed_test_support.h"

using namespace leanembed;
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

