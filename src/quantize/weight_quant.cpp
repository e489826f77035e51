#include "quantize/weight_quant.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "leanembed/error.h"
#include "quantize/gptq.h"

namespace leanembed::quantize {
namespace {

// [K, N] -> [N, K] so that a column is contiguous.
std::vector<float> transpose(std::span<const float> w, int64_t K, int64_t N) {
  std::vector<float> t(static_cast<std::size_t>(K * N));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) t[static_cast<std::size_t>(n * K + k)] = w[static_cast<std::size_t>(k * N + n)];
  return t;
}

float weight_of(std::span<const float> importance, int64_t k) {
  return importance.empty() ? 1.0f : importance[static_cast<std::size_t>(k)];
}

// Block sizes MatMulNBits accepts: a power of two >= 16. `what` names the form ("q4", "8-bit").
void check_block(int64_t block, const char* what) {
  if (block < 16 || !std::has_single_bit(static_cast<uint64_t>(block)))
    throw Error(ErrorCode::invalid_argument, std::string("quantize: ") + what +
                                                 " block size must be a power of two >= 16, got " + std::to_string(block));
}

void check_sizes(std::span<const float> w, int64_t K, int64_t N, std::span<const float> importance) {
  if (K <= 0 || N <= 0 || static_cast<int64_t>(w.size()) != K * N ||
      (!importance.empty() && static_cast<int64_t>(importance.size()) != K)) {
    throw Error(ErrorCode::invalid_argument, "quantize: weight of " + std::to_string(w.size()) + " values for K=" +
                                                 std::to_string(K) + " N=" + std::to_string(N) + " (importance " +
                                                 std::to_string(importance.size()) + ")");
  }
  // Non-finite values would make the integer conversions below undefined (e.g. after smoothing by
  // an overflowing activation statistic).
  for (std::size_t i = 0; i < w.size(); ++i)
    if (!std::isfinite(w[i]))
      throw Error(ErrorCode::invalid_argument, "quantize: weight value " + std::to_string(i) + " is not finite (" +
                                                   std::to_string(w[i]) + "); cannot quantize it");
  for (std::size_t i = 0; i < importance.size(); ++i)
    if (!std::isfinite(importance[i]) || importance[i] < 0)
      throw Error(ErrorCode::invalid_argument, "quantize: importance " + std::to_string(i) + " is " +
                                                   std::to_string(importance[i]) + ", expected a finite value >= 0");
}

// Shrink factors tried for the range of a column / block (1 = min..max, no clipping).
constexpr float kShrink8[] = {1.0f, 0.97f, 0.94f, 0.91f, 0.88f, 0.85f, 0.82f, 0.79f, 0.76f, 0.73f, 0.70f, 0.65f, 0.6f};
constexpr float kShrink4[] = {1.0f, 0.95f, 0.9f, 0.85f, 0.8f, 0.75f, 0.7f, 0.65f, 0.6f};

// Asymmetric quantization of `v` (n values) to [0, qmax] with the range [lo, hi] (lo <= 0 <= hi):
// the scale, the integer zero point and the weighted squared error.
struct Asym {
  float scale = 1.0f;
  int zero_point = 0;
  double error = 0;
};

Asym try_asym(const float* v, int64_t n, float lo, float hi, int qmax, const float* imp, int64_t imp_stride) {
  Asym a;
  a.scale = hi > lo ? (hi - lo) / static_cast<float>(qmax) : 1.0f;
  a.zero_point = static_cast<int>(std::clamp(std::nearbyint(-lo / a.scale), 0.0f, static_cast<float>(qmax)));
  double e = 0;
  for (int64_t k = 0; k < n; ++k) {
    const float q = std::clamp(std::nearbyint(v[k] / a.scale) + static_cast<float>(a.zero_point), 0.0f,
                               static_cast<float>(qmax));
    const double d = v[k] - (q - static_cast<float>(a.zero_point)) * a.scale;
    e += (imp ? imp[k * imp_stride] : 1.0f) * d * d;
  }
  a.error = e;
  return a;
}

// A 4-bit block's scale and zero point: the best (by importance-weighted squared error) of
// min..max over 15 steps (with `clip`, also ranges shrunk by kShrink4 on either side) and ONNX
// Runtime's symmetric form (the largest magnitude at -8 steps, zero point 8).
Asym choose_q4_block(std::span<const float> v, std::span<const float> imp, bool clip) {
  const int64_t block = static_cast<int64_t>(v.size());
  const auto [mn, mx] = std::minmax_element(v.begin(), v.end());
  const float lo0 = std::min(*mn, 0.0f), hi0 = std::max(*mx, 0.0f);
  Asym best;
  best.error = std::numeric_limits<double>::infinity();
  const std::size_t tries = clip ? std::size(kShrink4) : 1;
  for (float sl : std::span(kShrink4, tries))
    for (float sh : std::span(kShrink4, tries)) {
      Asym a = try_asym(v.data(), block, lo0 * sl, hi0 * sh, 15, imp.data(), 1);
      if (a.error < best.error) best = a;
    }
  const float vmax = std::fabs(*mn) > std::fabs(*mx) ? *mn : *mx;
  if (vmax != 0.0f) {
    Asym a;  // positive scale: a negative extreme sits at q = 0 (zero point 8), a positive one at 15 (7)
    a.scale = std::fabs(vmax) / 8.0f;
    a.zero_point = vmax < 0 ? 8 : 7;
    const float z = static_cast<float>(a.zero_point);
    double e = 0;
    for (int64_t i = 0; i < block; ++i) {
      const float qi = std::clamp(std::nearbyint(v[i] / a.scale) + z, 0.0f, 15.0f);
      const double d = v[i] - (qi - z) * a.scale;
      e += imp[i] * d * d;
    }
    a.error = e;
    if (a.error < best.error) best = a;
  }
  return best;
}

}  // namespace

