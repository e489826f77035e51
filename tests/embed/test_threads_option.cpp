// EmbedderOptions::threads is bounded (issue 16): above the cores the process may run on it is
// capped with a warning unless forced; forced, it stays below a hard limit; 1000 never crashes.
#include <gtest/gtest.h>
#include <sched.h>

#include "embed_test_support.h"
#include "leanembed/error.h"

using namespace leanembed;

namespace {
int cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}
}  // namespace

TEST(ThreadsOption, MoreThreadsThanCoresAreCappedWithAWarning) {
  EmbedderOptions o = test::options_for("tiny-bert-synthetic");
  o.threads = 1000;
  std::vector<std::string> warnings;
  o.on_warning = [&](const std::string& w) { warnings.push_back(w); };
  Embedder e(o);
  EXPECT_EQ(e.info().threads, cores());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("1000"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("force_threads"), std::string::npos) << warnings[0];
  EXPECT_EQ(e.embed_one("hello").size(), static_cast<size_t>(e.dims()));
}

TEST(ThreadsOption, ForcedThreadsAreKeptUpToTheHardLimit) {
  EmbedderOptions o = test::options_for("tiny-bert-synthetic");
  o.force_threads = true;
  o.threads = cores() + 1;
  std::vector<std::string> warnings;
  o.on_warning = [&](const std::string& w) { warnings.push_back(w); };
  {
    Embedder e(o);
    EXPECT_EQ(e.info().threads, cores() + 1);
    EXPECT_TRUE(warnings.empty());
    EXPECT_EQ(e.embed_one("hello").size(), static_cast<size_t>(e.dims()));
  }
  o.threads = 1000;
  try {
    Embedder e(o);
    ADD_FAILURE() << "1000 forced threads accepted";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(err.what()).find("1000"), std::string::npos) << err.what();
  }
}
