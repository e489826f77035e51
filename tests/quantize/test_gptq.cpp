// GPTQ (gptq.h and the *_gptq forms of weight_quant.h): the Gram matrix, the inverse Hessian
// factor, and that error compensation lowers the calibration-weighted output error
// trace((W - W')^T H (W - W')) below round-to-nearest with the same scales, deterministically;
// plus quantize_model with QuantizeOptions::gptq on the tiny fixture.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "leanembed/error.h"
#include "leanembed/tokenizer.h"
#include "onnx/reader.h"
#include "quantize/calibration.h"
#include "quantize/gptq.h"
#include "quantize/quantize.h"
#include "quantize/weight_quant.h"
#include "test_support.h"

namespace {

using namespace leanembed::quantize;

// T calibration rows of K correlated channels (x = z A with a random mixing A, plus a few channels
// 10x larger, like LayerNorm outlier dims), row-major T * K.
std::vector<float> correlated_rows(int64_t T, int64_t K, unsigned seed = 3) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> mix(static_cast<std::size_t>(K * K));
  for (float& m : mix) m = nd(rng) / std::sqrt(static_cast<float>(K));
  for (int64_t k = 0; k < K; ++k) mix[k * K + k] += 1.0f;
  std::vector<float> x(static_cast<std::size_t>(T * K), 0.0f), z(static_cast<std::size_t>(K));
  for (int64_t t = 0; t < T; ++t) {
    for (float& v : z) v = nd(rng);
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j < K; ++j) x[t * K + j] += z[i] * mix[i * K + j];
    for (int64_t j = 0; j < K; j += 17) x[t * K + j] *= 10.0f;
  }
  return x;
}

std::vector<float> random_weight(int64_t K, int64_t N, unsigned seed = 5) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> w(static_cast<std::size_t>(K * N));
  for (float& v : w) v = nd(rng);
  return w;
}

// trace(D^T H D) with D = w - dq, [K, N].
double weighted_error(const std::vector<float>& w, const std::vector<float>& dq, const std::vector<double>& h,
                      int64_t K, int64_t N) {
  double e = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < K; ++i) {
      const double di = w[i * N + n] - dq[i * N + n];
      for (int64_t j = 0; j < K; ++j) e += di * h[i * K + j] * (w[j * N + n] - dq[j * N + n]);
    }
  return e;
}

std::vector<float> dequantize(const Uint8Columns& q, int64_t K, int64_t N) {
  std::vector<float> d(static_cast<std::size_t>(K * N));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) d[k * N + n] = (static_cast<float>(q.q[k * N + n]) - q.zero_point[n]) * q.scale[n];
  return d;
}

std::vector<float> dequantize(const Int8Columns& q, int64_t K, int64_t N) {
  std::vector<float> d(static_cast<std::size_t>(K * N));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) d[k * N + n] = static_cast<float>(q.q[k * N + n]) * q.scale[n];
  return d;
}

// MatMulNBits' reading: (code - zp) * scale per block, even k in the low nibble, zero points packed
// two per byte per column.
std::vector<float> dequantize(const Q4Blocks& q, int64_t K, int64_t N, int64_t block) {
  const int64_t nb = q.blocks_per_column;
  std::vector<float> d(static_cast<std::size_t>(K * N));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t b = k / block, i = k % block;
      const int code = (q.packed[(n * nb + b) * (block / 2) + i / 2] >> ((i % 2) * 4)) & 15;
      const int zp = (q.zero_points[n * ((nb + 1) / 2) + b / 2] >> ((b % 2) * 4)) & 15;
      d[k * N + n] = static_cast<float>(code - zp) * q.scales[n * nb + b];
    }
  return d;
}