Uint8Columns quantize_columns_uint8(std::span<const float> w, int64_t K, int64_t N, std::span<const float> importance) {
  check_sizes(w, K, N, importance);
  const std::vector<float> t = transpose(w, K, N);
  Uint8Columns r;
  r.q.resize(static_cast<std::size_t>(K * N));
  r.scale.resize(static_cast<std::size_t>(N));
  r.zero_point.resize(static_cast<std::size_t>(N));
  const float* imp = importance.empty() ? nullptr : importance.data();
  for (int64_t n = 0; n < N; ++n) {
    const float* v = t.data() + n * K;
    const auto [mn, mx] = std::minmax_element(v, v + K);
    const float lo0 = std::min(*mn, 0.0f), hi0 = std::max(*mx, 0.0f);
    Asym best;
    best.error = std::numeric_limits<double>::infinity();
    for (float s : kShrink8) {
      if (s < 1.0f && !imp) break;  // no activation estimate: never clip (see weight_quant.h)
      Asym a = try_asym(v, K, lo0 * s, hi0 * s, 255, imp, 1);
      if (a.error < best.error) best = a;
    }
    r.scale[n] = best.scale;
    r.zero_point[n] = static_cast<uint8_t>(best.zero_point);
    for (int64_t k = 0; k < K; ++k) {
      const float q = std::clamp(std::nearbyint(v[k] / best.scale) + static_cast<float>(best.zero_point), 0.0f, 255.0f);
      r.q[static_cast<std::size_t>(k * N + n)] = static_cast<uint8_t>(q);
    }
  }
  return r;
}

Int8Columns quantize_columns_int8(std::span<const float> w, int64_t K, int64_t N, std::span<const float> importance) {
  check_sizes(w, K, N, importance);
  const std::vector<float> t = transpose(w, K, N);
  Int8Columns r;
  r.q.resize(static_cast<std::size_t>(K * N));
  r.scale.resize(static_cast<std::size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    const float* v = t.data() + n * K;
    float amax = 0;
    for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(v[k]));
    float best_scale = amax > 0 ? amax / 127.0f : 1.0f;
    double best_error = std::numeric_limits<double>::infinity();
    for (float s : kShrink8) {
      if (s < 1.0f && importance.empty()) break;  // no activation estimate: never clip
      const float scale = amax > 0 ? amax * s / 127.0f : 1.0f;
      double e = 0;
      for (int64_t k = 0; k < K; ++k) {
        const float q = std::clamp(std::nearbyint(v[k] / scale), -127.0f, 127.0f);
        const double d = v[k] - q * scale;
        e += weight_of(importance, k) * d * d;
      }
      if (e < best_error) {
        best_error = e;
        best_scale = scale;
      }
    }
    r.scale[n] = best_scale;
    for (int64_t k = 0; k < K; ++k)
      r.q[static_cast<std::size_t>(k * N + n)] =
          static_cast<int8_t>(std::clamp(std::nearbyint(v[k] / best_scale), -127.0f, 127.0f));
  }
  return r;
}

