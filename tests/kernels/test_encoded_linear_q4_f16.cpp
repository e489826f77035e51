// 4-bit block (MatMulNBits) and float16 encoded linear layers: the references against
// hand-computed values and against a dense product of weights the test packs itself (from the
// layout quantize.py writes); every fast kernel the CPU runs (AVX2, AVX-512) against the references
// over a table of shapes, with views at odd byte addresses, strided x and y, bias, 1 and 2 threads;
// the half -> float conversion (all 65536 encodings against vcvtph2ps); the kernel choice; view and
// argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/float16.h"
#include "kernels/dispatch.h"
#include "kernels/encoded_linear.h"
#include "kernels/encoded_linear_decoding.h"
#include "kernels/kernels.h"
#include "kernels/threads.h"
#include "leanembed/error.h"

namespace leanembed::kernels {

namespace {

constexpr float kSentinel = 12345.0f;

// Rows of x in the shape tables. The fast kernels decode in registers below 4 rows (tiles of 3, 2,
// 1 rows); from 4 rows through a panel, with tiles of 6 rows + 1..5 (AVX2) or of 12 and 4 rows +
// 1..3 (AVX-512), in blocks of 128 rows (131 crosses one). The list meets every tile and remainder.
constexpr int64_t kRowCounts[] = {1, 2, 3, 4, 5, 8, 9, 10, 14, 25, 128, 131};
// Products above this many multiply-adds are left out of the shape tables (only m = 128 and 131 at
// k = 1536, n = 384: half of the tables' work, which the sanitizer build runs slowly); k = 1536 is
// still covered up to m = 131 with n <= 64, and n = 384 up to m = 25.
constexpr int64_t kMaxTableMacs = 40'000'000;

// The fast kernels this CPU runs: "avx2", and "avx512" (AVX2 decoding + AVX-512 micro-kernel) when
// available. The test requires AVX2 (the development and CI machines have it) and says so.
std::vector<std::string> fast_kernels() {
  std::vector<std::string> kernels{"avx2"};
  if (cpu_has_avx512f()) kernels.push_back("avx512");
  return kernels;
}

// The table Implementation::fast should get at the ISA level in effect (LEANEMBED_ISA caps it;
// unset: the best this CPU runs), derived from the CPU checks rather than read from the dispatch's
// family table.
std::string expected_fast_kernel() {
  const Isa level = kernel_config().isa;
  if (level >= Isa::avx512 && cpu_has_avx512f()) return "avx512";
  if (level >= Isa::avx2 && cpu_has_avx2_fma_f16c()) return "avx2";
  return "ref";
}

void run(EncodedLinear& layer, int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy, const float* bias) {
  const std::size_t bytes = layer.scratch_bytes(m);
  std::unique_ptr<unsigned char[]> scratch(bytes ? new unsigned char[bytes] : nullptr);
  layer.run(m, x, ldx, y, ldy, bias, scratch.get());
}

// ---- q4: hand-computed -----------------------------------------------------------------------------

TEST(EncodedLinearQ4, HandComputedNoZeroPoints) {
  // One block of 16: q[i] = i (low nibble = even i), implicit zero point 8, scale 0.25, x[i] = i.
  // y = 0.25 * sum i * (i - 8) + bias = 0.25 * (1240 - 960) + 1 = 71.
  const uint8_t packed[8] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE};
  const float scale = 0.25f, bias = 1.0f;
  float x[16];
  for (int i = 0; i < 16; ++i) x[i] = static_cast<float>(i);
  for (Implementation impl : {Implementation::reference, Implementation::fast}) {
    auto layer = encoded_linear_q4({.packed = packed, .scales = &scale, .k = 16, .n = 1, .block_size = 16}, impl);
    float y = 0.0f;
    run(*layer, 1, x, 16, &y, 1, &bias);
    EXPECT_EQ(y, 71.0f) << layer->name();
    run(*layer, 1, x, 16, &y, 1, nullptr);
    EXPECT_EQ(y, 70.0f) << layer->name();
  }
}

TEST(EncodedLinearQ4, HandComputedZeroPointsPartialBlockStrides) {
  // k = 20, block 16: block 0 full, block 1 holds k = 16..19 (bytes 2..7 are padding; filled with
  // 0xFF here to show they are ignored). n = 2, zero points packed two blocks per byte.
  //   column 0: block 0 q = i, block 1 q = 1, 2, 3, 4; zp = 2, 5 (byte 0x52); scales 1, 0.5
  //   column 1: block 0 q = 15, block 1 q = 0;          zp = 14, 1 (byte 0x1E); scales 2, 3
  const uint8_t packed[2 * 2 * 8] = {
      0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE,  0x21, 0x43, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
      0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,  0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  const float scales[4] = {1.0f, 0.5f, 2.0f, 3.0f};
  const uint8_t zero_points[2] = {0x52, 0x1E};
  const float bias[2] = {10.0f, -10.0f};
  // Row 0: x = 1.  col 0: (120 - 32) + 0.5 * (10 - 20) = 83;  col 1: 2 * 16 * 1 + 3 * 4 * (-1) = 20.
  // Row 1: x = i.  col 0: (1240 - 240) + 0.5 * (16*-4 + 17*-3 + 18*-2 + 19*-1) = 915;
  //                col 1: 2 * 120 - 3 * (16 + 17 + 18 + 19) = 30.
  const int64_t ldx = 23, ldy = 5;
  std::vector<float> x(2 * ldx, -1000.0f);  // the padding columns would change every sum if read
  for (int i = 0; i < 20; ++i) {
    x[i] = 1.0f;
    x[ldx + i] = static_cast<float>(i);
  }
  for (Implementation impl : {Implementation::reference, Implementation::fast}) {
    auto layer = encoded_linear_q4(
        {.packed = packed, .scales = scales, .zero_points = zero_points, .k = 20, .n = 2, .block_size = 16}, impl);
    std::vector<float> y(2 * ldy, kSentinel);
    run(*layer, 2, x.data(), ldx, y.data(), ldy, bias);
    EXPECT_EQ(y[0], 93.0f) << layer->name();
    EXPECT_EQ(y[1], 10.0f) << layer->name();
    EXPECT_EQ(y[ldy + 0], 925.0f) << layer->name();
    EXPECT_EQ(y[ldy + 1], 20.0f) << layer->name();
    for (int c = 2; c < ldy; ++c) {
      EXPECT_EQ(y[c], kSentinel);
      EXPECT_EQ(y[ldy + c], kSentinel);
    }
  }
}

// ---- f16: conversion and hand-computed --------------------------------------------------------------

TEST(EncodedLinearF16, HalfToFloatSpecialValues) {
  EXPECT_EQ(half_to_float(0x0000), 0.0f);
  EXPECT_FALSE(std::signbit(half_to_float(0x0000)));
  EXPECT_TRUE(std::signbit(half_to_float(0x8000)));
  EXPECT_EQ(half_to_float(0x8000), 0.0f);
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));           // smallest subnormal
  EXPECT_EQ(half_to_float(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(half_to_float(0x03FF), std::ldexp(1023.0f, -24));        // largest subnormal
  EXPECT_EQ(half_to_float(0x0400), std::ldexp(1.0f, -14));           // smallest normal
  EXPECT_EQ(half_to_float(0x3C00), 1.0f);
  EXPECT_EQ(half_to_float(0xC000), -2.0f);
  EXPECT_EQ(half_to_float(0x3555), 1365.0f / 4096.0f);               // (1024 + 0x155) * 2^-12
  EXPECT_EQ(half_to_float(0x7BFF), 65504.0f);                        // max
  EXPECT_EQ(half_to_float(0xFBFF), -65504.0f);
  EXPECT_EQ(half_to_float(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(half_to_float(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(half_to_float(0x7E00)));
  EXPECT_TRUE(std::isnan(half_to_float(0x7C01)));  // signalling NaN stays a NaN
  EXPECT_TRUE(std::isnan(half_to_float(0xFFFF)));
}

TEST(EncodedLinearF16, HandComputed) {
  // W = [[1, -2, 0.5], [65504, 2^-24, -0]] (binary16), stored at an odd address.
  const uint16_t halves[6] = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x8000};
  std::vector<unsigned char> storage(1 + sizeof halves);
  std::memcpy(storage.data() + 1, halves, sizeof halves);
  const float x[4] = {2.0f, 3.0f, 0.0f, 1024.0f};
  for (Implementation impl : {Implementation::reference, Implementation::fast}) {
    auto layer = encoded_linear_f16({.data = storage.data() + 1, .k = 2, .n = 3}, impl);
    float y[6] = {};
    run(*layer, 2, x, 2, y, 3, nullptr);
    EXPECT_EQ(y[0], 2.0f + 3.0f * 65504.0f) << layer->name();
    EXPECT_EQ(y[1], static_cast<float>(-4.0 + 3.0 * std::ldexp(1.0, -24))) << layer->name();
    EXPECT_EQ(y[2], 1.0f) << layer->name();
    EXPECT_EQ(y[3], 1024.0f * 65504.0f) << layer->name();
    EXPECT_EQ(y[4], std::ldexp(1.0f, -14)) << layer->name();
    EXPECT_EQ(y[5], 0.0f) << layer->name();
    const float bias[3] = {-1.0f, 0.5f, 7.0f};
    run(*layer, 1, x, 2, y, 3, bias);
    EXPECT_EQ(y[0], 2.0f + 3.0f * 65504.0f - 1.0f) << layer->name();
    EXPECT_EQ(y[2], 8.0f) << layer->name();
  }
}

// Every binary16 encoding through both kernels (k = 1, x = 1: y = the weight, exactly): the fast
// one converts with vcvtph2ps, so this checks half_to_float against the hardware.
TEST(EncodedLinearF16, AllEncodingsMatchHardwareConversion) {
  ASSERT_TRUE(cpu_has_avx2_fma_f16c()) << "this test needs a CPU with AVX2, FMA and F16C";
  const int64_t n = 65536;
  std::vector<unsigned char> storage(1 + n * 2);
  for (int64_t j = 0; j < n; ++j) {
    const uint16_t h = static_cast<uint16_t>(j);
    std::memcpy(storage.data() + 1 + j * 2, &h, 2);
  }
  const float one = 1.0f;
  std::vector<float> y_ref(n), y_fast(n);
  auto ref = encoded_linear_f16({.data = storage.data() + 1, .k = 1, .n = n}, Implementation::reference);
  auto fast = encoded_linear_f16_kernel({.data = storage.data() + 1, .k = 1, .n = n}, "avx2");
  run(*ref, 1, &one, 1, y_ref.data(), n, nullptr);
  run(*fast, 1, &one, 1, y_fast.data(), n, nullptr);
  int mismatches = 0;
  for (int64_t j = 0; j < n; ++j) {
    const bool same = std::isnan(y_ref[j]) ? std::isnan(y_fast[j])
                                           : (y_ref[j] == y_fast[j] && std::signbit(y_ref[j]) == std::signbit(y_fast[j]));
    if (!same && ++mismatches <= 5) {
      ADD_FAILURE() << "half 0x" << std::hex << j << ": ref " << y_ref[j] << " fast " << y_fast[j];
    }
    if (!std::isnan(y_ref[j])) {
      EXPECT_EQ(y_ref[j], half_to_float(static_cast<uint16_t>(j)));
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// ---- random weights, packed by the test -------------------------------------------------------------

// Bytes at an odd address inside an owned buffer.
struct OddBytes {
  std::vector<unsigned char> storage;
  explicit OddBytes(std::size_t n) : storage(n + 1) {}
  unsigned char* data() { return storage.data() + 1; }
};

// Dense q [n][k] (0..15), zero points [n][blocks] and scales [n][blocks], packed into the
// MatMulNBits layout the way quantize.py's pack_q4 does (low nibble = even k; zero points two
// blocks per byte, low nibble = even block; the last block's padding zero).
struct Q4Case {
  int64_t k, n, block_size, blocks;
  bool with_zero_points;
  std::vector<uint8_t> q, zp;
  std::vector<float> scales;
  OddBytes packed, scale_bytes, zp_bytes;

  Q4Case(int64_t k_, int64_t n_, int64_t bs, bool zps, std::mt19937& gen)
      : k(k_), n(n_), block_size(bs), blocks((k_ + bs - 1) / bs), with_zero_points(zps),
        q(n_ * k_), zp(n_ * blocks, 8), scales(n_ * blocks),
        packed(n_ * blocks * bs / 2), scale_bytes(n_ * blocks * 4), zp_bytes(n_ * ((blocks + 1) / 2)) {
    std::uniform_int_distribution<int> nibble(0, 15);
    std::uniform_real_distribution<float> scale(0.01f, 0.1f);
    for (uint8_t& v : q) v = static_cast<uint8_t>(nibble(gen));
    for (float& s : scales) s = scale(gen) * (nibble(gen) < 8 ? -1.0f : 1.0f);
    if (zps)
      for (uint8_t& z : zp) z = static_cast<uint8_t>(nibble(gen));
    std::memset(packed.data(), 0, n * blocks * bs / 2);
    std::memset(zp_bytes.data(), 0, n * ((blocks + 1) / 2));
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t i = 0; i < k; ++i) {
        const int64_t b = i / bs, t = i % bs;
        packed.data()[(j * blocks + b) * (bs / 2) + t / 2] |= static_cast<uint8_t>(q[j * k + i] << (4 * (t % 2)));
      }
      for (int64_t b = 0; b < blocks; ++b)
        zp_bytes.data()[j * ((blocks + 1) / 2) + b / 2] |= static_cast<uint8_t>(zp[j * blocks + b] << (4 * (b % 2)));
    }
    std::memcpy(scale_bytes.data(), scales.data(), scales.size() * 4);
  }

  BlockQ4WeightsView view() {
    return {.packed = packed.data(), .scales = scale_bytes.data(),
            .zero_points = with_zero_points ? zp_bytes.data() : nullptr, .k = k, .n = n, .block_size = block_size};
  }
  double weight(int64_t i, int64_t j) const {
    const int64_t b = i / block_size;
    return (static_cast<int>(q[j * k + i]) - zp[j * blocks + b]) * static_cast<double>(scales[j * blocks + b]);
  }
};

std::vector<float> random_floats(std::size_t n, std::mt19937& gen) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(gen);
  return v;
}

std::string shape_name(int64_t m, int64_t k, int64_t n) {
  return "m=" + std::to_string(m) + " k=" + std::to_string(k) + " n=" + std::to_string(n);
}

// Error bound of an fp32 sum: with `depth` roundings in the longest chain, |fast - exact| <=
// depth * 2^-24 * S to first order, S = sum |x_i * w_i| + |bias|; the test allows twice that. The
// fast kernels' longest chain: the panel kernels sum each output in one lane over all k in order
// (k FMAs, + bias first), q4 rounds each decoded weight once ((q - zp) * scale in fp32), the
// few-rows kernels sum 8 lanes of k / 8 then add them (shorter): depth = k + 3 covers all. The
// reference itself is within 2^-24 relative of the exact value (double sums, one final rounding).
// Errors in practice are random-walk (~sqrt(k) roundings), so the bound is loose; still, a single
// wrong weight (nibble order, zero point, scale, a lost block) moves a result by ~S / k, several
// times the bound even at k = 1536 — and the mutation checks made while writing this test (nibble
// order, zero-point nibble, transposition, chunk accumulation) all failed it.
double tolerance(double depth, double abs_sum) { return 2.0 * depth * std::ldexp(1.0, -24) * abs_sum + 1e-30; }

// Compares the reference with the dense product and each fast kernel's y with the reference,
// element by element, and checks y's padding columns are untouched.
// exact(r, j) -> {dense double result, sum |x w| + |bias|}.
template <typename Exact>
void compare_outputs(const std::string& what, int64_t m, int64_t n, int64_t ldy, const std::vector<float>& y_ref,
                     const std::vector<std::vector<float>>& y_fast, const std::vector<std::string>& names,
                     double depth, const Exact& exact) {
  int bad = 0;
  for (int64_t r = 0; r < m && bad < 5; ++r) {
    for (int64_t j = 0; j < ldy; ++j) {
      const int64_t at = r * ldy + j;
      if (j >= n) {  // the padding of y stays untouched
        if (y_ref[at] != kSentinel) { ++bad; ADD_FAILURE() << what << " ref wrote padding"; }
        for (std::size_t f = 0; f < y_fast.size(); ++f)
          if (y_fast[f][at] != kSentinel) { ++bad; ADD_FAILURE() << what << " " << names[f] << " wrote padding"; }
        continue;
      }
      const auto [dense, abs_sum] = exact(r, j);
      if (std::fabs(y_ref[at] - dense) > std::ldexp(1.0, -23) * std::fabs(dense) + 1e-12 * abs_sum) {
        ++bad;
        ADD_FAILURE() << what << " ref[" << r << "," << j << "] = " << y_ref[at] << ", dense " << dense;
      }
      for (std::size_t f = 0; f < y_fast.size(); ++f) {
        if (std::fabs(y_fast[f][at] - y_ref[at]) > tolerance(depth, abs_sum)) {
          ++bad;
          ADD_FAILURE() << what << " " << names[f] << "[" << r << "," << j << "] = " << y_fast[f][at] << ", ref "
                        << y_ref[at];
        }
      }
    }
  }
}

// Runs each fast layer with 1 and 2 threads (results must be bit-identical: the split is by columns)
// and returns one y per layer.
std::vector<std::vector<float>> run_fast(const std::vector<std::unique_ptr<EncodedLinear>>& layers,
                                         const std::string& what, int64_t m, const std::vector<float>& x,
                                         int64_t ldx, int64_t ldy, const float* bias) {
  std::vector<std::vector<float>> ys;
  for (const auto& layer : layers) {
    std::vector<float> y1(m * ldy, kSentinel), y2(m * ldy, kSentinel);
    threads_set(1);
    run(*layer, m, x.data(), ldx, y1.data(), ldy, bias);
    threads_set(2);
    run(*layer, m, x.data(), ldx, y2.data(), ldy, bias);
    threads_set(0);
    EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * 4), 0) << what << " " << layer->name() << ": 1 vs 2 threads";
    ys.push_back(std::move(y1));
  }
  return ys;
}

// For each row count of kRowCounts (within kMaxTableMacs): random x (odd strides for odd m), a bias
// for every other shape; the reference against the dense product of weight(i, j) and every fast
// layer against the reference (compare_outputs). `what` is appended to each shape's name.
template <typename Weight>
void check_row_counts(EncodedLinear& ref, const std::vector<std::unique_ptr<EncodedLinear>>& fast,
                      const std::vector<std::string>& names, int64_t k, int64_t n, const std::string& what,
                      std::mt19937& gen, const Weight& weight) {
  for (int64_t m : kRowCounts) {
    if (m * n * k > kMaxTableMacs) continue;
    const std::string shape = shape_name(m, k, n) + what;
    const int64_t ldx = k + (m % 2 ? 3 : 0), ldy = n + (m % 2 ? 0 : 5);
    const std::vector<float> x = random_floats(m * ldx, gen);
    const std::vector<float> bias = random_floats(n, gen);
    const bool use_bias = (k + n + m) % 2 == 0;
    const float* b = use_bias ? bias.data() : nullptr;
    std::vector<float> y_ref(m * ldy, kSentinel);
    run(ref, m, x.data(), ldx, y_ref.data(), ldy, b);
    const auto y_fast = run_fast(fast, shape, m, x, ldx, ldy, b);
    compare_outputs(shape, m, n, ldy, y_ref, y_fast, names, static_cast<double>(k) + 3, [&](int64_t r, int64_t j) {
      double dense = use_bias ? bias[j] : 0.0, abs_sum = std::fabs(dense);
      for (int64_t i = 0; i < k; ++i) {
        const double wv = weight(i, j);
        dense += static_cast<double>(x[r * ldx + i]) * wv;
        abs_sum += std::fabs(x[r * ldx + i] * wv);
      }
      return std::pair<double, double>(dense, abs_sum);
    });
  }
}

TEST(EncodedLinearQ4, FastMatchesReferenceOverShapes) {
  ASSERT_TRUE(cpu_has_avx2_fma_f16c()) << "this test needs a CPU with AVX2, FMA and F16C";
  std::mt19937 gen(7);
  const int64_t block_sizes[] = {32, 16, 64, 256, 128};
  int case_index = 0;
  for (int64_t k : {16, 32, 40, 48, 384, 1536}) {
    for (int64_t n : {1, 7, 41, 64, 384}) {
      const int64_t bs = block_sizes[(case_index / 5 + case_index % 5) % 5];  // each n meets every size
      const bool zps = case_index % 2 == 0;
      ++case_index;
      Q4Case w(k, n, bs, zps, gen);
      auto ref = encoded_linear_q4(w.view(), Implementation::reference);
      std::vector<std::unique_ptr<EncodedLinear>> fast;
      std::vector<std::string> names;
      for (const std::string& kernel : fast_kernels()) {
        fast.push_back(encoded_linear_q4_kernel(w.view(), kernel));
        names.push_back(fast.back()->name());
        EXPECT_EQ(fast.back()->owned_bytes(), 0u);
      }
      const std::string what = " block=" + std::to_string(bs) + " zp=" + std::to_string(zps);
      check_row_counts(*ref, fast, names, k, n, what, gen, [&](int64_t i, int64_t j) { return w.weight(i, j); });
    }
  }
}

// Random finite binary16 values spread over many exponents (including subnormals).
std::vector<uint16_t> random_halves(std::size_t n, std::mt19937& gen) {
  std::uniform_int_distribution<int> mantissa(0, 1023), exponent(0, 17), sign(0, 1);
  std::vector<uint16_t> h(n);
  for (uint16_t& v : h)
    v = static_cast<uint16_t>((sign(gen) << 15) | (exponent(gen) << 10) | mantissa(gen));  // |w| < 8
  return h;
}

TEST(EncodedLinearF16, FastMatchesReferenceOverShapes) {
  ASSERT_TRUE(cpu_has_avx2_fma_f16c()) << "this test needs a CPU with AVX2, FMA and F16C";
  std::mt19937 gen(11);
  for (int64_t k : {16, 32, 40, 48, 384, 1536}) {
    for (int64_t n : {1, 7, 64, 384, 41}) {
      const std::vector<uint16_t> halves = random_halves(k * n, gen);
      OddBytes data(k * n * 2);
      std::memcpy(data.data(), halves.data(), halves.size() * 2);
      const F16WeightsView view{.data = data.data(), .k = k, .n = n};
      auto ref = encoded_linear_f16(view, Implementation::reference);
      std::vector<std::unique_ptr<EncodedLinear>> fast;
      std::vector<std::string> names;
      for (const std::string& kernel : fast_kernels()) {
        fast.push_back(encoded_linear_f16_kernel(view, kernel));
        names.push_back(fast.back()->name());
      }
      check_row_counts(*ref, fast, names, k, n, "", gen,
                       [&](int64_t i, int64_t j) { return double(half_to_float(halves[i * n + j])); });
    }
  }
}

// ---- errors and trivia ------------------------------------------------------------------------------

template <typename F>
void expect_invalid(F&& f, const std::string& field) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one naming " << field;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << e.what();
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << "message: " << e.what();
  }
}

