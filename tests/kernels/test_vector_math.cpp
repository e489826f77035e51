// Accuracy of the vectorised erf and exp behind the AVX2 and AVX-512 row kernels (row_kernels_simd.h),
// over dense ranges, for each width this CPU runs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/row_kernels_tables.h"

namespace leanembed::kernels {
namespace {

// Every float step of `step` in [lo, hi], plus the given extra points.
std::vector<float> dense_range(float lo, float hi, float step, std::vector<float> extra = {}) {
  std::vector<float> v;
  for (double x = lo; x <= hi; x += step) v.push_back(static_cast<float>(x));
  v.insert(v.end(), extra.begin(), extra.end());
  return v;
}

// One width of row_kernels_simd.h's math.
struct Math {
  const char* isa;
  void (*erf)(const float* x, float* y, int64_t n);
  void (*exp)(const float* x, float* y, int64_t n);
};

// The widths this CPU runs (AVX2 is required: the fast path's baseline).
std::vector<Math> widths() {
  std::vector<Math> all;
  if (cpu_has_avx2_fma()) all.push_back({"avx2", erf_avx2, exp_avx2});
  if (cpu_has_avx512f()) all.push_back({"avx512", erf_avx512, exp_avx512});
  return all;
}

TEST(VectorMath, ErfMaxAbsErrorBelow1e6) {
  ASSERT_TRUE(cpu_has_avx2_fma()) << "the AVX2 math cannot run on this CPU";
  for (const Math& m : widths()) {
    SCOPED_TRACE(m.isa);
    // 400k points over [-10, 10], the range split at +-0.875 and its neighbours, tiny values.
    const float split = 0.875f;
    std::vector<float> x = dense_range(-10.0f, 10.0f, 5e-5f,
                                       {0.0f, -0.0f, split, -split, std::nextafter(split, 0.0f),
                                        std::nextafter(-split, 0.0f), 1e-30f, -1e-30f, 1e-40f, 3.9f, 4.0f, 9.9f});
    std::vector<float> y(x.size());
    m.erf(x.data(), y.data(), static_cast<int64_t>(x.size()));
    double max_abs = 0, max_rel_small = 0;
    float worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double want = std::erf(static_cast<double>(x[i]));
      const double err = std::fabs(y[i] - want);
      if (err > max_abs) max_abs = err, worst = x[i];
      // Relative error where the result is a normal float (a denormal result has fewer digits).
      if (std::fabs(want) >= std::numeric_limits<float>::min())
        max_rel_small = std::fmax(max_rel_small, err / std::fabs(want));
    }
    EXPECT_LE(max_abs, 1e-6) << "worst at x = " << worst;
    // Relative accuracy holds too (a few ulp), including near 0 where erf(x) ~ 1.128 x.
    EXPECT_LE(max_rel_small, 5e-7);
    RecordProperty(std::string("erf_max_abs_error_") + m.isa, std::to_string(max_abs));
    std::printf("erf %s: max abs error %.3g (at x = %g), max rel error %.3g over %zu points\n", m.isa, max_abs,
                worst, max_rel_small, x.size());
  }
}

TEST(VectorMath, ErfSpecialValues) {
  ASSERT_TRUE(cpu_has_avx2_fma()) << "the AVX2 math cannot run on this CPU";
  for (const Math& m : widths()) {
    SCOPED_TRACE(m.isa);
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<float> x = {inf, -inf, std::nanf(""), 0.0f, -0.0f, 7.0f, 3.0f, 5.0f};
    std::vector<float> y(x.size());
    m.erf(x.data(), y.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(y[0], 1.0f);
    EXPECT_EQ(y[1], -1.0f);
    EXPECT_TRUE(std::isnan(y[2]));
    EXPECT_EQ(y[3], 0.0f);
    EXPECT_EQ(y[4], 0.0f);
    EXPECT_EQ(y[5], 1.0f);
    EXPECT_NEAR(y[6], 0.9999779095f, 1e-7);  // erf(3)
  }
}

TEST(VectorMath, ExpRelativeError) {
  ASSERT_TRUE(cpu_has_avx2_fma()) << "the AVX2 math cannot run on this CPU";
  for (const Math& m : widths()) {
    SCOPED_TRACE(m.isa);
    std::vector<float> x = dense_range(-87.3f, 88.3f, 4e-4f, {0.0f, -0.0f, 1e-8f, -1e-8f, 0.34657359f, -0.34657359f});
    std::vector<float> y(x.size());
    m.exp(x.data(), y.data(), static_cast<int64_t>(x.size()));
    double max_rel = 0;
    float worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double want = std::exp(static_cast<double>(x[i]));
      const double rel = std::fabs(y[i] - want) / want;
      if (rel > max_rel) max_rel = rel, worst = x[i];
    }
    EXPECT_LE(max_rel, 2.5e-7) << "worst at x = " << worst;
    std::printf("exp %s: max rel error %.3g (at x = %g) over %zu points\n", m.isa, max_rel, worst, x.size());
  }
}

TEST(VectorMath, ExpLimits) {
  ASSERT_TRUE(cpu_has_avx2_fma()) << "the AVX2 math cannot run on this CPU";
  for (const Math& m : widths()) {
    SCOPED_TRACE(m.isa);
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<float> x = {-inf, -100.0f, -87.4f, 89.0f, inf, 0.0f};
    std::vector<float> y(x.size());
    m.exp(x.data(), y.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_EQ(y[1], 0.0f);
    EXPECT_EQ(y[2], 0.0f);
    EXPECT_EQ(y[3], inf);
    EXPECT_EQ(y[4], inf);
    EXPECT_EQ(y[5], 1.0f);
  }
}

}  // namespace
}  // namespace leanembed::kernels