Q4Blocks quantize_blocks_q4(std::span<const float> w, int64_t K, int64_t N, int64_t block,
                            std::span<const float> importance) {
  check_sizes(w, K, N, importance);
  check_block(block, "q4");
  const std::vector<float> t = transpose(w, K, N);
  const int64_t nb = (K + block - 1) / block;
  Q4Blocks r;
  r.blocks_per_column = nb;
  r.packed.assign(static_cast<std::size_t>(N * nb * block / 2), 0);
  r.scales.resize(static_cast<std::size_t>(N * nb));
  r.zero_points.assign(static_cast<std::size_t>(N * ((nb + 1) / 2)), 0);
  std::vector<float> v(static_cast<std::size_t>(block)), imp(static_cast<std::size_t>(block));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t b = 0; b < nb; ++b) {
      // The block's values (zero padding past K, with importance 0 so it costs nothing).
      for (int64_t i = 0; i < block; ++i) {
        const int64_t k = b * block + i;
        v[i] = k < K ? t[static_cast<std::size_t>(n * K + k)] : 0.0f;
        imp[i] = k < K ? weight_of(importance, k) : 0.0f;
      }
      const Asym best = choose_q4_block(v, imp, !importance.empty());
      r.scales[static_cast<std::size_t>(n * nb + b)] = best.scale;
      uint8_t& zbyte = r.zero_points[static_cast<std::size_t>(n * ((nb + 1) / 2) + b / 2)];
      zbyte |= static_cast<uint8_t>(best.zero_point << ((b % 2) * 4));
      uint8_t* out = r.packed.data() + (n * nb + b) * (block / 2);
      for (int64_t i = 0; i < block; ++i) {
        const int qi = static_cast<int>(
            std::clamp(std::nearbyint(v[i] / best.scale) + static_cast<float>(best.zero_point), 0.0f, 15.0f));
        out[i / 2] |= static_cast<uint8_t>(qi << ((i % 2) * 4));
      }
    }
  }
  return r;
}

namespace {

// Fixed per-column 8-bit parameters, GPTQ rounding: q = clamp(round(v / scale) + zp, lo, hi).
class ColumnRounder final : public GptqRounder {
 public:
  ColumnRounder(const std::vector<float>& scale, std::vector<float> zero_point, float lo, float hi, int64_t N)
      : scale_(scale), zp_(std::move(zero_point)), lo_(lo), hi_(hi), n_(N) {}
  void begin_group(int64_t, int64_t, std::span<const float>) override {}
  void round_row(int64_t k, std::span<float> row) override {
    for (int64_t j = 0; j < n_; ++j) {
      const float q = std::clamp(std::nearbyint(row[j] / scale_[j]) + zp_[j], lo_, hi_);
      row[j] = (q - zp_[j]) * scale_[j];
      out_[static_cast<std::size_t>(k * n_ + j)] = q;
    }
  }
  std::vector<float> out_;  // K * N integers as floats
 private:
  const std::vector<float>& scale_;
  std::vector<float> zp_;
  float lo_, hi_;
  int64_t n_;
};

void check_hessian(const GptqSettings& g, int64_t K) {
  if (static_cast<int64_t>(g.h.size()) != K * K) {
    throw Error(ErrorCode::invalid_argument, "quantize: GPTQ's H of " + std::to_string(g.h.size()) +
                                                 " values for K=" + std::to_string(K));
  }
}

}  // namespace

Uint8Columns quantize_columns_uint8_gptq(std::span<const float> w, int64_t K, int64_t N,
                                         std::span<const float> importance, const GptqSettings& g) {
  check_hessian(g, K);
  Uint8Columns r = quantize_columns_uint8(w, K, N, importance);  // the scales; the integers are redone
  std::vector<float> zp(r.zero_point.begin(), r.zero_point.end());
  ColumnRounder rounder(r.scale, std::move(zp), 0.0f, 255.0f, N);
  rounder.out_.resize(static_cast<std::size_t>(K * N));
  std::vector<float> work(w.begin(), w.end());
  gptq_round(work, K, N, g.h, g.damp, K, g.act_order, rounder);
  for (std::size_t i = 0; i < r.q.size(); ++i) r.q[i] = static_cast<uint8_t>(rounder.out_[i]);
  return r;
}

Int8Columns quantize_columns_int8_gptq(std::span<const float> w, int64_t K, int64_t N,
                                       std::span<const float> importance, const GptqSettings& g) {
  check_hessian(g, K);
  Int8Columns r = quantize_columns_int8(w, K, N, importance);
  ColumnRounder rounder(r.scale, std::vector<float>(static_cast<std::size_t>(N), 0.0f), -127.0f, 127.0f, N);
  rounder.out_.resize(static_cast<std::size_t>(K * N));
  std::vector<float> work(w.begin(), w.end());
  gptq_round(work, K, N, g.h, g.damp, K, g.act_order, rounder);
  for (std::size_t i = 0; i < r.q.size(); ++i) r.q[i] = static_cast<int8_t>(rounder.out_[i]);
  return r;
}

