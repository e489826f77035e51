// AVX-512 row functions of the int8 encoded linear layer: the activation quantizer and the
// epilogue (encoded_linear_int8_internal.h). Only the functions marked LEANEMBED_AVX512 use AVX-512
// (a function-level target attribute: the file is compiled for baseline x86-64, and nothing in it
// that other files could also instantiate is built for AVX-512). Call them only when
// cpu_has_avx512_int8().
//
// Exactness: the same IEEE operations in the same order as the scalar versions — division (not a
// reciprocal), round-half-even by VRNDSCALEPS with an explicit rounding mode, max / min with the
// NaN-to-0 operand order, separate multiply and add (no FMA) — so the results are bit-identical.
#include <immintrin.h>

#include <cstdint>

#include "kernels/encoded_linear_int8_internal.h"

// GCC 12 warns that the "undefined" pass-through operand inside its own AVX-512 intrinsics
// (_mm512_roundscale_ps, _mm512_reduce_min_ps, ...) is used uninitialised: a known false positive
// (GCC bug 105593). Silenced for this file only.
#ifndef __clang__  // clang has no -Wmaybe-uninitialized and no such false positive
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define LEANEMBED_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

namespace leanembed::kernels {

namespace {

LEANEMBED_AVX512 __mmask16 tail_mask(int64_t count) {  // count in [1, 16]
  return static_cast<__mmask16>((1u << count) - 1u);
}

// q = saturate(round-half-even(v / scale) + zp) for 16 values, as int32.
LEANEMBED_AVX512 __m512i quantize16(__m512 v, __m512 scale, __m512 zp) {
  __m512 t = _mm512_div_ps(v, scale);
  t = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  t = _mm512_add_ps(t, zp);
  t = _mm512_max_ps(t, _mm512_setzero_ps());  // NaN -> 0
  t = _mm512_min_ps(t, _mm512_set1_ps(255.0f));
  return _mm512_cvttps_epi32(t);
}

}  // namespace

LEANEMBED_AVX512 Int8RowQuant int8_quantize_row_avx512(const float* x, int64_t k, uint8_t* q, const float* c) {
  // 16 values x[i..] (times c[i..]); masked lanes read as 0 (and 0 * 0 = 0).
  auto load = [x, c](int64_t i, __mmask16 m) LEANEMBED_AVX512 {
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    return c ? _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, c + i)) : v;
  };
  // Range: lanes start at 0 (the range always includes 0); min(v, acc) keeps acc when v is NaN.
  __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    const __m512 v = load(i, __mmask16(0xFFFF));
    lo = _mm512_min_ps(v, lo);
    hi = _mm512_max_ps(v, hi);
  }
  if (i < k) {
    const __m512 v = load(i, tail_mask(k - i));
    lo = _mm512_min_ps(v, lo);
    hi = _mm512_max_ps(v, hi);
  }
  Int8RowQuant p = int8_row_params(_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
  if (p.scale == 0.0f) {
    for (int64_t j = 0; j < k; ++j) q[j] = 0;
    return p;
  }

  const __m512 scale = _mm512_set1_ps(p.scale), zp = _mm512_set1_ps(static_cast<float>(p.zero_point));
  __m512i sum = _mm512_setzero_si512();
  for (i = 0; i + 16 <= k; i += 16) {
    const __m512i v = quantize16(load(i, __mmask16(0xFFFF)), scale, zp);
    sum = _mm512_add_epi32(sum, v);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtepi32_epi8(v));
  }
  if (i < k) {
    const __mmask16 m = tail_mask(k - i);
    const __m512i v = _mm512_maskz_mov_epi32(m, quantize16(load(i, m), scale, zp));
    sum = _mm512_add_epi32(sum, v);
    _mm512_mask_cvtepi32_storeu_epi8(q + i, m, v);
  }
  p.sum = _mm512_reduce_add_epi32(sum);
  return p;
}

LEANEMBED_AVX512 void int8_epilogue_row_avx512(const Int8EpilogueRow& r) {
  const __m512 scale_x = _mm512_set1_ps(r.scale_x);
  const __m512i zp_x = _mm512_set1_epi32(r.zp_x), q_sum = _mm512_set1_epi32(r.q_sum);
  for (int64_t j = 0; j < r.n; j += 16) {
    const __mmask16 m = r.n - j >= 16 ? __mmask16(0xFFFF) : tail_mask(r.n - j);
    __m512i s = _mm512_maskz_loadu_epi32(m, r.acc + j);
    if (r.acc2) s = _mm512_add_epi32(s, _mm512_maskz_loadu_epi32(m, r.acc2 + j));
    s = _mm512_sub_epi32(s, _mm512_mullo_epi32(_mm512_maskz_loadu_epi32(m, r.zp_w + j), q_sum));
    s = _mm512_sub_epi32(s, _mm512_mullo_epi32(zp_x, _mm512_maskz_loadu_epi32(m, r.col_sum + j)));
    const __m512 scale = _mm512_mul_ps(scale_x, _mm512_maskz_loadu_ps(m, r.scale_w + j));
    __m512 v = _mm512_mul_ps(scale, _mm512_cvtepi32_ps(s));
    if (r.bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, r.bias + j));
    _mm512_mask_storeu_ps(r.y + j, m, v);
  }
}

const Int8RowKernels& int8_row_kernels_avx512() {
  static constexpr Int8RowKernels table{"avx512", int8_quantize_row_avx512, int8_epilogue_row_avx512};
  return table;
}

}  // namespace leanembed::kernels
