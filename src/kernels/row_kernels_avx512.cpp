// Row kernels for x86-64 CPUs with AVX-512F: the arithmetic of row_kernels_simd.h over 16 floats
// per vector. Compiled with -mavx512f added to the AVX2 flags (see CMakeLists.txt); dispatch.cpp
// calls into it only after checking the CPU and the OS (cpu_has_avx512f). The same rules as
// row_kernels_avx2.cpp: nothing here instantiates an inline function or template that another file
// also instantiates.
//
// Partial vectors (the last cols % 16 elements of a row) use masked loads and stores: masked-off
// lanes are not accessed (AVX-512 suppresses their faults), so no memory past the row is touched.
// Only AVX-512F instructions: the bitwise float operations go through the integer forms (the float
// ones need AVX-512DQ).
#include <immintrin.h>

#include <cstdint>

#include "kernels/row_kernels_simd.h"
#include "kernels/row_kernels_tables.h"

// GCC 12 warns that the "undefined" pass-through operand inside its own AVX-512 intrinsics
// (_mm512_roundscale_ps, _mm512_reduce_max_ps, ...) is used uninitialised: a known false positive
// (GCC bug 105593), as in encoded_linear_int8_avx512.cpp. Silenced for this file only.
#ifndef __clang__  // clang has no -Wmaybe-uninitialized and no such false positive
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace leanembed::kernels {
namespace {

struct Avx512 {
  using reg = __m512;
  using mask = __mmask16;  // bit i set where lane i is true
  using dreg = __m512d;
  static constexpr int64_t kLanes = 16;

  LEANEMBED_SIMD_SAME_NAMED_OPS(_mm512, __m512)

  static mask first_lanes(int64_t n) { return static_cast<mask>((1u << n) - 1u); }
  // Loads n < 16 floats from p; lanes n..15 are `fill`.
  static reg load_partial(const float* p, int64_t n, float fill) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), first_lanes(n), p);
  }
  // Stores the first n < 16 lanes of v to p.
  static void store_partial(float* p, int64_t n, reg v) { _mm512_mask_storeu_ps(p, first_lanes(n), v); }

  static reg abs(reg x) { return _mm512_abs_ps(x); }
  static reg neg(reg x) {
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN)));
  }
  static reg sign(reg x) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN)));
  }
  static reg or_bits(reg a, reg b) {
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
  }

  static mask lt(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static mask gt(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static mask ge(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static bool any(mask m) { return m != 0; }
  static reg select(mask m, reg if_set, reg if_clear) { return _mm512_mask_blend_ps(m, if_clear, if_set); }
  static reg zero_where(mask m, reg v) { return _mm512_maskz_mov_ps(static_cast<mask>(~m), v); }
  static reg keep_where(mask m, reg v) { return _mm512_maskz_mov_ps(m, v); }

  static reg round_nearest(reg x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static reg pow2(reg n) {
    const __m512i biased = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(biased, 23));
  }

  static float hmax(reg v) { return _mm512_reduce_max_ps(v); }
  static float hsum(reg v) { return _mm512_reduce_add_ps(v); }

  static dreg dzero() { return _mm512_setzero_pd(); }
  // acc += the 16 floats of v, in double.
  static dreg add_widened(dreg acc, reg v) {
    const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    return _mm512_add_pd(acc, _mm512_cvtps_pd(high));
  }
  static double dsum(dreg v) { return _mm512_reduce_add_pd(v); }
};

constexpr RowKernels kAvx512 = simd_row_kernels<Avx512>("avx512");

}  // namespace

const RowKernels& row_kernels_avx512() { return kAvx512; }

void erf_avx512(const float* x, float* y, int64_t n) {
  simd_map_array<Avx512>(x, y, n, [](__m512 v) { return simd_erf<Avx512>(v); });
}

void exp_avx512(const float* x, float* y, int64_t n) {
  simd_map_array<Avx512>(x, y, n, [](__m512 v) { return simd_exp<Avx512>(v); });
}

}  // namespace leanembed::kernels