namespace {

// 4-bit blocks: each block's scale / zero point chosen (choose_q4_block) from the compensated
// values when GPTQ reaches it, the integers packed as MatMulNBits reads them.
class BlockRounder final : public GptqRounder {
 public:
  BlockRounder(Q4Blocks& r, int64_t N, int64_t block, std::span<const float> importance)
      : r_(r), N_(N), block_(block), imp_(importance) {}
  void begin_group(int64_t first, int64_t rows, std::span<const float> w) override {
    const int64_t b = first / block_;
    std::vector<float> v(static_cast<std::size_t>(block_)), imp(static_cast<std::size_t>(block_));
    const int64_t nb = r_.blocks_per_column;
    if (scale_.empty()) {
      scale_.assign(static_cast<std::size_t>(N_ * nb), 1.0f);
      zp_.assign(static_cast<std::size_t>(N_ * nb), 0.0f);
    }
    for (int64_t n = 0; n < N_; ++n) {
      for (int64_t i = 0; i < block_; ++i) {
        v[i] = i < rows ? w[static_cast<std::size_t>(i * N_ + n)] : 0.0f;
        imp[i] = i < rows ? (imp_.empty() ? 1.0f : imp_[static_cast<std::size_t>(first + i)]) : 0.0f;
      }
      const Asym a = choose_q4_block(v, imp, !imp_.empty());
      scale_[static_cast<std::size_t>(n * nb + b)] = a.scale;
      zp_[static_cast<std::size_t>(n * nb + b)] = static_cast<float>(a.zero_point);
      r_.scales[static_cast<std::size_t>(n * nb + b)] = a.scale;
      r_.zero_points[static_cast<std::size_t>(n * ((nb + 1) / 2) + b / 2)] |=
          static_cast<uint8_t>(a.zero_point << ((b % 2) * 4));
    }
  }
  void round_row(int64_t k, std::span<float> row) override {
    const int64_t b = k / block_, i = k % block_;
    const int64_t nb = r_.blocks_per_column;
    for (int64_t n = 0; n < N_; ++n) {
      const float scale = scale_[static_cast<std::size_t>(n * nb + b)], zp = zp_[static_cast<std::size_t>(n * nb + b)];
      const float q = std::clamp(std::nearbyint(row[n] / scale) + zp, 0.0f, 15.0f);
      row[n] = (q - zp) * scale;
      r_.packed[static_cast<std::size_t>((n * nb + b) * (block_ / 2) + i / 2)] |=
          static_cast<uint8_t>(static_cast<int>(q) << ((i % 2) * 4));
    }
  }

 private:
  Q4Blocks& r_;
  int64_t N_, block_;
  std::span<const float> imp_;
  std::vector<float> scale_, zp_;  // N * nb, laid out as Q4Blocks::scales
};

}  // namespace

Q4Blocks quantize_blocks_q4_gptq(std::span<const float> w, int64_t K, int64_t N, int64_t block,
                                 std::span<const float> importance, const GptqSettings& g) {
  check_sizes(w, K, N, importance);
  check_hessian(g, K);
  check_block(block, "q4");
  const int64_t nb = (K + block - 1) / block;
  Q4Blocks r;
  r.blocks_per_column = nb;
  r.packed.assign(static_cast<std::size_t>(N * nb * block / 2), 0);
  r.scales.assign(static_cast<std::size_t>(N * nb), 1.0f);
  r.zero_points.assign(static_cast<std::size_t>(N * ((nb + 1) / 2)), 0);
  BlockRounder rounder(r, N, block, importance);
  std::vector<float> work(w.begin(), w.end());
  gptq_round(work, K, N, g.h, g.damp, block, g.act_order, rounder);
  // Padding rows past K (the last block) stay 0 -> they must dequantize to 0: q = zero point.
  for (int64_t k = K; k < nb * block; ++k) {
    const int64_t b = k / block, i = k % block;
    for (int64_t n = 0; n < N; ++n) {
      const int zp = (r.zero_points[static_cast<std::size_t>(n * ((nb + 1) / 2) + b / 2)] >> ((b % 2) * 4)) & 15;
      r.packed[static_cast<std::size_t>((n * nb + b) * (block / 2) + i / 2)] |= static_cast<uint8_t>(zp << ((i % 2) * 4));
    }
  }
  return r;
}