TEST(EncodedLinearQ4, RejectsBadViews) {
  const uint8_t packed[64] = {};
  const float scales[4] = {};
  const BlockQ4WeightsView good{.packed = packed, .scales = scales, .k = 32, .n = 2, .block_size = 16};
  for (int64_t bs : {0, 8, 24, 48, -16}) {
    BlockQ4WeightsView w = good;
    w.block_size = bs;
    expect_invalid([&] { encoded_linear_q4(w, Implementation::fast); }, "block_size");
  }
  for (Implementation impl : {Implementation::reference, Implementation::fast}) {
    BlockQ4WeightsView w = good;
    w.packed = nullptr;
    expect_invalid([&] { encoded_linear_q4(w, impl); }, "packed");
    w = good;
    w.scales = nullptr;
    expect_invalid([&] { encoded_linear_q4(w, impl); }, "scales");
    w = good;
    w.k = 0;
    expect_invalid([&] { encoded_linear_q4(w, impl); }, "field k");
    w = good;
    w.n = -3;
    expect_invalid([&] { encoded_linear_q4(w, impl); }, "field n");
  }
}

TEST(EncodedLinearF16, RejectsBadViews) {
  const uint16_t data[4] = {};
  for (Implementation impl : {Implementation::reference, Implementation::fast}) {
    expect_invalid([&] { encoded_linear_f16({.data = nullptr, .k = 2, .n = 2}, impl); }, "data");
    expect_invalid([&] { encoded_linear_f16({.data = data, .k = 0, .n = 2}, impl); }, "field k");
    expect_invalid([&] { encoded_linear_f16({.data = data, .k = 2, .n = -1}, impl); }, "field n");
  }
}

