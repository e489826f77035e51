// Row kernels: the reference table against hand-checked values, every faster table against the
// reference over a table of shapes, and the start-up ISA choice.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/dispatch.h"
#include "kernels/row_kernels_tables.h"
#include "leanembed/error.h"

namespace leanembed::kernels {
namespace {

const RowKernels& ref() { return row_kernels_reference(); }

// ---- reference against hand-checked values ---------------------------------------------------------

TEST(RowKernelsReference, LayerNormOfOneTwoThree) {
  // mean 2, variance 2/3: (v - 2) / sqrt(2/3) = -1.2247449, 0, 1.2247449.
  const float x[3] = {1, 2, 3}, gamma[3] = {1, 1, 1}, beta[3] = {0, 0, 0};
  float y[3];
  ref().layer_norm(1, 3, x, nullptr, nullptr, gamma, beta, 0.0f, y);
  EXPECT_NEAR(y[0], -1.2247449f, 1e-6);
  EXPECT_NEAR(y[1], 0.0f, 1e-7);
  EXPECT_NEAR(y[2], 1.2247449f, 1e-6);
}

TEST(RowKernelsReference, LayerNormWithResidualBiasGammaBetaEpsAndAliasing) {
  // x + residual + bias = [1, 2, 3] again; gamma 2, beta 1; eps 1/3 makes var + eps = 1 exactly.
  float x[3] = {0, 0, 0};
  const float residual[3] = {1, 1, 1}, bias[3] = {0, 1, 2}, gamma[3] = {2, 2, 2}, beta[3] = {1, 1, 1};
  ref().layer_norm(1, 3, x, residual, bias, gamma, beta, 1.0f / 3.0f, x);  // y aliases x
  EXPECT_NEAR(x[0], 2 * -1.0f + 1, 1e-6);
  EXPECT_NEAR(x[1], 1.0f, 1e-6);
  EXPECT_NEAR(x[2], 2 * 1.0f + 1, 1e-6);
}

TEST(RowKernelsReference, LayerNormRowsAreIndependent) {
  const float x[6] = {1, 2, 3, 10, 10, 40}, gamma[3] = {1, 1, 1}, beta[3] = {0, 0, 0};
  float y[6];
  ref().layer_norm(2, 3, x, nullptr, nullptr, gamma, beta, 0.0f, y);
  // Row 2: mean 20, deviations -10, -10, 20, variance 200.
  EXPECT_NEAR(y[3], -10 / std::sqrt(200.0f), 1e-6);
  EXPECT_NEAR(y[5], 20 / std::sqrt(200.0f), 1e-6);
  EXPECT_NEAR(y[0], -1.2247449f, 1e-6);
}

TEST(RowKernelsReference, GeluErfValues) {
  // GELU(v) = v * Phi(v); Phi(1) = 0.8413447460685429, Phi(2) = 0.9772498680518208.
  float x[2 * 5] = {0, 1, -1, 2, -3, /* padding */ 7, 7, 7, 7, 7};
  ref().bias_gelu_erf(1, 5, x, 10, nullptr);
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_NEAR(x[1], 0.8413447f, 1e-7);
  EXPECT_NEAR(x[2], -(1 - 0.8413447f), 1e-7);
  EXPECT_NEAR(x[3], 2 * 0.97724987f, 1e-6);
  EXPECT_NEAR(x[4], -3 * 0.0013498980f, 1e-8);  // Phi(-3) = 0.0013498980316301
  for (int i = 5; i < 10; ++i) EXPECT_EQ(x[i], 7.0f) << "column " << i << " is past cols";

  float b[2] = {0.5f, 0.5f};
  const float bias[2] = {0.5f, -2.5f};  // v = 1 and -2
  ref().bias_gelu_erf(1, 2, b, 2, bias);
  EXPECT_NEAR(b[0], 0.8413447f, 1e-7);
  EXPECT_NEAR(b[1], -2 * (1 - 0.97724987f), 1e-7);
}

TEST(RowKernelsReference, BiasAddWithStride) {
  float x[2 * 4] = {1, 2, 3, 100, 4, 5, 6, 200};
  const float bias[3] = {10, 20, 30};
  ref().bias_add(2, 3, x, 4, bias);
  const float want[8] = {11, 22, 33, 100, 14, 25, 36, 200};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(x[i], want[i]) << i;
}

TEST(RowKernelsReference, SoftmaxValues) {
  float x[3] = {1, 2, 3};
  ref().softmax(1, 3, x, 3, 1.0f, nullptr);
  // e^-2, e^-1, 1 over their sum 1.5032147.
  EXPECT_NEAR(x[0], 0.09003057f, 1e-7);
  EXPECT_NEAR(x[1], 0.24472847f, 1e-7);
  EXPECT_NEAR(x[2], 0.66524096f, 1e-7);

  // Scale 2 and a mask hiding the last column: softmax([2, 4]) = [1, e^2] / (1 + e^2).
  float y[3] = {1, 2, 3};
  const float mask[3] = {0, 0, -INFINITY};
  ref().softmax(1, 3, y, 3, 2.0f, mask);
  EXPECT_NEAR(y[0], 0.11920292f, 1e-7);
  EXPECT_NEAR(y[1], 0.88079708f, 1e-7);
  EXPECT_EQ(y[2], 0.0f);
}

TEST(RowKernelsReference, SoftmaxIsShiftInvariantForLargeValues) {
  float x[2] = {1000, 1001};  // would overflow without the max subtraction
  ref().softmax(1, 2, x, 2, 1.0f, nullptr);
  EXPECT_NEAR(x[0], 0.26894142f, 1e-7);
  EXPECT_NEAR(x[1], 0.73105858f, 1e-7);
}

// ---- fast tables against the reference ------------------------------------------------------------

// Tables other than the reference that this CPU runs.
std::vector<const RowKernels*> fast_tables() {
  std::vector<const RowKernels*> tables;
  if (cpu_has_avx2_fma()) tables.push_back(&row_kernels_avx2());
  if (cpu_has_avx512f()) tables.push_back(&row_kernels_avx512());
  return tables;
}

const int64_t kRows[] = {1, 2, 3, 17, 65};
const int64_t kCols[] = {1, 7, 8, 31, 32, 33, 384, 1536};

std::vector<float> random_values(std::size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// |got - want| <= atol + rtol * |want| element by element (over rows x cols of a matrix with row
// stride ld); padding columns [cols, ld) must be unchanged from `padding`.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, int64_t rows, int64_t cols,
                  int64_t ld, double rtol, double atol, const std::string& what) {
  int failures = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < ld; ++c) {
      const float g = got[r * ld + c], w = want[r * ld + c];
      const bool ok = c >= cols ? g == w : std::fabs(double(g) - w) <= atol + rtol * std::fabs(double(w));
      if (!ok && failures++ < 5)
        ADD_FAILURE() << what << " row " << r << " col " << c << (c >= cols ? " (padding)" : "") << ": got " << g
                      << ", want " << w;
    }
}

std::string shape_name(const RowKernels& t, int64_t rows, int64_t cols, const char* extra) {
  return std::string(t.isa) + " " + std::to_string(rows) + "x" + std::to_string(cols) + " " + extra;
}

TEST(RowKernelsFast, LayerNormMatchesReference) {
  ASSERT_FALSE(fast_tables().empty()) << "no fast row-kernel table runs on this CPU";
  for (const RowKernels* t : fast_tables())
    for (int64_t rows : kRows)
      for (int64_t cols : kCols)
        for (int variant = 0; variant < 6; ++variant) {
          // variant: bit 0 residual, bit 1 bias; 4, 5 = y aliases x / residual (with both inputs).
          const bool with_residual = (variant & 1) || variant >= 4, with_bias = (variant & 2) || variant >= 4;
          const std::size_t n = rows * cols;
          // Offset values (mean ~3) so the centring matters.
          const std::vector<float> x = random_values(n, 1.0f, 5.0f, 1 + variant);
          const std::vector<float> residual = random_values(n, -1.0f, 1.0f, 2);
          const std::vector<float> bias = random_values(cols, -0.5f, 0.5f, 3);
          const std::vector<float> gamma = random_values(cols, 0.5f, 1.5f, 4);
          const std::vector<float> beta = random_values(cols, -0.2f, 0.2f, 5);
          const float* r = with_residual ? residual.data() : nullptr;
          const float* b = with_bias ? bias.data() : nullptr;

          std::vector<float> want(n), got(n);
          ref().layer_norm(rows, cols, x.data(), r, b, gamma.data(), beta.data(), 1e-5f, want.data());
          const char* how = "separate y";
          if (variant == 4) {
            got = x;
            t->layer_norm(rows, cols, got.data(), r, b, gamma.data(), beta.data(), 1e-5f, got.data());
            how = "y == x";
          } else if (variant == 5) {
            got = residual;
            t->layer_norm(rows, cols, x.data(), got.data(), b, gamma.data(), beta.data(), 1e-5f, got.data());
            how = "y == residual";
          } else {
            t->layer_norm(rows, cols, x.data(), r, b, gamma.data(), beta.data(), 1e-5f, got.data());
          }
          // Measured max difference ~5e-7 on outputs of size ~1.
          expect_close(got, want, rows, cols, cols, 2e-6, 2e-6,
                       shape_name(*t, rows, cols, "layer_norm") + " residual=" + std::to_string(with_residual) +
                           " bias=" + std::to_string(with_bias) + " " + how);
        }
}

TEST(RowKernelsFast, LayerNormOfConstantRowIsBeta) {
  for (const RowKernels* t : fast_tables()) {
    std::vector<float> x(33, 1234.5f), gamma(33, 3.0f), beta(33, 0.25f), y(33);
    t->layer_norm(1, 33, x.data(), nullptr, nullptr, gamma.data(), beta.data(), 1e-5f, y.data());
    for (float v : y) EXPECT_EQ(v, 0.25f) << t->isa;
  }
}

// Runs a strided in-place row kernel through both tables and compares, padding included.
template <class Call>
void compare_in_place(const RowKernels& t, int64_t rows, int64_t cols, int64_t ld, float lo, float hi,
                      double rtol, double atol, const std::string& what, Call call) {
  const std::vector<float> input = random_values(rows * ld, lo, hi, static_cast<uint32_t>(rows * 131 + cols));
  std::vector<float> want = input, got = input;
  call(ref(), want.data());
  call(t, got.data());
  expect_close(got, want, rows, cols, ld, rtol, atol, shape_name(t, rows, cols, what.c_str()));
}

TEST(RowKernelsFast, BiasGeluMatchesReference) {
  ASSERT_FALSE(fast_tables().empty()) << "no fast row-kernel table runs on this CPU";
  for (const RowKernels* t : fast_tables())
    for (int64_t rows : kRows)
      for (int64_t cols : kCols)
        for (int64_t pad : {0, 5})
          for (bool with_bias : {false, true}) {
            const std::vector<float> bias = random_values(cols, -1.0f, 1.0f, 9);
            const float* b = with_bias ? bias.data() : nullptr;
            // Values over [-12, 12] reach far into both tails of erf (GELU(-12) ~ -2e-32); the
            // relative tolerance holds there too (measured max ~4.5e-7).
            compare_in_place(*t, rows, cols, cols + pad, -12.0f, 12.0f, 2e-6, 1e-37,
                             "gelu pad=" + std::to_string(pad) + " bias=" + std::to_string(with_bias),
                             [&](const RowKernels& k, float* x) { k.bias_gelu_erf(rows, cols, x, cols + pad, b); });
          }
}

TEST(RowKernelsFast, BiasAddMatchesReference) {
  ASSERT_FALSE(fast_tables().empty()) << "no fast row-kernel table runs on this CPU";
  for (const RowKernels* t : fast_tables())
    for (int64_t rows : kRows)
      for (int64_t cols : kCols)
        for (int64_t pad : {0, 3}) {
          const std::vector<float> bias = random_values(cols, -1.0f, 1.0f, 11);
          compare_in_place(*t, rows, cols, cols + pad, -4.0f, 4.0f, 0.0, 0.0,
                           "bias_add pad=" + std::to_string(pad),
                           [&](const RowKernels& k, float* x) { k.bias_add(rows, cols, x, cols + pad, bias.data()); });
        }
}

TEST(RowKernelsFast, SoftmaxMatchesReference) {
  ASSERT_FALSE(fast_tables().empty()) << "no fast row-kernel table runs on this CPU";
  for (const RowKernels* t : fast_tables())
    for (int64_t rows : kRows)
      for (int64_t cols : kCols)
        for (int64_t pad : {0, 4})
          for (int masking = 0; masking < 3; ++masking) {
            // masking: 0 none, 1 a 0 / -10000 mask (BERT style), 2 a 0 / -inf mask.
            std::vector<float> mask(cols, 0.0f);
            for (int64_t c = 0; c < cols; ++c)
              if (c % 3 == 2) mask[c] = masking == 2 ? -INFINITY : -10000.0f;
            const float* m = masking ? mask.data() : nullptr;
            // Measured max relative difference ~1e-6 (exp's ~1e-7 times the exponent's rounding).
            compare_in_place(*t, rows, cols, cols + pad, -20.0f, 20.0f, 5e-6, 1e-30,
                             "softmax pad=" + std::to_string(pad) + " mask=" + std::to_string(masking),
                             [&](const RowKernels& k, float* x) { k.softmax(rows, cols, x, cols + pad, 0.35f, m); });
          }
}

TEST(RowKernelsFast, EmptyCallsTouchNothing) {
  std::vector<const RowKernels*> tables = fast_tables();
  tables.push_back(&ref());
  for (const RowKernels* t : tables) {
    float x[4] = {1, 2, 3, 4};
    const float one[4] = {1, 1, 1, 1};
    t->bias_add(0, 4, x, 4, one);
    t->bias_gelu_erf(1, 0, x, 4, one);
    t->softmax(0, 4, x, 4, 1.0f, nullptr);
    t->layer_norm(0, 4, x, nullptr, nullptr, one, one, 1e-5f, x);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(x[i], float(i + 1)) << t->isa;
  }
}

// ---- choosing the table -----------------------------------------------------------------------------

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_, old_.c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

// The table the start-up choice gives without LEANEMBED_ISA: the widest this CPU runs.
const char* best_isa() { return cpu_has_avx512f() ? "avx512" : cpu_has_avx2_fma() ? "avx2" : "ref"; }

TEST(RowKernelsSelect, EnvironmentVariableChoosesTheTable) {
  {
    ScopedEnv env("LEANEMBED_ISA", "ref");
    EXPECT_STREQ(kernel_config_startup_choice().rows->isa, "ref");
  }
  {
    ScopedEnv env("LEANEMBED_ISA", nullptr);
    EXPECT_STREQ(kernel_config_startup_choice().rows->isa, best_isa());
  }
  {
    ScopedEnv env("LEANEMBED_ISA", "auto");
    EXPECT_STREQ(kernel_config_startup_choice().rows->isa, best_isa());
  }
  if (cpu_has_avx512f()) {
    ScopedEnv env("LEANEMBED_ISA", "avx2");
    EXPECT_STREQ(kernel_config_startup_choice().rows->isa, "avx2") << "avx2 caps the row kernels at AVX2";
  }
  {
    ScopedEnv env("LEANEMBED_ISA", "sse9");
    try {
      kernel_config_startup_choice();
      ADD_FAILURE() << "LEANEMBED_ISA=sse9 was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("sse9"), std::string::npos) << e.what();
    }
  }
}

TEST(RowKernelsSelect, ForceIsa) {
  EXPECT_TRUE(kernels_force_isa("ref"));
  EXPECT_STREQ(row_kernels().isa, "ref");
  EXPECT_FALSE(kernels_force_isa("sse9"));
  EXPECT_STREQ(row_kernels().isa, "ref") << "a failed force must not change the table";
  EXPECT_EQ(kernels_force_isa("avx2"), cpu_has_avx2_fma());
  // "auto" goes back to the start-up choice: LEANEMBED_ISA's level, else the best this CPU runs.
  EXPECT_TRUE(kernels_force_isa("auto"));
  EXPECT_STREQ(row_kernels().isa, kernel_config_startup_choice().rows->isa);
  if (!std::getenv("LEANEMBED_ISA")) {
    EXPECT_STREQ(row_kernels().isa, best_isa());
  }
}

}  // namespace
}  // namespace leanembed::kernels
