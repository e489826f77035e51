// int8 encoded linear layers: the reference against hand-computed values (rounding half to even,
// zero-point saturation, one-signed and all-zero rows, per-tensor and per-column scales and zero
// points, int8 and uint8 weights, strided rows); the oneDNN layer against the reference over a
// table of shapes with weights at odd addresses; the split-weights variant used on CPUs without
// VNNI; errors; owned and scratch bytes. Scratch is allocated with exactly scratch_bytes(m) bytes
// so an overrun shows under AddressSanitizer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "kernels/encoded_linear.h"
#include "kernels/encoded_linear_int8_internal.h"
#include "kernels/kernels.h"
#include "kernels/threads.h"
#include "leanembed/error.h"

namespace leanembed::kernels {
namespace {

// Bytes placed at an odd address inside their own buffer, so views never see an aligned pointer.
class OddBytes {
 public:
  OddBytes() = default;
  explicit OddBytes(std::size_t n, std::size_t offset = 1) : storage_(n + offset), offset_(offset) {}
  template <class T>
  static OddBytes of(const std::vector<T>& values, std::size_t offset = 1) {
    OddBytes b(values.size() * sizeof(T), offset);
    if (!values.empty()) std::memcpy(b.data(), values.data(), values.size() * sizeof(T));
    return b;
  }
  unsigned char* data() { return storage_.data() + offset_; }

 private:
  std::vector<unsigned char> storage_;
  std::size_t offset_ = 0;
};

// A 64-byte aligned buffer of exactly `bytes` bytes (none for 0).
struct Scratch {
  explicit Scratch(std::size_t bytes) : bytes(bytes) {
    if (bytes) ptr = ::operator new(bytes, std::align_val_t(64));
  }
  ~Scratch() {
    if (ptr) ::operator delete(ptr, std::align_val_t(64));
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  std::size_t bytes = 0;
  void* ptr = nullptr;
};

void run_exact(EncodedLinear& layer, int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy,
               const float* bias) {
  Scratch scratch(layer.scratch_bytes(m));
  layer.run(m, x, ldx, y, ldy, bias, scratch.ptr);
}

std::mt19937& gen_for_rows() {
  static std::mt19937 gen(11);
  return gen;
}

// Owns the bytes an Int8WeightsView points at (each array at an odd address).
struct Weights {
  OddBytes data, scales, zero_points;
  Int8WeightsView view;