TEST(EncodedLinearQ4F16, RunArgumentsAndTrivia) {
  const uint8_t packed[32] = {};
  const float scales[4] = {};
  const uint16_t halves[64] = {};
  const float x[64] = {};
  float y[64] = {};
  for (Implementation impl : {Implementation::reference, Implementation::fast}) {
    std::unique_ptr<EncodedLinear> layers[2] = {
        encoded_linear_q4({.packed = packed, .scales = scales, .k = 32, .n = 2, .block_size = 32}, impl),
        encoded_linear_f16({.data = halves, .k = 32, .n = 2}, impl)};
    for (auto& layer : layers) {
      EXPECT_EQ(layer->k(), 32);
      EXPECT_EQ(layer->n(), 2);
      EXPECT_EQ(layer->owned_bytes(), 0u);
      EXPECT_EQ(layer->scratch_bytes(1000), 0u);
      const std::string kernel = impl == Implementation::fast ? expected_fast_kernel() : "ref";
      EXPECT_NE(std::string(layer->name()).find("-" + kernel), std::string::npos) << layer->name();
      layer->run(0, nullptr, 32, nullptr, 2, nullptr, nullptr);  // m = 0: nothing to do
      expect_invalid([&] { layer->run(-1, x, 32, y, 2, nullptr, nullptr); }, "m must be");
      expect_invalid([&] { layer->run(1, x, 31, y, 2, nullptr, nullptr); }, "ldx");
      expect_invalid([&] { layer->run(1, x, 32, y, 1, nullptr, nullptr); }, "ldy");
      expect_invalid([&] { layer->run(1, nullptr, 32, y, 2, nullptr, nullptr); }, "x is null");
      expect_invalid([&] { layer->run(1, x, 32, nullptr, 2, nullptr, nullptr); }, "y is null");
    }
  }
}

