// The one CPU dispatch (kernels/dispatch.h): each level's tables derived again from the CPU checks,
// LEANEMBED_ISA and kernels_force_isa() switching every family together, and the attention family
// (every table this CPU runs) against a double-precision computation of softmax(scale Q K^T) V.
// These tests pass whatever LEANEMBED_ISA is set to (ctest also runs this executable under caps).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cpu_features.h"
#include "kernels/dispatch.h"
#include "kernels/encoded_linear.h"
#include "kernels/encoded_linear_decoding.h"
#include "kernels/encoded_linear_int8_internal.h"
#include "kernels/kernels.h"
#include "kernels/transpose.h"
#include "leanembed/error.h"

namespace leanembed::kernels {
namespace {

// The expected isa of each family at `level`, from the CPU checks (not from dispatch.cpp's lists).
struct Expected {
  std::string rows, attention, decoding, int8_rows, transpose;
};
Expected expected_at(Isa level) {
  const bool avx2 = level >= Isa::avx2, avx512 = level >= Isa::avx512;
  Expected e;
  e.rows = avx512 && cpu_has_avx512f() ? "avx512" : avx2 && cpu_has_avx2_fma() ? "avx2" : "ref";
  e.attention = avx512 && cpu_has_avx512f() ? "avx512" : avx2 && cpu_has_avx2_fma() ? "avx2" : "ref";
  e.decoding = avx512 && cpu_has_avx512f() ? "avx512" : avx2 && cpu_has_avx2_fma_f16c() ? "avx2" : "ref";
  e.int8_rows = avx512 && cpu_has_avx512_int8() ? "avx512" : "ref";
  e.transpose = avx2 && cpu_has_avx2_fma() ? "avx2" : "ref";
  return e;
}

void expect_config(const KernelConfig& c, Isa level, const std::string& what) {
  const Expected e = expected_at(level);
  EXPECT_EQ(c.isa, level) << what;
  EXPECT_EQ(c.rows->isa, e.rows) << what;
  EXPECT_EQ(c.attention->isa, e.attention) << what;
  EXPECT_EQ(c.decoding->isa, e.decoding) << what;
  EXPECT_EQ(c.int8_rows->isa, e.int8_rows) << what;
  EXPECT_EQ(c.transpose->isa, e.transpose) << what;
}

const Isa kLevels[] = {Isa::ref, Isa::avx2, Isa::avx512};

TEST(Dispatch, EachLevelPicksEachFamilysFastestTableAtOrBelowIt) {
  for (Isa level : kLevels) expect_config(kernel_config_for(level), level, isa_name(level));
  EXPECT_TRUE(isa_runs(Isa::ref));
  EXPECT_EQ(isa_runs(Isa::avx2), cpu_has_avx2_fma());
  EXPECT_EQ(isa_runs(Isa::avx512), cpu_has_avx512f());
  EXPECT_EQ(isa_best(), cpu_has_avx512f() ? Isa::avx512 : cpu_has_avx2_fma() ? Isa::avx2 : Isa::ref);
  EXPECT_EQ(describe(kernel_config_for(Isa::ref)), "rows ref, attention ref, q4/f16 ref, int8 rows ref, transpose ref");
}

class ScopedIsaEnv {
 public:
  explicit ScopedIsaEnv(const char* value) {
    if (const char* old = std::getenv("LEANEMBED_ISA")) had_ = true, old_ = old;
    if (value) setenv("LEANEMBED_ISA", value, 1);
    else unsetenv("LEANEMBED_ISA");
  }
  ~ScopedIsaEnv() {
    if (had_) setenv("LEANEMBED_ISA", old_.c_str(), 1);
    else unsetenv("LEANEMBED_ISA");
  }