  Weights(int64_t k, int64_t n, bool is_signed, const std::vector<uint8_t>& w, const std::vector<float>& s,
          const std::vector<uint8_t>& zp) {
    data = OddBytes::of(w);
    scales = OddBytes::of(s, 3);
    view.data = data.data();
    view.is_signed = is_signed;
    view.k = k;
    view.n = n;
    view.scales = scales.data();
    view.scale_count = int64_t(s.size());
    if (!zp.empty()) {
      zero_points = OddBytes::of(zp);
      view.zero_points = zero_points.data();
    }
    view.zero_point_count = int64_t(zp.size());
  }
  Weights(Weights&&) = default;  // the buffers move with their heap storage, so the view stays valid
  Weights(const Weights&) = delete;
};

std::vector<uint8_t> bytes_of(const std::vector<int>& v) {
  std::vector<uint8_t> b;
  for (int x : v) b.push_back(uint8_t(x));  // int8 values stored as their two's-complement byte
  return b;
}

std::vector<float> run_both_ways(const Int8WeightsView& w, Implementation impl, int64_t m, const std::vector<float>& x,
                                 const float* bias) {
  auto layer = encoded_linear_int8(w, impl);
  std::vector<float> y(std::size_t(m * w.n), -1.0f);
  run_exact(*layer, m, x.data(), w.k, y.data(), w.n, bias);
  return y;
}

// Identity weights (uint8, zero point 0, scale 1): y[r, j] = scale_x[r] * (q[r, j] - zp_x[r]).
// Every row below has a range of exactly 255, so scale_x = 1 and y shows the rounded values.
TEST(EncodedLinearInt8Reference, RoundsHalfToEvenAndSaturates) {
  const int64_t k = 8;
  std::vector<uint8_t> identity(k * k, 0);
  for (int64_t i = 0; i < k; ++i) identity[i * k + i] = 1;
  Weights w(k, k, false, identity, {1.0f}, {});
  const std::vector<float> x = {
      // positive only: min 0, max 255, zero point 0
      0.5f, 1.5f, 2.5f, 3.5f, 255.0f, 254.5f, 100.49f, 7.51f,
      // both signs: min -51, max 204, zero point 51
      -51.0f, -0.5f, -1.5f, 0.5f, 204.0f, 3.5f, -2.5f, 10.0f,
      // zero point round(3.5) = 4 (even); 251.5 -> 252 + 4 = 256 saturates to 255 -> 251
      -3.5f, 251.5f, 0.0f, 1.0f, -1.0f, 2.5f, 0.5f, -0.5f,
      // negative only: max 0, zero point 255
      -255.0f, -0.5f, -1.5f, -2.5f, -100.0f, -7.5f, -3.0f, -254.5f,
      // all zero: scale 0
      0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  const std::vector<float> expected = {0, 2, 2, 4, 255, 254, 100, 8,           //
                                       -51, 0, -2, 0, 204, 4, -2, 10,          //
                                       -4, 251, 0, 1, -1, 2, 0, 0,             //
                                       -255, 0, -2, -2, -100, -8, -3, -254,    //
                                       0, 0, 0, 0, 0, 0, 0, 0};
  for (auto impl : {Implementation::reference, Implementation::fast}) {
    const std::vector<float> y = run_both_ways(w.view, impl, 5, x, nullptr);
    for (std::size_t e = 0; e < expected.size(); ++e)
      EXPECT_EQ(y[e], expected[e]) << "row " << e / k << " column " << e % k << (impl == Implementation::fast ? " fast" : " ref");
  }
}

TEST(EncodedLinearInt8Reference, RowParameters) {
  // Zero point round-half-even: -min / scale = 3.5 -> 4, 2.5 -> 2.
  EXPECT_EQ(int8_row_params(-3.5f, 251.5f).zero_point, 4);
  EXPECT_EQ(int8_row_params(-2.5f, 252.5f).zero_point, 2);
  EXPECT_EQ(int8_row_params(-2.5f, 252.5f).scale, 1.0f);
  EXPECT_EQ(int8_row_params(0.0f, 0.0f).scale, 0.0f);
  EXPECT_EQ(int8_row_params(0.0f, 0.0f).zero_point, 0);
  EXPECT_EQ(int8_row_params(-10.0f, 0.0f).zero_point, 255);
  EXPECT_EQ(int8_row_params(0.0f, 10.0f).zero_point, 0);
  uint8_t q[3];
  const float x[3] = {-3.5f, 251.5f, 2.5f};
  const Int8RowQuant p = int8_quantize_row_scalar(x, 3, q);
  EXPECT_EQ(q[0], 0);
  EXPECT_EQ(q[1], 255);
  EXPECT_EQ(q[2], 6);
  EXPECT_EQ(p.sum, 261);
}

// Rounding of every quarter in [-128, 127] (scale 1, zero point 128) against std::nearbyint in the
// default rounding mode (half to even), for the scalar and (if the CPU has it) AVX-512 quantizers;
// then both quantizers over random rows must give identical bytes, scales, zero points and sums.
TEST(EncodedLinearInt8Reference, QuantizersRoundLikeNearbyint) {
  std::vector<float> x;
  for (int i = -512; i <= 508; ++i) x.push_back(float(i) / 4.0f);
  x.push_back(-128.0f);
  x.push_back(127.0f);  // range 255 exactly
  std::vector<uint8_t> q(x.size()), q_vec(x.size());
  const Int8RowQuant p = int8_quantize_row_scalar(x.data(), int64_t(x.size()), q.data());
  ASSERT_EQ(p.scale, 1.0f);
  ASSERT_EQ(p.zero_point, 128);
  int64_t sum = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float expected = std::min(255.0f, std::max(0.0f, std::nearbyint(x[i]) + 128.0f));
    EXPECT_EQ(float(q[i]), expected) << "x = " << x[i];
    sum += q[i];
  }
  EXPECT_EQ(p.sum, sum);
  if (!cpu_has_avx512_int8()) GTEST_SKIP() << "no AVX-512 on this CPU: the scalar quantizer alone was checked";
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (int64_t k : {1, 15, 16, 17, 37, 384, 1027}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> row(std::size_t(k + 1));
      const float magnitude = std::pow(10.0f, float(trial % 9 - 4));
      for (auto& v : row) v = value(gen) * magnitude;
      if (trial % 4 == 1)
        for (auto& v : row) v = std::fabs(v);
      if (trial % 4 == 2)
        for (auto& v : row) v = std::round(v * 8.0f) / 8.0f;  // many exact halves after scaling
      std::vector<uint8_t> a(std::size_t(k) + 1, 0xAB), b(std::size_t(k) + 1, 0xAB);
      const Int8RowQuant pa = int8_quantize_row_scalar(row.data() + 1, k, a.data());  // odd float offset
      const Int8RowQuant pb = int8_quantize_row_avx512(row.data() + 1, k, b.data());
      EXPECT_EQ(pa.scale, pb.scale);
      EXPECT_EQ(pa.zero_point, pb.zero_point);
      EXPECT_EQ(pa.sum, pb.sum);
      EXPECT_EQ(a, b) << "k = " << k << " trial " << trial;
      EXPECT_EQ(b[std::size_t(k)], 0xAB) << "wrote past k";
    }
  }
}

// x row: min 0, max 255 -> scale 1, zero point 0, q = x.
const std::vector<float> kRowX = {1.0f, 2.0f, 3.0f, 255.0f};

TEST(EncodedLinearInt8Reference, Uint8PerColumnScalesAndZeroPoints) {
  Weights w(4, 2, false, {10, 200, 20, 100, 30, 0, 40, 255}, {0.5f, 0.25f}, {10, 100});
  const float bias[2] = {1.0f, -2.0f};
  for (auto impl : {Implementation::reference, Implementation::fast}) {
    // 0.5 * (1*0 + 2*10 + 3*20 + 255*30) = 3865; 0.25 * (1*100 + 2*0 + 3*(-100) + 255*155) = 9831.25
    std::vector<float> y = run_both_ways(w.view, impl, 1, kRowX, nullptr);
    EXPECT_EQ(y[0], 3865.0f);
    EXPECT_EQ(y[1], 9831.25f);
    y = run_both_ways(w.view, impl, 1, kRowX, bias);
    EXPECT_EQ(y[0], 3866.0f);
    EXPECT_EQ(y[1], 9829.25f);
  }
}

TEST(EncodedLinearInt8Reference, Uint8PerTensorScaleAndZeroPoint) {
  Weights w(4, 2, false, {10, 200, 20, 100, 30, 0, 40, 255}, {0.5f}, {10});
  for (auto impl : {Implementation::reference, Implementation::fast}) {
    // column 1: 0.5 * (1*190 + 2*90 + 3*(-10) + 255*245) = 31407.5
    const std::vector<float> y = run_both_ways(w.view, impl, 1, kRowX, nullptr);
    EXPECT_EQ(y[0], 3865.0f);
    EXPECT_EQ(y[1], 31407.5f);
  }
}

TEST(EncodedLinearInt8Reference, Uint8WithoutZeroPoints) {
  Weights w(4, 2, false, {10, 200, 20, 100, 30, 0, 40, 255}, {0.5f, 0.25f}, {});
  for (auto impl : {Implementation::reference, Implementation::fast}) {
    // 0.5 * (10 + 40 + 90 + 10200) = 5170; 0.25 * (200 + 200 + 0 + 65025) = 16356.25
    const std::vector<float> y = run_both_ways(w.view, impl, 1, kRowX, nullptr);
    EXPECT_EQ(y[0], 5170.0f);
    EXPECT_EQ(y[1], 16356.25f);
  }
}

TEST(EncodedLinearInt8Reference, Int8WeightsWithAndWithoutZeroPoints) {
  const std::vector<uint8_t> data = bytes_of({-10, 127, 20, -128, -30, 0, 40, -1});
  Weights with(4, 2, true, data, {1.0f, 2.0f}, bytes_of({-10, 0}));
  Weights without(4, 2, true, data, {1.0f, 2.0f}, {});
  for (auto impl : {Implementation::reference, Implementation::fast}) {
    // (1*0 + 2*30 + 3*(-20) + 255*50) = 12750; 2 * (127 - 256 + 0 - 255) = -768
    std::vector<float> y = run_both_ways(with.view, impl, 1, kRowX, nullptr);
    EXPECT_EQ(y[0], 12750.0f);
    EXPECT_EQ(y[1], -768.0f);
    // -10 + 40 - 90 + 10200 = 10140
    y = run_both_ways(without.view, impl, 1, kRowX, nullptr);
    EXPECT_EQ(y[0], 10140.0f);
    EXPECT_EQ(y[1], -768.0f);
  }
}

TEST(EncodedLinearInt8Reference, StridedRowsLeaveThePaddingAlone) {
  Weights w(4, 2, false, {10, 200, 20, 100, 30, 0, 40, 255}, {0.5f, 0.25f}, {10, 100});
  const int64_t ldx = 7, ldy = 5;
  std::vector<float> x(2 * ldx, 1e30f);  // padding that would dominate the range if it were read
  for (int r = 0; r < 2; ++r)
    for (int i = 0; i < 4; ++i) x[r * ldx + i] = kRowX[i] * float(r + 1);  // row 1 = 2x row 0
  for (auto impl : {Implementation::reference, Implementation::fast}) {
    auto layer = encoded_linear_int8(w.view, impl);
    std::vector<float> y(2 * ldy, 42.0f);
    run_exact(*layer, 2, x.data(), ldx, y.data(), ldy, nullptr);
    EXPECT_EQ(y[0], 3865.0f);
    EXPECT_EQ(y[1], 9831.25f);
    // Row 1: range [0, 510], scale 2, q = x / 2 = row 0: y doubles.
    EXPECT_EQ(y[ldy + 0], 7730.0f);
    EXPECT_EQ(y[ldy + 1], 19662.5f);
    for (int64_t j = 2; j < ldy; ++j) {
      EXPECT_EQ(y[j], 42.0f);
      EXPECT_EQ(y[ldy + j], 42.0f);
    }
  }
}

// ---- fast vs reference --------------------------------------------------------------------------

struct Case {
  int64_t m, k, n;
  bool is_signed;
  int scales;       // 1 = per tensor, else per column
  int zero_points;  // 0 = none, 1 = per tensor, else per column
  bool bias;
  int64_t pad_x, pad_y;  // extra floats per row
};

std::string describe(const Case& c) {
  return "m=" + std::to_string(c.m) + " k=" + std::to_string(c.k) + " n=" + std::to_string(c.n) +
         (c.is_signed ? " int8" : " uint8") + " scales=" + std::to_string(c.scales) +
         " zps=" + std::to_string(c.zero_points) + " bias=" + std::to_string(c.bias) +
         " pads=" + std::to_string(c.pad_x) + "," + std::to_string(c.pad_y);
}

// Random weights and activations for a case; activations spread over several magnitudes and signs
// (some rows positive only, some negative only, one all zero).
struct Problem {
  Weights w;
  std::vector<float> x, bias;
  int64_t ldx, ldy;