TEST(Gptq, GramMatrixIsXtXOfTheScaledRows) {
  const int64_t T = 5, K = 4;
  const std::vector<float> x = correlated_rows(T, K);
  const std::vector<float> scale{1.0f, 2.0f, 0.5f, 4.0f};
  const std::vector<double> h = gram_matrix(x, K, scale);
  ASSERT_EQ(h.size(), static_cast<std::size_t>(K * K));
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < K; ++j) {
      double e = 0;
      for (int64_t t = 0; t < T; ++t)
        e += (static_cast<double>(x[t * K + i]) / scale[i]) * (static_cast<double>(x[t * K + j]) / scale[j]);
      EXPECT_NEAR(h[i * K + j], e, 1e-9 * (1 + std::fabs(e))) << i << "," << j;
    }
  EXPECT_THROW(gram_matrix(std::vector<float>(7), K), leanembed::Error);
  EXPECT_THROW(gram_matrix(x, K, std::vector<float>(3, 1.0f)), leanembed::Error);
}

TEST(Gptq, InverseFactorIsUpperAndInvertsTheDampenedHessian) {
  const int64_t T = 40, K = 24;
  std::vector<double> h = gram_matrix(correlated_rows(T, K), K);
  for (int64_t j = 0; j < K; ++j) h[5 * K + j] = h[j * K + 5] = 0.0;  // channel 5 never active
  const double damp = 0.01;
  const std::vector<double> u = inverse_hessian_factor(h, K, damp);
  // The dampened H the factor should invert (as documented: dead channel -> 1, + damp * mean diag).
  std::vector<double> hd = h;
  double mean = 0;
  for (int64_t i = 0; i < K; ++i) mean += h[i * K + i] / static_cast<double>(K);
  hd[5 * K + 5] = 1.0;
  for (int64_t i = 0; i < K; ++i) hd[i * K + i] += damp * mean;
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < i; ++j) EXPECT_EQ(u[i * K + j], 0.0) << "U must be upper triangular at " << i << "," << j;
  // (U^T U) hd = I.
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < K; ++j) {
      double v = 0;
      for (int64_t m = 0; m < K; ++m) {
        double inv = 0;  // (U^T U)[i][m]
        for (int64_t r = 0; r < K; ++r) inv += u[r * K + i] * u[r * K + m];
        v += inv * hd[m * K + j];
      }
      EXPECT_NEAR(v, i == j ? 1.0 : 0.0, 1e-6) << i << "," << j;
    }
  std::vector<double> bad(static_cast<std::size_t>(K * K), 0.0);
  bad[0] = std::nan("");
  EXPECT_THROW(inverse_hessian_factor(bad, K), leanembed::Error);
  EXPECT_THROW(inverse_hessian_factor(h, K + 1), leanembed::Error);
}

struct Case {
  int64_t T, K, N;
};

TEST(Gptq, Q4LowersTheCalibrationWeightedErrorBelowRoundToNearest) {
  const Case c{160, 96, 24};
  const std::vector<double> h = gram_matrix(correlated_rows(c.T, c.K), c.K);
  const std::vector<float> w = random_weight(c.K, c.N);
  const std::vector<float> rtn = dequantize(quantize_blocks_q4(w, c.K, c.N, 32, {}), c.K, c.N, 32);
  for (bool act_order : {false, true}) {
    const Q4Blocks g = quantize_blocks_q4_gptq(w, c.K, c.N, 32, {}, {.h = h, .damp = 0.01, .act_order = act_order});
    const std::vector<float> dq = dequantize(g, c.K, c.N, 32);
    const double e_rtn = weighted_error(w, rtn, h, c.K, c.N), e_gptq = weighted_error(w, dq, h, c.K, c.N);
    std::printf("  q4 act_order %d: weighted error RTN %.4g GPTQ %.4g\n", act_order, e_rtn, e_gptq);
    EXPECT_LT(e_gptq, 0.7 * e_rtn) << "act_order " << act_order;
    // Every code and zero point is 4-bit by construction; the values stay near the weights.
    for (std::size_t i = 0; i < w.size(); ++i) EXPECT_LT(std::fabs(dq[i] - w[i]), 0.2f) << i;
  }
}