 private:
  bool had_ = false;
  std::string old_;
};

TEST(Dispatch, LeanembedIsaCapsTheStartUpChoice) {
  for (Isa level : kLevels) {
    ScopedIsaEnv env(isa_name(level));
    if (isa_runs(level)) {
      expect_config(kernel_config_startup_choice(), level, std::string("LEANEMBED_ISA=") + isa_name(level));
      continue;
    }
    try {  // a level this CPU cannot run is refused, naming it
      kernel_config_startup_choice();
      ADD_FAILURE() << "LEANEMBED_ISA=" << isa_name(level) << " accepted on a CPU without it";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      EXPECT_NE(std::string(e.what()).find(isa_name(level)), std::string::npos) << e.what();
    }
  }
  for (const char* unset : {static_cast<const char*>(nullptr), "", "auto"}) {
    ScopedIsaEnv env(unset);
    expect_config(kernel_config_startup_choice(), isa_best(), "LEANEMBED_ISA unset, empty or auto");
  }
  ScopedIsaEnv env("AVX2");  // names are lower case
  EXPECT_THROW(kernel_config_startup_choice(), Error);
}

TEST(Dispatch, ForceIsaSwitchesEveryFamilyTogether) {
  const uint8_t packed[16] = {};
  const float scales[1] = {};
  const BlockQ4WeightsView q4{.packed = packed, .scales = scales, .k = 32, .n = 1, .block_size = 32};
  for (Isa level : kLevels) {
    ASSERT_EQ(kernels_force_isa(isa_name(level)), isa_runs(level)) << isa_name(level);
    if (!isa_runs(level)) continue;
    expect_config(kernel_config(), level, std::string("forced ") + isa_name(level));
    EXPECT_EQ(&row_kernels(), kernel_config().rows);
    EXPECT_EQ(&attention_kernels(), kernel_config().attention);
    EXPECT_EQ(&transpose_kernels(), kernel_config().transpose);
    EXPECT_EQ(encoded_linear_q4(q4, Implementation::fast)->name(), "q4-" + expected_at(level).decoding);
  }
  EXPECT_FALSE(kernels_force_isa("sse9"));
  EXPECT_TRUE(kernels_force_isa("auto"));  // back to the start-up choice
  EXPECT_EQ(&kernel_config(), &kernel_config_startup_choice());
}

// ---- attention ---------------------------------------------------------------------------------------

// softmax(scale * q_i . k_j) v_j over j, in double.
std::vector<double> attention_exact(int64_t L, int64_t d, const std::vector<float>& qkv, int64_t ld, float scale) {
  const float* q = qkv.data();
  const float* k = q + L * ld;
  const float* v = k + L * ld;
  std::vector<double> out(L * d);
  for (int64_t i = 0; i < L; ++i) {
    std::vector<double> p(L);
    double max = -1e300, sum = 0.0;
    for (int64_t j = 0; j < L; ++j) {
      double s = 0.0;
      for (int64_t c = 0; c < d; ++c) s += double(q[i * ld + c]) * k[j * ld + c];
      p[j] = s * scale;
      max = std::max(max, p[j]);
    }
    for (double& e : p) sum += (e = std::exp(e - max));
    for (int64_t c = 0; c < d; ++c) {
      double acc = 0.0;
      for (int64_t j = 0; j < L; ++j) acc += p[j] / sum * v[j * ld + c];
      out[i * d + c] = acc;
    }
  }
  return out;
}

std::vector<const AttentionKernels*> attention_tables() {
  std::vector<const AttentionKernels*> tables{&attention_kernels_reference()};
  if (cpu_has_avx2_fma()) tables.push_back(&attention_kernels_avx2());
  if (cpu_has_avx512f()) tables.push_back(&attention_kernels_avx512());
  return tables;
}

TEST(Attention, EveryTableMatchesDoublePrecision) {
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  // With the reference softmax and with the one the encoder passes (the fastest row table).
  for (const RowKernels* softmax : {&row_kernels_reference(), &row_kernels()})
    for (const AttentionKernels* table : attention_tables()) {
      for (int64_t d : {8, 32, 40}) {
        for (int64_t L : {1, 2, 3, 5, 16, 17, 33, 47, 64}) {
          const int64_t ld = 3 * d + 5;  // heads side by side in a wider row, as in the encoder
          std::vector<float> qkv(3 * L * ld);
          for (float& f : qkv) f = dist(gen) * 2.0f;
          const float scale = 1.0f / std::sqrt(static_cast<float>(d));
          const std::vector<double> want = attention_exact(L, d, qkv, ld, scale);
          std::vector<float> scratch(attention_scratch_floats(L, d) + 1, 7.0f);
          scratch.back() = -3.0f;  // the float past the stated size stays untouched
          std::vector<float> in_place = qkv;  // ctx written over Q, as the encoder does
          const float* k = qkv.data() + L * ld;
          table->head(L, d, in_place.data(), k, k + L * ld, ld, scale, in_place.data(), ld, scratch.data(), *softmax);
          EXPECT_EQ(scratch.back(), -3.0f) << table->isa << " L=" << L << " d=" << d;
          double worst = 0.0;
          for (int64_t i = 0; i < L; ++i) {
            for (int64_t c = 0; c < d; ++c) worst = std::max(worst, std::fabs(in_place[i * ld + c] - want[i * d + c]));
            for (int64_t c = d; c < ld; ++c) ASSERT_EQ(in_place[i * ld + c], qkv[i * ld + c]) << "wrote past the head";
          }
          // Values are convex combinations of |v| <= 2; fp32 sums over d and L stay far below 1e-5.
          EXPECT_LE(worst, 1e-5) << table->isa << " softmax " << softmax->isa << " L=" << L << " d=" << d;
        }
      }
    }
}

TEST(Attention, ScratchSizeAndEmptySequence) {
  EXPECT_EQ(attention_scratch_floats(1, 32), (1 + 32) * 16);
  EXPECT_EQ(attention_scratch_floats(16, 32), (16 + 32) * 16);
  EXPECT_EQ(attention_scratch_floats(17, 8), (17 + 8) * 32);
  for (const AttentionKernels* table : attention_tables())  // L = 0: nothing read or written
    table->head(0, 32, nullptr, nullptr, nullptr, 96, 1.0f, nullptr, 96, nullptr, row_kernels_reference());
}

}  // namespace
}  // namespace leanembed::kernels
