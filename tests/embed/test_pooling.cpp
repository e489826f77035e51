#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "embed/pooling.h"
#include "leanembed/error.h"

using namespace leanembed;

namespace {
// Two sequences of hidden size 3: rows 0-1 and rows 2-4.
const std::vector<float> kHidden = {1, 2, 3,   3, 4, 5,      // sequence 0
                                    0, 0, 9,   6, -6, 0,   3, 3, 3};  // sequence 1
const std::vector<int64_t> kOffsets = {0, 2, 5};

std::vector<float> pool(Pooling p, int64_t dims = 3) {
  std::vector<float> out(2 * dims);
  pool_sequences(p, kHidden, 3, kOffsets, dims, out);
  return out;
}
}  // namespace

TEST(Pooling, MeanClsMaxLastTokenByHand) {
  EXPECT_EQ(pool(Pooling::mean), (std::vector<float>{2, 3, 4, 3, -1, 4}));
  EXPECT_EQ(pool(Pooling::cls), (std::vector<float>{1, 2, 3, 0, 0, 9}));
  EXPECT_EQ(pool(Pooling::max), (std::vector<float>{3, 4, 5, 6, 3, 9}));
  EXPECT_EQ(pool(Pooling::last_token), (std::vector<float>{3, 4, 5, 3, 3, 3}));
  std::vector<float> s = pool(Pooling::mean_sqrt_len);
  EXPECT_FLOAT_EQ(s[0], 4 / std::sqrt(2.0f));
  EXPECT_FLOAT_EQ(s[5], 12 / std::sqrt(3.0f));
}

TEST(Pooling, DimsKeepsTheLeadingComponents) {
  EXPECT_EQ(pool(Pooling::mean, 2), (std::vector<float>{2, 3, 3, -1}));
}

TEST(Pooling, BadSizesAreRefused) {
  std::vector<float> out(6);
  EXPECT_THROW(pool_sequences(Pooling::mean, kHidden, 3, std::vector<int64_t>{0, 2, 6}, 3, out), Error);
  EXPECT_THROW(pool_sequences(Pooling::mean, kHidden, 3, std::vector<int64_t>{0, 2, 2, 5}, 3, out), Error);
  EXPECT_THROW(pool_sequences(Pooling::mean, kHidden, 3, kOffsets, 4, out), Error);
}

TEST(Pooling, L2NormalizeGivesUnitLengthAndLeavesZeroAlone) {
  std::vector<float> v = {3, 4};
  l2_normalize(v);
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], 0.8f);
  std::vector<float> z = {0, 0};
  l2_normalize(z);
  EXPECT_EQ(z[0], 0.0f);
}