TEST(EncodedLinearQ4F16, KernelChoice) {
  const uint8_t packed[32] = {};
  const float scales[2] = {};
  const uint16_t halves[64] = {};
  const BlockQ4WeightsView q4{.packed = packed, .scales = scales, .k = 32, .n = 2, .block_size = 32};
  const F16WeightsView f16{.data = halves, .k = 32, .n = 2};
  const std::string best = expected_fast_kernel();
  if (!std::getenv("LEANEMBED_ISA")) {
    EXPECT_EQ(best, cpu_has_avx512f() ? "avx512" : cpu_has_avx2_fma_f16c() ? "avx2" : "ref");
  }
  EXPECT_EQ(encoded_linear_q4(q4, Implementation::fast)->name(), "q4-" + best);
  EXPECT_EQ(encoded_linear_f16(f16, Implementation::fast)->name(), "f16-" + best);
  EXPECT_STREQ(encoded_linear_q4(q4, Implementation::reference)->name(), "q4-ref");
  // LEANEMBED_ISA=ref / kernels_force_isa("ref") makes "fast" layers made afterwards run the reference.
  ASSERT_TRUE(kernels_force_isa("ref"));
  EXPECT_STREQ(encoded_linear_q4(q4, Implementation::fast)->name(), "q4-ref");
  EXPECT_STREQ(encoded_linear_f16(f16, Implementation::fast)->name(), "f16-ref");
  ASSERT_TRUE(kernels_force_isa("auto"));
  EXPECT_STREQ(encoded_linear_q4_kernel(q4, "ref")->name(), "q4-ref");
  expect_invalid([&] { encoded_linear_q4_kernel(q4, "sse9"); }, "sse9");
  expect_invalid([&] { encoded_linear_f16_kernel(f16, "sse9"); }, "sse9");
}

}  // namespace
}  // namespace leanembed::kernels