TEST(Gptq, EightBitKeepsTheScalesAndLowersTheWeightedError) {
  const Case c{160, 64, 16};
  const std::vector<double> h = gram_matrix(correlated_rows(c.T, c.K, 11), c.K);
  const std::vector<float> w = random_weight(c.K, c.N, 13);
  const Uint8Columns u_rtn = quantize_columns_uint8(w, c.K, c.N, {});
  const Uint8Columns u_gptq = quantize_columns_uint8_gptq(w, c.K, c.N, {}, {.h = h});
  EXPECT_EQ(u_gptq.scale, u_rtn.scale);
  EXPECT_EQ(u_gptq.zero_point, u_rtn.zero_point);
  EXPECT_LT(weighted_error(w, dequantize(u_gptq, c.K, c.N), h, c.K, c.N),
            0.8 * weighted_error(w, dequantize(u_rtn, c.K, c.N), h, c.K, c.N));
  const Int8Columns i_rtn = quantize_columns_int8(w, c.K, c.N, {});
  const Int8Columns i_gptq = quantize_columns_int8_gptq(w, c.K, c.N, {}, {.h = h});
  EXPECT_EQ(i_gptq.scale, i_rtn.scale);
  for (int8_t q : i_gptq.q) EXPECT_GE(q, -127);
  EXPECT_LT(weighted_error(w, dequantize(i_gptq, c.K, c.N), h, c.K, c.N),
            0.8 * weighted_error(w, dequantize(i_rtn, c.K, c.N), h, c.K, c.N));
}

std::vector<float> dequantize(const Q8Blocks& q, int64_t K, int64_t N, int64_t block) {
  const int64_t nb = q.blocks_per_column;
  std::vector<float> d(static_cast<std::size_t>(K * N));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const std::size_t i = static_cast<std::size_t>(n * nb + k / block);
      d[k * N + n] = (static_cast<float>(q.packed[i * block + k % block]) - q.zero_points[i]) * q.scales[i];
    }
  return d;
}

// MatMulNBits bits 8: to nearest, every value within half a step of its block's scale; with GPTQ a
// lower calibration-weighted error.
TEST(Gptq, EightBitBlocks) {
  const Case c{160, 80, 12};  // K = 80: the last block is half padding
  const std::vector<double> h = gram_matrix(correlated_rows(c.T, c.K, 23), c.K);
  const std::vector<float> w = random_weight(c.K, c.N, 29);
  const Q8Blocks rtn = quantize_blocks_q8(w, c.K, c.N, 32, nullptr);
  ASSERT_EQ(rtn.blocks_per_column, 3);
  ASSERT_EQ(rtn.packed.size(), static_cast<std::size_t>(c.N * 3 * 32));
  const std::vector<float> d_rtn = dequantize(rtn, c.K, c.N, 32);
  for (int64_t k = 0; k < c.K; ++k)
    for (int64_t n = 0; n < c.N; ++n) {
      const float scale = rtn.scales[static_cast<std::size_t>(n * 3 + k / 32)];
      EXPECT_LE(std::fabs(d_rtn[k * c.N + n] - w[k * c.N + n]), 0.5001f * scale) << k << "," << n;
    }
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t k = c.K; k < 96; ++k) EXPECT_EQ(rtn.packed[(n * 3 + 2) * 32 + k % 32], rtn.zero_points[n * 3 + 2]);
  const GptqSettings g{.h = h};
  const Q8Blocks comp = quantize_blocks_q8(w, c.K, c.N, 32, &g);
  EXPECT_LT(weighted_error(w, dequantize(comp, c.K, c.N, 32), h, c.K, c.N), 0.8 * weighted_error(w, d_rtn, h, c.K, c.N));
  EXPECT_THROW(quantize_blocks_q8(w, c.K, c.N, 48, nullptr), leanembed::Error);
}

