// The intra-op thread setting.
#include <gtest/gtest.h>
#include <omp.h>

#include <thread>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/threads.h"

namespace leanembed::kernels {
namespace {

TEST(Threads, SetAndGet) {
  const int saved = threads_get();
  EXPECT_GE(saved, 1);
  threads_set(3);
  EXPECT_EQ(threads_get(), 3);
  threads_set(0);
  EXPECT_EQ(threads_get(), omp_get_num_procs());
  threads_set(-5);
  EXPECT_EQ(threads_get(), omp_get_num_procs());
  threads_set(saved);
}

TEST(Threads, ApplyToCallerSetsTheOpenMpDefault) {
  const int saved = threads_get();
  threads_set(3);
  threads_apply_to_caller();
  EXPECT_EQ(omp_get_max_threads(), 3);  // what oneDNN reads to size its parallel regions
  threads_set(1);
  threads_apply_to_caller();
  EXPECT_EQ(omp_get_max_threads(), 1);
  threads_set(saved);
  threads_apply_to_caller();
}

TEST(Threads, RowKernelsUseAtMostTheSetting) {
  // A large softmax through the reference table with the setting at 1 and at 2: the results are
  // the same (rows are independent) whatever the split.
  const int saved = threads_get();
  const int64_t rows = 200, cols = 384;
  std::vector<float> one(rows * cols), two;
  for (std::size_t i = 0; i < one.size(); ++i) one[i] = static_cast<float>(i % 97) * 0.01f;
  two = one;
  threads_set(1);
  row_kernels().softmax(rows, cols, one.data(), cols, 1.0f, nullptr);
  threads_set(2);
  row_kernels().softmax(rows, cols, two.data(), cols, 1.0f, nullptr);
  EXPECT_EQ(one, two);
  threads_set(saved);
}

TEST(Threads, ThreadLimitCapsTheCallingThreadOnly) {
  const int saved = threads_get();
  threads_set(4);
  {
    const ThreadLimit one(1);
    EXPECT_EQ(threads_get(), 1);
    EXPECT_EQ(gemm_threads(512, 512, 512), 1);  // what the kernels ask
    int other = 0;
    std::thread([&] { other = threads_get(); }).join();
    EXPECT_EQ(other, 4);  // another thread keeps the setting
    {
      const ThreadLimit three(3);  // the innermost limit applies
      EXPECT_EQ(threads_get(), 3);
      const ThreadLimit none(0);  // no cap
      EXPECT_EQ(threads_get(), 4);
    }
    EXPECT_EQ(threads_get(), 1);  // restored on leaving
    threads_set(2);
    EXPECT_EQ(threads_get(), 1);
  }
  EXPECT_EQ(threads_get(), 2);
  {
    const ThreadLimit above(8);  // a cap, never a raise
    EXPECT_EQ(threads_get(), 2);
  }
  threads_set(saved);
}

}  // namespace
}  // namespace leanembed::kernels
