// The quantizer's numbers: per-column 8-bit, per-block 4-bit (with MatMulNBits' packing) and fp16,
// checked by dequantizing with the formulas ONNX / ONNX Runtime use.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "leanembed/error.h"
#include "quantize/weight_quant.h"

namespace {

using namespace leanembed::quantize;

// A [K, N] weight with normal values, one outlier column (x50) and one outlier row (x20).
std::vector<float> weight(int64_t K, int64_t N, int64_t outlier_col, int64_t outlier_row, unsigned seed = 7) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> w(static_cast<std::size_t>(K * N));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) {
      float v = nd(rng);
      if (n == outlier_col) v *= 50;
      if (k == outlier_row) v *= 20;
      w[k * N + n] = v;
    }
  return w;
}

TEST(WeightQuant, Uint8ColumnsDequantizeWithinHalfAStep) {
  const int64_t K = 96, N = 40;
  const std::vector<float> w = weight(K, N, 3, 17);
  const Uint8Columns q = quantize_columns_uint8(w, K, N, {});
  ASSERT_EQ(q.q.size(), w.size());
  ASSERT_EQ(q.scale.size(), static_cast<std::size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    float lo = 0, hi = 0;
    for (int64_t k = 0; k < K; ++k) lo = std::min(lo, w[k * N + n]), hi = std::max(hi, w[k * N + n]);
    // No clipping without importance: the step is the column's own range / 255.
    EXPECT_NEAR(q.scale[n], (hi - lo) / 255.0f, 1e-6f * (hi - lo)) << n;
    for (int64_t k = 0; k < K; ++k) {
      const float d = (static_cast<float>(q.q[k * N + n]) - q.zero_point[n]) * q.scale[n];
      EXPECT_LE(std::fabs(d - w[k * N + n]), q.scale[n] * 0.5001f) << k << "," << n;
    }
  }
  // Per column: the outlier column's scale does not leak into the others.
  EXPECT_GT(q.scale[3], 10 * q.scale[4]);
}

TEST(WeightQuant, Int8ColumnsAreSymmetric) {
  const int64_t K = 64, N = 24;
  const std::vector<float> w = weight(K, N, 5, 9);
  const Int8Columns q = quantize_columns_int8(w, K, N, {});
  for (int64_t n = 0; n < N; ++n) {
    float amax = 0;
    for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(w[k * N + n]));
    EXPECT_NEAR(q.scale[n], amax / 127.0f, 1e-6f * amax);
    for (int64_t k = 0; k < K; ++k) {
      EXPECT_GE(q.q[k * N + n], -127);
      EXPECT_LE(std::fabs(q.q[k * N + n] * q.scale[n] - w[k * N + n]), q.scale[n] * 0.5001f);
    }
  }
}

TEST(WeightQuant, ImportanceLetsTheSearchClipUnimportantRows) {
  // One huge value in a row that does not matter: with importance 0 for that row the search
  // clips it and the other rows get a finer step; with equal importance it keeps the full range.
  const int64_t K = 64, N = 1;
  std::vector<float> w(K);
  for (int64_t k = 0; k < K; ++k) w[k] = 0.01f * static_cast<float>((k * 37) % 23);  // >= 0: lo stays 0
  w[5] = 3.0f;
  std::vector<float> imp(K, 1.0f);
  imp[5] = 0.0f;
  const Uint8Columns plain = quantize_columns_uint8(w, K, N, {});
  const Uint8Columns weighed = quantize_columns_uint8(w, K, N, imp);
  EXPECT_LT(weighed.scale[0], plain.scale[0] * 0.95f);
}

// MatMulNBits' dequantization: (q - zp) * scale per block of 32 rows, low nibble = even k.
std::vector<float> dequantize_q4(const Q4Blocks& q, int64_t K, int64_t N, int64_t block) {
  const int64_t nb = q.blocks_per_column;
  std::vector<float> w(static_cast<std::size_t>(K * N));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t b = k / block, i = k % block;
      const uint8_t byte = q.packed[(n * nb + b) * (block / 2) + i / 2];
      const int v = i % 2 ? byte >> 4 : byte & 15;
      const uint8_t zbyte = q.zero_points[n * ((nb + 1) / 2) + b / 2];
      const int z = b % 2 ? zbyte >> 4 : zbyte & 15;
      w[k * N + n] = static_cast<float>(v - z) * q.scales[n * nb + b];
    }
  return w;
}

TEST(WeightQuant, Q4BlocksBeatSymmetricAbsmax) {
  const int64_t K = 100, N = 12, block = 32;  // K not a multiple of the block: the last one is padded
  const std::vector<float> w = weight(K, N, 2, 40);
  const Q4Blocks q = quantize_blocks_q4(w, K, N, block, {});
  const int64_t nb = 4;
  ASSERT_EQ(q.blocks_per_column, nb);
  ASSERT_EQ(q.packed.size(), static_cast<std::size_t>(N * nb * block / 2));
  ASSERT_EQ(q.scales.size(), static_cast<std::size_t>(N * nb));
  ASSERT_EQ(q.zero_points.size(), static_cast<std::size_t>(N * 2));
  const std::vector<float> d = dequantize_q4(q, K, N, block);
  double ours = 0, absmax = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t b = 0; b < nb; ++b) {
      // ONNX Runtime's symmetric form: scale = signed max / -8, zero point 8.
      float vmax = 0;
      for (int64_t k = b * block; k < std::min(K, (b + 1) * block); ++k)
        if (std::fabs(w[k * N + n]) > std::fabs(vmax)) vmax = w[k * N + n];
      const float s = vmax / -8.0f;
      float lo = 0, hi = 0;
      for (int64_t k = b * block; k < std::min(K, (b + 1) * block); ++k) {
        const float x = w[k * N + n];
        lo = std::min(lo, x), hi = std::max(hi, x);
        const float e = x - d[k * N + n];
        ours += e * e;
        const float qs = std::clamp(std::nearbyint(x / s) + 8.0f, 0.0f, 15.0f);
        absmax += std::pow(x - (qs - 8.0f) * s, 2.0f);
      }
      for (int64_t k = b * block; k < std::min(K, (b + 1) * block); ++k)
        EXPECT_LE(std::fabs(w[k * N + n] - d[k * N + n]), (hi - lo) / 15.0f) << k << "," << n;
    }
  EXPECT_LT(ours, 0.8 * absmax);
}

TEST(WeightQuant, Q4RefusesBadBlockSizes) {
  std::vector<float> w(64, 1.0f);
  EXPECT_THROW(quantize_blocks_q4(w, 64, 1, 24, {}), leanembed::Error);
  EXPECT_THROW(quantize_blocks_q4(w, 64, 1, 8, {}), leanembed::Error);
  EXPECT_THROW(quantize_blocks_q4(w, 32, 1, 32, {}), leanembed::Error);  // size does not match K * N
}

TEST(WeightQuant, HalfConversion) {
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half(0.1f), 0x2e66);            // 0.0999755859375
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(1e6f), 0x7bff);            // clamped, not infinity
  EXPECT_EQ(float_to_half(-INFINITY), 0xfbff);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -26)), 0x0000);  // rounds to zero
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // a tie: to even
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // a tie: to even (up)
  EXPECT_EQ(float_to_half(NAN) & 0x7c00, 0x7c00);
  EXPECT_NE(float_to_half(NAN) & 0x03ff, 0);
  std::size_t clamped = 0;
  to_half(std::vector<float>{1.0f, 7e4f, -1e5f}, &clamped);
  EXPECT_EQ(clamped, 2u);
}

}  // namespace