  static Problem make(const Case& c, uint32_t seed) {
    std::mt19937 gen(seed);
    std::vector<uint8_t> data(static_cast<std::size_t>(c.k * c.n));
    for (auto& b : data) b = uint8_t(gen());
    const int64_t scale_count = c.scales == 1 ? 1 : c.n;
    std::vector<float> scales(static_cast<std::size_t>(scale_count));
    std::uniform_real_distribution<float> unit(0.001f, 0.05f);
    for (auto& s : scales) s = unit(gen);
    std::vector<uint8_t> zps(std::size_t(c.zero_points == 0 ? 0 : c.zero_points == 1 ? 1 : c.n));
    for (auto& z : zps) z = uint8_t(gen());
    Problem p{Weights(c.k, c.n, c.is_signed, data, scales, zps), {}, {}, c.k + c.pad_x, c.n + c.pad_y};
    p.x.assign(std::size_t(c.m * p.ldx), std::numeric_limits<float>::quiet_NaN());  // padding: NaN
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    for (int64_t r = 0; r < c.m; ++r) {
      const float magnitude = std::pow(10.0f, float(int(r % 7) - 3));
      const int kind = int(r % 5);  // 0, 1: mixed; 2: positive; 3: negative; 4: all zero (if m > 4)
      for (int64_t i = 0; i < c.k; ++i) {
        float v = value(gen) * magnitude;
        if (kind == 2) v = std::fabs(v);
        if (kind == 3) v = -std::fabs(v);
        if (kind == 4 && c.m > 4) v = 0.0f;
        p.x[r * p.ldx + i] = v;
      }
    }
    if (c.bias) {
      p.bias.resize(std::size_t(c.n));
      for (auto& b : p.bias) b = value(gen);
    }
    return p;
  }
};

// Distance in units in the last place between two finite floats of the same sign or near 0.
int64_t ulps_apart(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  if (ia < 0) ia = std::numeric_limits<int32_t>::min() - ia;
  if (ib < 0) ib = std::numeric_limits<int32_t>::min() - ib;
  return std::llabs(int64_t(ia) - int64_t(ib));
}

// Runs the case through `fast` and the reference; they must agree to a few ulps (the integer sums
// are exact; only the last float line may round differently). Returns the largest distance seen.
int64_t expect_matches_reference(const Case& c, EncodedLinear& fast, const Problem& p) {
  auto ref = encoded_linear_int8(p.w.view, Implementation::reference);
  std::vector<float> y_ref(std::size_t(c.m * p.ldy), 7.0f), y_fast(std::size_t(c.m * p.ldy), 7.0f);
  const float* bias = c.bias ? p.bias.data() : nullptr;
  run_exact(*ref, c.m, p.x.data(), p.ldx, y_ref.data(), p.ldy, bias);
  run_exact(fast, c.m, p.x.data(), p.ldx, y_fast.data(), p.ldy, bias);
  int64_t worst = 0;
  int failures = 0;
  for (int64_t r = 0; r < c.m; ++r)
    for (int64_t j = 0; j < p.ldy; ++j) {
      const float a = y_fast[r * p.ldy + j], b = y_ref[r * p.ldy + j];
      if (j >= c.n) {  // padding untouched
        if (a != 7.0f && failures++ < 5) ADD_FAILURE() << describe(c) << ": padding written at " << r << "," << j;
        continue;
      }
      const int64_t d = ulps_apart(a, b);
      worst = std::max(worst, d);
      if (d > 4 && failures++ < 5)
        ADD_FAILURE() << describe(c) << " [" << fast.name() << "]: y[" << r << "," << j << "] fast " << a << " ref " << b
                      << " (" << d << " ulps)";
    }
  return worst;
}

std::vector<Case> shape_table() {
  std::vector<Case> cases;
  const int64_t ms[] = {1, 2, 3, 17, 64, 300};
  const int64_t ks[] = {1, 37, 384};
  const int64_t ns[] = {1, 33, 384};
  int variant = 0;
  for (int64_t m : ms)
    for (int64_t k : ks)
      for (int64_t n : ns) {
        if (m == 300 && k == 384 && n == 384) continue;  // the reference alone: ~1 s under ASan
        const int v = variant++;
        cases.push_back({m, k, n, (v & 1) != 0, (v / 2) % 2 == 0 ? 1 : 2, (v / 4) % 3, (v / 3) % 2 == 0,
                         (v % 3 == 1) ? 3 : 0, (v % 4 == 2) ? 5 : 0});
      }
  cases.push_back({130, 384, 96, false, 2, 2, true, 0, 0});  // one full 128-row chunk + a 16-row one
  cases.push_back({9, 1536, 40, true, 2, 2, true, 1, 1});
  cases.push_back({20, 100, 1536 + 7, false, 1, 1, false, 0, 2});
  return cases;
}

TEST(EncodedLinearInt8Fast, MatchesReferenceOverShapes) {
  int64_t worst = 0;
  uint32_t seed = 1;
  for (const Case& c : shape_table()) {
    Problem p = Problem::make(c, seed++);
    auto fast = encoded_linear_int8(p.w.view, Implementation::fast);
    worst = std::max(worst, expect_matches_reference(c, *fast, p));
  }
  std::printf("largest fast-vs-reference distance: %lld ulps\n", static_cast<long long>(worst));
}

// The split-weights layer (for CPUs without VNNI) with extreme values: q = 255 everywhere against
// weights of -128 (pairs of products beyond int16) and of 127.
TEST(EncodedLinearInt8Fast, SplitWeightsAndExtremeValuesMatchReference) {
  for (bool split : {false, true})
    for (bool is_signed : {true, false}) {
      const int64_t m = 20, k = 384, n = 48;
      std::vector<uint8_t> data(k * n);
      for (int64_t e = 0; e < k * n; ++e) data[e] = is_signed ? uint8_t(e % 3 == 0 ? 127 : 0x80) : uint8_t(e % 3 ? 0 : 255);
      Weights w(k, n, is_signed, data, {0.01f}, {});
      std::vector<float> x(m * k);
      for (int64_t r = 0; r < m; ++r)
        for (int64_t i = 0; i < k; ++i) x[r * k + i] = r % 2 ? 5.0f : -5.0f + float(i % 2);  // q = 255 / 0 runs
      const Case c{m, k, n, is_signed, 1, 0, false, 0, 0};
      Problem p{std::move(w), x, {}, k, n};
      auto fast = encoded_linear_int8_onednn(p.w.view, split);
      EXPECT_STREQ(fast->name(), split ? "int8-onednn-split" : "int8-onednn");
      EXPECT_LE(expect_matches_reference(c, *fast, p), 4);
    }
  // And the split layer over a few random shapes.
  uint32_t seed = 100;
  for (const Case& c : {Case{17, 37, 33, false, 2, 2, true, 1, 3}, Case{130, 384, 64, true, 2, 1, true, 0, 0}}) {
    Problem p = Problem::make(c, seed++);
    auto fast = encoded_linear_int8_onednn(p.w.view, true);
    EXPECT_LE(expect_matches_reference(c, *fast, p), 4);
  }
}

// With the row kernels forced to the reference, the fast layer uses its scalar row functions (what
// CPUs without AVX-512 run).
TEST(EncodedLinearInt8Fast, ScalarRowFunctionsMatchReference) {
  ASSERT_TRUE(kernels_force_isa("ref"));
  uint32_t seed = 200;
  for (const Case& c : {Case{17, 37, 33, false, 2, 2, true, 1, 3}, Case{130, 384, 64, true, 2, 1, true, 0, 0},
                        Case{3, 5, 1, true, 1, 0, false, 0, 0}}) {
    Problem p = Problem::make(c, seed++);
    auto fast = encoded_linear_int8(p.w.view, Implementation::fast);
    EXPECT_LE(expect_matches_reference(c, *fast, p), 4);
  }
  ASSERT_TRUE(kernels_force_isa("auto"));
}

// Int8WeightsView::input_scale: the layer on x with the per-channel scale folded into its row
// quantization equals, bit for bit, the layer without it on x already multiplied by the scale
// (what the graph's Mul computes) -- for the reference, the fast layer and its scalar row functions.
TEST(EncodedLinearInt8Fast, InputScaleEqualsScalingTheInputFirst) {
  uint32_t seed = 300;
  for (const char* isa : {"auto", "ref"}) {
    ASSERT_TRUE(kernels_force_isa(isa));
    for (const Case& c : {Case{17, 37, 33, false, 2, 2, true, 1, 3}, Case{130, 384, 64, true, 2, 1, true, 0, 0},
                          Case{3, 5, 1, true, 1, 0, false, 0, 0}, Case{64, 1536, 40, false, 2, 2, true, 0, 2}}) {
      Problem p = Problem::make(c, seed++);
      std::mt19937 gen(seed);
      std::uniform_real_distribution<float> factor(0.05f, 20.0f);
      std::vector<float> scale(std::size_t(c.k));
      for (auto& f : scale) f = factor(gen);
      std::vector<float> scaled_x = p.x;
      for (int64_t r = 0; r < c.m; ++r)
        for (int64_t i = 0; i < c.k; ++i) scaled_x[r * p.ldx + i] = p.x[r * p.ldx + i] * scale[std::size_t(i)];
      Int8WeightsView folded = p.w.view;
      folded.input_scale = scale.data();
      const float* bias = c.bias ? p.bias.data() : nullptr;
      for (auto impl : {Implementation::reference, Implementation::fast}) {
        auto plain_layer = encoded_linear_int8(p.w.view, impl);
        auto folded_layer = encoded_linear_int8(folded, impl);
        std::vector<float> want(std::size_t(c.m * p.ldy), 7.0f), got(want.size(), 7.0f);
        run_exact(*plain_layer, c.m, scaled_x.data(), p.ldx, want.data(), p.ldy, bias);
        run_exact(*folded_layer, c.m, p.x.data(), p.ldx, got.data(), p.ldy, bias);
        EXPECT_EQ(got, want) << describe(c) << " " << folded_layer->name() << " isa " << isa;
      }
    }
  }
  ASSERT_TRUE(kernels_force_isa("auto"));
  // The row functions directly, at odd float offsets: scalar and AVX-512 agree with a scale too.
  if (!cpu_has_avx512_int8()) return;
  for (int64_t k : {1, 15, 16, 17, 384, 1027}) {
    std::vector<float> row(std::size_t(k + 1)), c(std::size_t(k + 1));
    std::uniform_real_distribution<float> value(-3.0f, 3.0f), factor(0.1f, 10.0f);
    for (auto& v : row) v = value(gen_for_rows());
    for (auto& f : c) f = factor(gen_for_rows());
    std::vector<uint8_t> a(std::size_t(k) + 1, 0xAB), b(std::size_t(k) + 1, 0xAB);
    const Int8RowQuant pa = int8_quantize_row_scalar(row.data() + 1, k, a.data(), c.data() + 1);
    const Int8RowQuant pb = int8_quantize_row_avx512(row.data() + 1, k, b.data(), c.data() + 1);
    EXPECT_EQ(pa.scale, pb.scale);
    EXPECT_EQ(pa.zero_point, pb.zero_point);
    EXPECT_EQ(pa.sum, pb.sum);
    EXPECT_EQ(a, b) << "k = " << k;
    EXPECT_EQ(b[std::size_t(k)], 0xAB) << "wrote past k";
  }
}

TEST(EncodedLinearInt8Fast, NonFiniteInputsStayDefined) {
  const Case c{4, 40, 20, false, 2, 2, true, 0, 0};
  Problem p = Problem::make(c, 7);
  p.x[3] = std::numeric_limits<float>::quiet_NaN();
  p.x[40 + 5] = std::numeric_limits<float>::infinity();
  p.x[80 + 6] = -std::numeric_limits<float>::infinity();
  auto ref = encoded_linear_int8(p.w.view, Implementation::reference);
  auto fast = encoded_linear_int8(p.w.view, Implementation::fast);
  std::vector<float> y_ref(4 * 20), y_fast(4 * 20);
  run_exact(*ref, 4, p.x.data(), 40, y_ref.data(), 20, p.bias.data());
  run_exact(*fast, 4, p.x.data(), 40, y_fast.data(), 20, p.bias.data());
  for (int e = 0; e < 80; ++e) {
    if (std::isnan(y_ref[e])) {
      EXPECT_TRUE(std::isnan(y_fast[e])) << e;
    } else {
      EXPECT_EQ(y_fast[e], y_ref[e]) << e;
    }
  }
  // A NaN is skipped by the range and quantized to 0: row 0 stays finite.
  for (int j = 0; j < 20; ++j) EXPECT_TRUE(std::isfinite(y_ref[j])) << j;
}

TEST(EncodedLinearInt8Fast, FollowsTheThreadSetting) {
  const int before = threads_get();
  const Case c{64, 384, 96, true, 2, 2, true, 0, 0};
  Problem p = Problem::make(c, 11);
  auto fast = encoded_linear_int8(p.w.view, Implementation::fast);
  for (int threads : {1, 2, 1}) {
    threads_set(threads);
    EXPECT_LE(expect_matches_reference(c, *fast, p), 4) << threads << " threads";
  }
  threads_set(before);
}

// Rows split over threads (one parallel region, one-thread primitives, equal chunks) against the
// one-thread path, which runs the chunks in turn: the same bits, for row counts of one block, of
// two blocks, around a chunk's 128 rows and of many chunks, with plain and split weights, on 1, 2
// and 3 threads (3: chunks that do not divide evenly). Each thread's slot adds to the scratch.
TEST(EncodedLinearInt8Fast, RowsSplitOverThreadsGiveTheOneThreadBits) {
  const int before = threads_get();
  for (bool split : {false, true}) {
    const Case c{300, 384, 96, true, 2, 2, true, 0, 0};
    Problem p = Problem::make(c, split ? 23 : 21);
    auto layer = encoded_linear_int8_onednn(p.w.view, split);
    for (int64_t m : {int64_t{1}, int64_t{16}, int64_t{17}, int64_t{33}, int64_t{128}, int64_t{129}, int64_t{300}}) {
      std::vector<float> expected;
      for (int threads : {1, 2, 3}) {
        threads_set(threads);
        std::vector<float> y(std::size_t(m * c.n), -1.0f);
        run_exact(*layer, m, p.x.data(), p.ldx, y.data(), c.n, p.bias.data());
        if (threads == 1) {
          expected = y;
          continue;
        }
        EXPECT_TRUE(y == expected) << "m = " << m << ", " << threads << " threads, split " << split;
      }
    }
  }
  threads_set(1);
  const std::size_t one = encoded_linear_int8_onednn(Problem::make({300, 384, 96, true, 2, 2, true, 0, 0}, 3).w.view, false)
                              ->scratch_bytes(300);
  threads_set(2);
  auto two_layer = encoded_linear_int8_onednn(Problem::make({300, 384, 96, true, 2, 2, true, 0, 0}, 3).w.view, false);
  const std::size_t two_300 = two_layer->scratch_bytes(300), two_16 = two_layer->scratch_bytes(16);
  threads_set(1);
  EXPECT_GT(two_300, one);                          // a second thread's chunk results
  EXPECT_EQ(two_16, two_layer->scratch_bytes(16));  // one row block stays on one thread
  threads_set(before);
}

// ---- sizes and errors ---------------------------------------------------------------------------

TEST(EncodedLinearInt8, OwnedAndScratchBytes) {
  const int64_t k = 384, n = 96;
  Problem p = Problem::make({1, k, n, false, 2, 2, false, 0, 0}, 3);
  auto ref = encoded_linear_int8(p.w.view, Implementation::reference);
  auto fast = encoded_linear_int8(p.w.view, Implementation::fast);
  EXPECT_STREQ(ref->name(), "int8-ref");
  EXPECT_EQ(ref->k(), k);
  EXPECT_EQ(fast->n(), n);
  EXPECT_EQ(ref->owned_bytes(), 0u);
  EXPECT_EQ(ref->scratch_bytes(0), 0u);
  EXPECT_EQ(ref->scratch_bytes(1000), std::size_t(k));
  // Packed weights (at least k * n bytes) plus scale, zero point and column sum per column.
  EXPECT_GE(fast->owned_bytes(), std::size_t(k * n + 12 * n));
  EXPECT_LE(fast->owned_bytes(), std::size_t(2 * (k + 64) * (n + 64) + 12 * n));
  EXPECT_EQ(fast->scratch_bytes(0), 0u);
  for (int64_t m : {1, 16, 17, 128, 129, 2048}) {
    const std::size_t bytes = fast->scratch_bytes(m);
    const int64_t m_pad = (m + 15) / 16 * 16;
    // q for the padded rows, 3 values per row, int32 results of one chunk of <= 128 rows.
    EXPECT_GE(bytes, std::size_t(m_pad * k + 12 * m_pad + std::min<int64_t>(m_pad, 128) * n * 4)) << m;
    EXPECT_LE(bytes, std::size_t(m_pad * k + 12 * m_pad + std::min<int64_t>(m_pad, 128) * n * 4 + 512 + (1 << 20)))
        << m;
    EXPECT_GE(fast->scratch_bytes(m + 16), bytes) << m;
  }
}

template <class F>
void expect_invalid(F f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one naming " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(EncodedLinearInt8, RejectsBadViews) {
  Weights good(4, 2, false, {10, 200, 20, 100, 30, 0, 40, 255}, {0.5f, 0.25f}, {10, 100});
  for (auto impl : {Implementation::reference, Implementation::fast}) {
    auto with = [&](auto change) {
      Int8WeightsView v = good.view;
      change(v);
      return [v, impl] { encoded_linear_int8(v, impl); };
    };
    expect_invalid(with([](Int8WeightsView& v) { v.data = nullptr; }), "data");
    expect_invalid(with([](Int8WeightsView& v) { v.k = 0; }), "k x n");
    expect_invalid(with([](Int8WeightsView& v) { v.n = -1; }), "k x n");
    expect_invalid(with([](Int8WeightsView& v) { v.k = kInt8MaxK + 1; }), "k = ");
    expect_invalid(with([](Int8WeightsView& v) { v.n = std::numeric_limits<int64_t>::max() / 2; }), "overflow");
    expect_invalid(with([](Int8WeightsView& v) { v.scales = nullptr; }), "scales");
    expect_invalid(with([](Int8WeightsView& v) { v.scale_count = 3; }), "scale_count");
    expect_invalid(with([](Int8WeightsView& v) { v.scale_count = 0; }), "scale_count");
    expect_invalid(with([](Int8WeightsView& v) { v.zero_point_count = 3; }), "zero_point_count");
    expect_invalid(with([](Int8WeightsView& v) { v.zero_point_count = 0; }), "zero_point_count is 0");
    expect_invalid(with([](Int8WeightsView& v) { v.zero_points = nullptr; }), "zero_points is null");
  }
}

TEST(EncodedLinearInt8, RejectsBadRunArguments) {
  Weights w(4, 2, false, {10, 200, 20, 100, 30, 0, 40, 255}, {0.5f, 0.25f}, {10, 100});
  for (auto impl : {Implementation::reference, Implementation::fast}) {
    auto layer = encoded_linear_int8(w.view, impl);
    Scratch scratch(layer->scratch_bytes(2));
    std::vector<float> x(8, 1.0f), y(4);
    expect_invalid([&] { layer->run(-1, x.data(), 4, y.data(), 2, nullptr, scratch.ptr); }, "m must be");
    expect_invalid([&] { layer->run(2, nullptr, 4, y.data(), 2, nullptr, scratch.ptr); }, "x is null");
    expect_invalid([&] { layer->run(2, x.data(), 4, nullptr, 2, nullptr, scratch.ptr); }, "y is null");
    expect_invalid([&] { layer->run(2, x.data(), 3, y.data(), 2, nullptr, scratch.ptr); }, "ldx");
    expect_invalid([&] { layer->run(2, x.data(), 4, y.data(), 1, nullptr, scratch.ptr); }, "ldy");
    expect_invalid([&] { layer->run(2, x.data(), 4, y.data(), 2, nullptr, nullptr); }, "scratch");
    layer->run(0, nullptr, 0, nullptr, 0, nullptr, nullptr);  // nothing to do, nothing checked
  }
}

}  // namespace
}  // namespace leanembed::kernels