namespace {

// 8-bit blocks: each block's scale / zero point from its current values (min..max over 255 steps).
class Block8Rounder final : public GptqRounder {
 public:
  Block8Rounder(Q8Blocks& r, int64_t N, int64_t block) : r_(r), N_(N), block_(block) {}
  void begin_group(int64_t first, int64_t rows, std::span<const float> w) override {
    const int64_t b = first / block_, nb = r_.blocks_per_column;
    for (int64_t n = 0; n < N_; ++n) {
      float lo = 0.0f, hi = 0.0f;
      for (int64_t i = 0; i < rows; ++i) {
        lo = std::min(lo, w[static_cast<std::size_t>(i * N_ + n)]);
        hi = std::max(hi, w[static_cast<std::size_t>(i * N_ + n)]);
      }
      const float scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
      const float zp = std::clamp(std::nearbyint(-lo / scale), 0.0f, 255.0f);
      r_.scales[static_cast<std::size_t>(n * nb + b)] = scale;
      r_.zero_points[static_cast<std::size_t>(n * nb + b)] = static_cast<uint8_t>(zp);
    }
  }
  void round_row(int64_t k, std::span<float> row) override {
    const int64_t b = k / block_, nb = r_.blocks_per_column;
    for (int64_t n = 0; n < N_; ++n) {
      const float scale = r_.scales[static_cast<std::size_t>(n * nb + b)];
      const float zp = r_.zero_points[static_cast<std::size_t>(n * nb + b)];
      const float q = std::clamp(std::nearbyint(row[n] / scale) + zp, 0.0f, 255.0f);
      row[n] = (q - zp) * scale;
      r_.packed[static_cast<std::size_t>((n * nb + b) * block_ + k % block_)] = static_cast<uint8_t>(q);
    }
  }

 private:
  Q8Blocks& r_;
  int64_t N_, block_;
};

}  // namespace

Q8Blocks quantize_blocks_q8(std::span<const float> w, int64_t K, int64_t N, int64_t block, const GptqSettings* gptq) {
  check_sizes(w, K, N, {});
  if (gptq) check_hessian(*gptq, K);
  check_block(block, "8-bit");
  const int64_t nb = (K + block - 1) / block;
  Q8Blocks r;
  r.blocks_per_column = nb;
  r.packed.assign(static_cast<std::size_t>(N * nb * block), 0);
  r.scales.assign(static_cast<std::size_t>(N * nb), 1.0f);
  r.zero_points.assign(static_cast<std::size_t>(N * nb), 0);
  Block8Rounder rounder(r, N, block);
  std::vector<float> work(w.begin(), w.end());
  if (gptq) {
    gptq_round(work, K, N, gptq->h, gptq->damp, block, gptq->act_order, rounder);
  } else {
    for (int64_t first = 0; first < K; first += block) {
      const int64_t rows = std::min(block, K - first);
      rounder.begin_group(first, rows, std::span<const float>(work).subspan(static_cast<std::size_t>(first * N),
                                                                            static_cast<std::size_t>(rows * N)));
      for (int64_t k = first; k < first + rows; ++k)
        rounder.round_row(k, std::span<float>(work).subspan(static_cast<std::size_t>(k * N), static_cast<std::size_t>(N)));
    }
  }
  // Padding rows past K dequantize to 0: code = the block's zero point.
  for (int64_t k = K; k < nb * block; ++k)
    for (int64_t n = 0; n < N; ++n)
      r.packed[static_cast<std::size_t>((n * nb + k / block) * block + k % block)] =
          r.zero_points[static_cast<std::size_t>(n * nb + k / block)];
  return r;
}

uint16_t float_to_half(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (x >= 0x477fe000u) return static_cast<uint16_t>(sign | 0x7bffu);  // rounds to >= 65520: clamp to 65504
  if (x < 0x38800000u) {
    // Subnormal half (or zero): value = m * 2^-24, m rounded to nearest even.
    const float a = std::bit_cast<float>(x);
    const float m = std::nearbyint(a * 16777216.0f);  // 2^24; default rounding mode: to nearest even
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(m));
  }
  // Normal: rebias the exponent, round the 23-bit mantissa to 10 bits (nearest even).
  const uint32_t mant = x & 0x7fffffu;
  uint32_t h = ((x >> 23) - 112u) << 10 | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
  return static_cast<uint16_t>(sign | h);
}

std::vector<uint16_t> to_half(std::span<const float> values, std::size_t* clamped) {
  std::vector<uint16_t> out(values.size());
  std::size_t c = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    out[i] = float_to_half(values[i]);
    if (std::fabs(values[i]) > 65504.0f && !std::isnan(values[i])) ++c;
  }
  if (clamped) *clamped = c;
  return out;
}

}  // namespace leanembed::quantize
