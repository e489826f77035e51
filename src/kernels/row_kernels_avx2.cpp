// Row kernels for x86-64 CPUs with AVX2 and FMA: the arithmetic of row_kernels_simd.h over 8 floats
// per vector. Compiled with -mavx2 -mfma (see CMakeLists.txt); dispatch.cpp calls into it only
// after checking the CPU and the OS.
//
// Because of those flags this file must not instantiate inline functions or templates that other
// files also instantiate (std::min, std::sqrt, ...): the linker keeps one copy of such functions,
// and if it kept this one, baseline code would run AVX2 instructions. Everything here is either in
// the anonymous namespace or an intrinsic.
//
// Partial vectors (the last cols % 8 elements of a row) go through an 8-float stack buffer rather
// than masked loads, so no instruction ever touches memory past the row.
#include <immintrin.h>

#include <cstdint>

#include "kernels/row_kernels_simd.h"
#include "kernels/row_kernels_tables.h"

namespace leanembed::kernels {
namespace {

struct Avx2 {
  using reg = __m256;
  using mask = __m256;  // all-ones lanes where true
  using dreg = __m256d;
  static constexpr int64_t kLanes = 8;

  LEANEMBED_SIMD_SAME_NAMED_OPS(_mm256, __m256)

  // Loads n < 8 floats from p; lanes n..7 are `fill`.
  static reg load_partial(const float* p, int64_t n, float fill) {
    alignas(32) float buf[kLanes];
    for (int64_t i = 0; i < kLanes; ++i) buf[i] = i < n ? p[i] : fill;
    return _mm256_load_ps(buf);
  }
  // Stores the first n < 8 lanes of v to p.
  static void store_partial(float* p, int64_t n, reg v) {
    alignas(32) float buf[kLanes];
    _mm256_store_ps(buf, v);
    for (int64_t i = 0; i < n; ++i) p[i] = buf[i];
  }

  static reg abs(reg x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
  static reg neg(reg x) { return _mm256_xor_ps(x, _mm256_set1_ps(-0.0f)); }
  static reg sign(reg x) { return _mm256_and_ps(x, _mm256_set1_ps(-0.0f)); }
  static reg or_bits(reg a, reg b) { return _mm256_or_ps(a, b); }

  static mask lt(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static mask gt(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static mask ge(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static bool any(mask m) { return _mm256_movemask_ps(m) != 0; }
  static reg select(mask m, reg if_set, reg if_clear) { return _mm256_blendv_ps(if_clear, if_set, m); }
  static reg zero_where(mask m, reg v) { return _mm256_andnot_ps(m, v); }
  static reg keep_where(mask m, reg v) { return _mm256_and_ps(m, v); }
  static mask first_lanes(int64_t n) {
    return _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
  }

  static reg round_nearest(reg x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static reg pow2(reg n) {
    const __m256i biased = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23));
  }

  static float hmax(reg v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }
  static float hsum(reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  static dreg dzero() { return _mm256_setzero_pd(); }
  // acc += the 8 floats of v, in double.
  static dreg add_widened(dreg acc, reg v) {
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  static double dsum(dreg v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
};

constexpr RowKernels kAvx2 = simd_row_kernels<Avx2>("avx2");

}  // namespace

const RowKernels& row_kernels_avx2() { return kAvx2; }

void erf_avx2(const float* x, float* y, int64_t n) {
  simd_map_array<Avx2>(x, y, n, [](__m256 v) { return simd_erf<Avx2>(v); });
}

void exp_avx2(const float* x, float* y, int64_t n) {
  simd_map_array<Avx2>(x, y, n, [](__m256 v) { return simd_exp<Avx2>(v); });
}

}  // namespace leanembed::kernels
