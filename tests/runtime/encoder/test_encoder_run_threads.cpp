// Small runs on one thread (FastEncoderOptions::parallel_min_tokens): a run of fewer real tokens
// than the threshold plans and runs on the calling thread alone, whatever the thread setting, and
// gives the same hidden states, bit for bit, as the same batch on every thread — so a text's vector
// does not depend on whether its batch was small enough to stay on one thread. The automatic value
// follows the wait policy (kernels::pool_threads_sleep()) and the feed-forward layers' kernel.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "encoder_test_data.h"
#include "kernels/threads.h"
#include "leanembed/error.h"

namespace leanembed::runtime::encoder {
namespace {

using namespace test_data;

struct File {
  const char* name;
  int64_t automatic;  // parallel_min_tokens under the passive wait policy
};

// The MiniLM files of each weight form and the measured thresholds they get (fast_encoder.h,
// the kernels' EncodedLinear::parallel_min_rows()).
const File kFiles[] = {{"model.onnx", kFloatParallelMinTokens},
                       {"model_quantized.onnx", 129},
                       {"model_q4.onnx", 64},
                       {"model_fp16.onnx", 0}};

// Sets the thread count for one test and restores it.
struct ThreadSetting {
  int saved = kernels::threads_get();
  explicit ThreadSetting(int n) { kernels::threads_set(n); }
  ~ThreadSetting() { kernels::threads_set(saved); }
};

TEST(EncoderRunThreads, SmallRunsPlanOneThreadAndGiveTheSameStatesBitForBit) {
  const ThreadSetting two(2);
  Reference ref = load_reference("minilm-l6-synthetic", "torch_fp32");
  for (const File& f : kFiles) {
    SCOPED_TRACE(f.name);
    FastEncoderOptions always_parallel, always_one;
    always_parallel.parallel_min_tokens = 0;
    always_one.parallel_min_tokens = int64_t{1} << 40;
    FastEncoder parallel(recognized_file(model_file("minilm-l6-synthetic", f.name)), always_parallel);
    FastEncoder one(recognized_file(model_file("minilm-l6-synthetic", f.name)), always_one);
    for (std::size_t count : {std::size_t{1}, std::size_t{16}}) {
      Packed batch = pack(ref, 0, count);
      const int64_t T = static_cast<int64_t>(batch.ids.size()), S = static_cast<int64_t>(count);
      EXPECT_EQ(parallel.run_threads(T), 2);
      EXPECT_EQ(one.run_threads(T), 1);
      EXPECT_EQ(parallel.plan(S, T, batch.max_len).threads, 2);
      EXPECT_EQ(one.plan(S, T, batch.max_len).threads, 1);
      const std::vector<float> a = run(parallel, batch), b = run(one, batch);
      ASSERT_EQ(a.size(), b.size());
      EXPECT_TRUE(a == b) << count << " sentences: hidden states differ between 2 threads and 1";
    }
    EXPECT_EQ(kernels::threads_get(), 2);  // the run's limit did not leak to the caller
  }
}

TEST(EncoderRunThreads, TheThresholdIsExclusive) {
  const ThreadSetting two(2);
  FastEncoderOptions o;
  o.parallel_min_tokens = 40;
  FastEncoder e(recognized("tiny-bert-synthetic", "model.onnx"), o);
  EXPECT_EQ(e.parallel_min_tokens(), 40);
  EXPECT_EQ(e.run_threads(39), 1);
  EXPECT_EQ(e.run_threads(40), 2);
}

TEST(EncoderRunThreads, AutomaticValueFollowsTheWaitPolicyAndTheFeedForwardKernel) {
  for (const File& f : kFiles) {
    SCOPED_TRACE(f.name);
    FastEncoder e(recognized_file(model_file("minilm-l6-synthetic", f.name)));
    EXPECT_EQ(e.parallel_min_tokens(), kernels::pool_threads_sleep() ? f.automatic : 0)
        << "pool_threads_sleep() = " << kernels::pool_threads_sleep();
  }
  // The reference kernels (tests) keep every run on all threads.
  FastEncoderOptions reference;
  reference.implementation = kernels::Implementation::reference;
  FastEncoder r(recognized("tiny-bert-synthetic", "model.onnx"), reference);
  EXPECT_EQ(r.parallel_min_tokens(), 0);
}

TEST(EncoderRunThreads, BelowMinusOneIsRefused) {
  FastEncoderOptions o;
  o.parallel_min_tokens = -2;
  try {
    FastEncoder e(recognized("tiny-bert-synthetic", "model.onnx"), o);
    FAIL() << "accepted parallel_min_tokens -2";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("parallel_min_tokens"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace leanembed::runtime::encoder