TEST(Gptq, DeterministicAndChecksSizes) {
  const Case c{64, 48, 8};  // K = 48: the last 32-row block is half padding
  const std::vector<double> h = gram_matrix(correlated_rows(c.T, c.K, 17), c.K);
  const std::vector<float> w = random_weight(c.K, c.N, 19);
  const Q4Blocks a = quantize_blocks_q4_gptq(w, c.K, c.N, 32, {}, {.h = h});
  const Q4Blocks b = quantize_blocks_q4_gptq(w, c.K, c.N, 32, {}, {.h = h});
  EXPECT_EQ(a.packed, b.packed);
  EXPECT_EQ(a.scales, b.scales);
  EXPECT_EQ(a.zero_points, b.zero_points);
  // Padding rows past K dequantize to 0 (code = the block's zero point).
  const int64_t nb = a.blocks_per_column;
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t k = c.K; k < nb * 32; ++k) {
      const int64_t bl = k / 32, i = k % 32;
      const int code = (a.packed[(n * nb + bl) * 16 + i / 2] >> ((i % 2) * 4)) & 15;
      const int zp = (a.zero_points[n * ((nb + 1) / 2) + bl / 2] >> ((bl % 2) * 4)) & 15;
      EXPECT_EQ(code, zp) << n << "," << k;
    }
  const std::vector<double> small(static_cast<std::size_t>(4), 1.0);
  EXPECT_THROW(quantize_blocks_q4_gptq(w, c.K, c.N, 32, {}, {.h = small}), leanembed::Error);
  EXPECT_THROW(quantize_columns_uint8_gptq(w, c.K, c.N, {}, {.h = small}), leanembed::Error);
  EXPECT_THROW(quantize_blocks_q4_gptq(w, c.K, c.N, 24, {}, {.h = h}), leanembed::Error);
}

// quantize_model with gptq on the tiny fixture: every weight MatMul goes through GPTQ, the graph
// has the same form as without it, and only the weight integers differ.
TEST(Gptq, QuantizeModelWithGptqOnTiny) {
  const std::string folder = leanembed::test::shared_dir() + "/models/tiny-bert-synthetic";
  const leanembed::onnx::Model fp32 = leanembed::onnx::read_model(folder + "/onnx/model.onnx");
  QuantizeOptions o;
  o.calibration = calibration_ids(leanembed::Tokenizer::load(folder));
  o.fp16_leading_matmuls = 0;  // every MatMul quantized (mixed precision keeps the first ones fp16)
  for (leanembed::Dtype dtype : {leanembed::Dtype::q4, leanembed::Dtype::q8, leanembed::Dtype::int8}) {
    QuantizeSummary plain_s, gptq_s;
    o.gptq_q4 = o.gptq_8bit = false;
    const leanembed::onnx::Model plain = quantize_model(fp32, dtype, o, &plain_s);
    o.gptq_q4 = o.gptq_8bit = true;
    const leanembed::onnx::Model with = quantize_model(fp32, dtype, o, &gptq_s);
    EXPECT_EQ(plain_s.gptq, 0);
    EXPECT_EQ(gptq_s.gptq, gptq_s.matmuls);
    EXPECT_GT(gptq_s.matmuls, 0);
    EXPECT_NE(gptq_s.scheme.find("GPTQ"), std::string::npos) << gptq_s.scheme;
    ASSERT_EQ(plain.graph.nodes.size(), with.graph.nodes.size());
    for (std::size_t i = 0; i < plain.graph.nodes.size(); ++i)
      EXPECT_EQ(plain.graph.nodes[i].op_type, with.graph.nodes[i].op_type) << i;
    ASSERT_EQ(plain.graph.initializers.size(), with.graph.initializers.size());
    int differing = 0;
    for (std::size_t i = 0; i < plain.graph.initializers.size(); ++i) {
      const auto& a = plain.graph.initializers[i];
      const auto& b = with.graph.initializers[i];
      EXPECT_EQ(a.name, b.name);
      EXPECT_EQ(a.dims, b.dims);
      if (a.bytes.size() != b.bytes.size() || !std::equal(a.bytes.begin(), a.bytes.end(), b.bytes.begin())) ++differing;
    }
    EXPECT_GT(differing, 0);
  }
}

}  // namespace
