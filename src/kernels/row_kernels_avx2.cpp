// Row kernels for x86-64 CPUs with AVX2 and FMA, 8 floats per vector. This is the only file of the
// library compiled with -mavx2 -mfma (see CMakeLists.txt); row_kernels_select.cpp calls into it only
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

#include "kernels/row_kernels_tables.h"
#include "kernels/row_parallel.h"

namespace leanembed::kernels {
namespace {

constexpr int64_t kLanes = 8;

// ---- loads, stores, reductions ----------------------------------------------------------------

// Loads n < 8 floats from p; lanes n..7 are `fill`.
inline __m256 load_partial(const float* p, int64_t n, float fill) {
  alignas(32) float buf[kLanes];
  for (int64_t i = 0; i < kLanes; ++i) buf[i] = i < n ? p[i] : fill;
  return _mm256_load_ps(buf);
}

// Stores the first n < 8 lanes of v to p.
inline void store_partial(float* p, int64_t n, __m256 v) {
  alignas(32) float buf[kLanes];
  _mm256_store_ps(buf, v);
  for (int64_t i = 0; i < n; ++i) p[i] = buf[i];
}

inline float horizontal_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline double horizontal_sum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

// acc += the 8 floats of v, in double.
inline __m256d add_widened(__m256d acc, __m256 v) {
  acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
  return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

inline __m256 abs8(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }

// ---- exp ------------------------------------------------------------------------------------------

// e^x. Relative error <= ~2e-7 for x in [-87.33, 88.37] (Cody-Waite reduction x = n ln2 + r with
// |r| <= ln2/2, degree-7 Taylor polynomial for e^r, 2^n built in the exponent field). x below
// ln(FLT_MIN) = -87.3365 gives exactly 0 (so -inf, a masked score, gives 0); x in (88.37, 88.72]
// gives e^88.37; x above ln(FLT_MAX) gives +inf.
inline __m256 exp8(__m256 x) {
  const __m256 lowest = _mm256_set1_ps(-87.3365448f);
  const __m256 highest_exact = _mm256_set1_ps(88.3762626f);  // (127.5 - 1e-6) * ln 2
  const __m256 overflow_at = _mm256_set1_ps(88.7228391f);
  const __m256 underflow = _mm256_cmp_ps(x, lowest, _CMP_LT_OQ);
  const __m256 overflow = _mm256_cmp_ps(x, overflow_at, _CMP_GT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lowest), highest_exact);

  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln 2 split so that n * ln2_hi is exact for |n| <= 128.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);

  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));

  // n is in [-126, 127] after the clamps, so 2^n is a normal float.
  const __m256i biased = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
  __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23)));
  result = _mm256_andnot_ps(underflow, result);
  return _mm256_blendv_ps(result, _mm256_set1_ps(__builtin_inff()), overflow);
}

// ---- erf ------------------------------------------------------------------------------------------
// Two ranges, split at |x| = 0.875; coefficients are least-squares fits (relative error weighted)
// made for this file:
//   |x| <  0.875: erf(x) = x * P(x^2), P of degree 6 (relative error of the fit < 1e-9);
//   |x| >= 0.875: erfc(a) = e^(-a^2) * Q(t), t = 1 / (1 + a/2), Q of degree 9 fitted on
//                 a in [0.875, 10] (relative error of the fit < 3e-9).
// Computing erfc directly (not 1 - erf) keeps GELU's left tail accurate in relative terms.

constexpr float kErfSplit = 0.875f;

// erf(x) for |x| < kErfSplit.
inline __m256 erf_small(__m256 x) {
  const __m256 u = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(8.775889803e-05f);
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-8.232853798e-04f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(5.208503130e-03f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-2.686223379e-02f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(1.128374377e-01f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-3.761263671e-01f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(1.128379167e+00f));
  return _mm256_mul_ps(x, p);
}

// erfc(a) for a >= kErfSplit, given a and a^2 as an unevaluated sum a2_hi + a2_lo (exact or
// nearly: the rounding of a^2, up to 100 * 6e-8 in the exponent, would otherwise cost up to 6e-6
// relative error). Results below ~1e-38 come out as 0. Callers clamp a to <= ~10 and keep inf out.
inline __m256 erfc_large(__m256 a, __m256 a2_hi, __m256 a2_lo) {
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f),
                                 _mm256_fmadd_ps(a, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.0f)));
  __m256 q = _mm256_set1_ps(-6.830812727e-02f);
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(3.293162318e-01f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-5.770020114e-01f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(3.766727441e-01f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-9.200455512e-02f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(2.298158246e-01f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(2.360704431e-01f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(2.834716765e-01f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(2.819933409e-01f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(3.274088352e-06f));
  // e^(-hi - lo) ~ e^(-hi) (1 - lo), |lo| <= 1e-5.
  __m256 e = exp8(_mm256_xor_ps(a2_hi, _mm256_set1_ps(-0.0f)));
  e = _mm256_fnmadd_ps(e, a2_lo, e);
  return _mm256_mul_ps(q, e);
}

inline __m256 erf8(__m256 x) {
  const __m256 a = abs8(x);
  const __m256 large = _mm256_cmp_ps(a, _mm256_set1_ps(kErfSplit), _CMP_GE_OQ);
  const __m256 small_result = erf_small(x);
  if (_mm256_movemask_ps(large) == 0) return small_result;
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  // erfc(10) = 2e-45 is already 0 in float; the clamp keeps inf out of the a^2 split (NaN stays).
  const __m256 ac = _mm256_min_ps(_mm256_set1_ps(10.0f), a);
  const __m256 a2_hi = _mm256_mul_ps(ac, ac);
  const __m256 a2_lo = _mm256_fmsub_ps(ac, ac, a2_hi);
  const __m256 large_result =
      _mm256_or_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), erfc_large(ac, a2_hi, a2_lo)), sign);
  return _mm256_blendv_ps(small_result, large_result, large);
}

// GELU(v) = 0.5 v (1 + erf(v / sqrt 2)), with 1 + erf(u) = erfc(-u) taken directly for u <= -0.875
// and as 2 - erfc(u) for u >= 0.875.
inline __m256 gelu_erf8(__m256 v) {
  const __m256 u = _mm256_mul_ps(v, _mm256_set1_ps(0.707106781186547524f));
  const __m256 a = abs8(u);
  const __m256 large = _mm256_cmp_ps(a, _mm256_set1_ps(kErfSplit), _CMP_GE_OQ);
  __m256 one_plus_erf = _mm256_add_ps(_mm256_set1_ps(1.0f), erf_small(u));
  if (_mm256_movemask_ps(large) != 0) {
    // u^2 = v^2 / 2 taken from v, not from the rounded u: v^2 = hi + lo exactly (FMA), halving
    // is exact. |v| is clamped at 14.2 (u = 10, where erfc is already 0) to keep inf out.
    const __m256 vc = _mm256_min_ps(_mm256_set1_ps(14.2f), abs8(v));
    const __m256 v2_hi = _mm256_mul_ps(vc, vc);
    const __m256 v2_lo = _mm256_fmsub_ps(vc, vc, v2_hi);
    const __m256 half = _mm256_set1_ps(0.5f);
    const __m256 ac = _mm256_min_ps(_mm256_set1_ps(10.0f), a);
    const __m256 tail = erfc_large(ac, _mm256_mul_ps(v2_hi, half), _mm256_mul_ps(v2_lo, half));
    const __m256 negative = _mm256_cmp_ps(u, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 large_value =
        _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), tail), tail, negative);
    one_plus_erf = _mm256_blendv_ps(one_plus_erf, large_value, large);
  }
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), one_plus_erf);
}

// ---- kernels --------------------------------------------------------------------------------------

void layer_norm_avx2(int64_t rows, int64_t cols, const float* x, const float* residual,
                     const float* bias, const float* gamma, const float* beta, float eps, float* y) {
  if (rows <= 0 || cols <= 0) return;
  for_each_row_block(rows, cols, [=](int64_t first, int64_t end) {
    const int64_t full = cols - cols % kLanes, tail = cols % kLanes;
    for (int64_t r = first; r < end; ++r) {
      const float* xr = x + r * cols;
      const float* rr = residual ? residual + r * cols : nullptr;
      float* yr = y + r * cols;

      // Pass 1: v = x + residual + bias, written to y (reads of x, residual at i precede the write
      // of y at i, so y may alias either), summed in double.
      auto input = [&](int64_t i, int64_t n) {
        __m256 v = n == kLanes ? _mm256_loadu_ps(xr + i) : load_partial(xr + i, n, 0.0f);
        if (rr) v = _mm256_add_ps(v, n == kLanes ? _mm256_loadu_ps(rr + i) : load_partial(rr + i, n, 0.0f));
        if (bias) v = _mm256_add_ps(v, n == kLanes ? _mm256_loadu_ps(bias + i) : load_partial(bias + i, n, 0.0f));
        return v;
      };
      __m256d sum = _mm256_setzero_pd();
      for (int64_t i = 0; i < full; i += kLanes) {
        const __m256 v = input(i, kLanes);
        _mm256_storeu_ps(yr + i, v);
        sum = add_widened(sum, v);
      }
      if (tail) {
        const __m256 v = input(full, tail);  // lanes past the row are 0
        store_partial(yr + full, tail, v);
        sum = add_widened(sum, v);
      }
      const double mean = horizontal_sum(sum) / static_cast<double>(cols);
      // The mean as an unevaluated sum of two floats, so v - mean loses nothing to its rounding.
      const float mean_hi_f = static_cast<float>(mean);
      const __m256 mean_hi = _mm256_set1_ps(mean_hi_f);
      const __m256 mean_lo = _mm256_set1_ps(static_cast<float>(mean - mean_hi_f));
      auto centered = [&](__m256 v) { return _mm256_sub_ps(_mm256_sub_ps(v, mean_hi), mean_lo); };

      // Pass 2: variance of (v - mean), four accumulators to keep the fp32 sums short.
      __m256 sq0 = _mm256_setzero_ps(), sq1 = _mm256_setzero_ps();
      __m256 sq2 = _mm256_setzero_ps(), sq3 = _mm256_setzero_ps();
      int64_t i = 0;
      for (; i + 4 * kLanes <= full; i += 4 * kLanes) {
        const __m256 d0 = centered(_mm256_loadu_ps(yr + i));
        const __m256 d1 = centered(_mm256_loadu_ps(yr + i + kLanes));
        const __m256 d2 = centered(_mm256_loadu_ps(yr + i + 2 * kLanes));
        const __m256 d3 = centered(_mm256_loadu_ps(yr + i + 3 * kLanes));
        sq0 = _mm256_fmadd_ps(d0, d0, sq0);
        sq1 = _mm256_fmadd_ps(d1, d1, sq1);
        sq2 = _mm256_fmadd_ps(d2, d2, sq2);
        sq3 = _mm256_fmadd_ps(d3, d3, sq3);
      }
      for (; i < full; i += kLanes) {
        const __m256 d = centered(_mm256_loadu_ps(yr + i));
        sq0 = _mm256_fmadd_ps(d, d, sq0);
      }
      if (tail) {
        // Lanes past the row: v = mean_hi, so d = -mean_lo; masked to 0.
        const __m256 lanes = _mm256_castsi256_ps(
            _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(tail)),
                               _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
        const __m256 d = _mm256_and_ps(lanes, centered(load_partial(yr + full, tail, mean_hi_f)));
        sq1 = _mm256_fmadd_ps(d, d, sq1);
      }
      const float var = horizontal_sum(_mm256_add_ps(_mm256_add_ps(sq0, sq1), _mm256_add_ps(sq2, sq3))) /
                        static_cast<float>(cols);
      const __m256 rstd = _mm256_set1_ps(1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(var + eps))));

      // Pass 3: y = (v - mean) * rstd * gamma + beta.
      for (int64_t j = 0; j < full; j += kLanes) {
        const __m256 d = _mm256_mul_ps(centered(_mm256_loadu_ps(yr + j)), rstd);
        _mm256_storeu_ps(yr + j, _mm256_fmadd_ps(d, _mm256_loadu_ps(gamma + j), _mm256_loadu_ps(beta + j)));
      }
      if (tail) {
        const __m256 d = _mm256_mul_ps(centered(load_partial(yr + full, tail, 0.0f)), rstd);
        store_partial(yr + full, tail,
                      _mm256_fmadd_ps(d, load_partial(gamma + full, tail, 0.0f),
                                      load_partial(beta + full, tail, 0.0f)));
      }
    }
  });
}

// x[r, :] = f(x[r, :] + bias) for an elementwise vector function f.
template <class F>
void bias_map_rows(int64_t rows, int64_t cols, float* x, int64_t ldx, const float* bias, F f) {
  if (rows <= 0 || cols <= 0) return;
  for_each_row_block(rows, cols, [=](int64_t first, int64_t end) {
    const int64_t full = cols - cols % kLanes, tail = cols % kLanes;
    for (int64_t r = first; r < end; ++r) {
      float* row = x + r * ldx;
      for (int64_t i = 0; i < full; i += kLanes) {
        __m256 v = _mm256_loadu_ps(row + i);
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
        _mm256_storeu_ps(row + i, f(v));
      }
      if (tail) {
        __m256 v = load_partial(row + full, tail, 0.0f);
        if (bias) v = _mm256_add_ps(v, load_partial(bias + full, tail, 0.0f));
        store_partial(row + full, tail, f(v));
      }
    }
  });
}

void bias_gelu_erf_avx2(int64_t rows, int64_t cols, float* x, int64_t ldx, const float* bias) {
  bias_map_rows(rows, cols, x, ldx, bias, [](__m256 v) { return gelu_erf8(v); });
}

void bias_add_avx2(int64_t rows, int64_t cols, float* x, int64_t ldx, const float* bias) {
  bias_map_rows(rows, cols, x, ldx, bias, [](__m256 v) { return v; });
}

void softmax_avx2(int64_t rows, int64_t cols, float* x, int64_t ldx, float scale, const float* mask) {
  if (rows <= 0 || cols <= 0) return;
  for_each_row_block(rows, cols, [=](int64_t first, int64_t end) {
    const int64_t full = cols - cols % kLanes, tail = cols % kLanes;
    const __m256 scale8 = _mm256_set1_ps(scale);
    const float minus_inf = -__builtin_inff();
    for (int64_t r = first; r < end; ++r) {
      float* row = x + r * ldx;
      // Pass 1: v = x * scale + mask, written back; running max (lanes past the row: -inf).
      __m256 max8 = _mm256_set1_ps(minus_inf);
      for (int64_t i = 0; i < full; i += kLanes) {
        const __m256 v = mask ? _mm256_fmadd_ps(_mm256_loadu_ps(row + i), scale8, _mm256_loadu_ps(mask + i))
                              : _mm256_mul_ps(_mm256_loadu_ps(row + i), scale8);
        _mm256_storeu_ps(row + i, v);
        max8 = _mm256_max_ps(max8, v);
      }
      if (tail) {
        const __m256 xs = load_partial(row + full, tail, 0.0f);
        const __m256 v = mask ? _mm256_fmadd_ps(xs, scale8, load_partial(mask + full, tail, 0.0f))
                              : _mm256_mul_ps(xs, scale8);
        store_partial(row + full, tail, v);
        max8 = _mm256_max_ps(max8, load_partial(row + full, tail, minus_inf));
      }
      const __m256 max = _mm256_set1_ps(horizontal_max(max8));

      // Pass 2: e = exp(v - max), written back, summed in double.
      __m256d sum = _mm256_setzero_pd();
      for (int64_t i = 0; i < full; i += kLanes) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + i), max));
        _mm256_storeu_ps(row + i, e);
        sum = add_widened(sum, e);
      }
      if (tail) {
        const __m256 e = exp8(_mm256_sub_ps(load_partial(row + full, tail, minus_inf), max));
        store_partial(row + full, tail, e);
        sum = add_widened(sum, e);
      }

      // Pass 3: normalise.
      const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / horizontal_sum(sum)));
      for (int64_t i = 0; i < full; i += kLanes)
        _mm256_storeu_ps(row + i, _mm256_mul_ps(_mm256_loadu_ps(row + i), inv));
      if (tail) store_partial(row + full, tail, _mm256_mul_ps(load_partial(row + full, tail, 0.0f), inv));
    }
  });
}

// y[i] = f(x[i]) over a flat array.
template <class F>
void map_array(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) store_partial(y + i, n - i, f(load_partial(x + i, n - i, 0.0f)));
}

const RowKernels kAvx2{"avx2", layer_norm_avx2, bias_gelu_erf_avx2, bias_add_avx2, softmax_avx2};

}  // namespace

const RowKernels& row_kernels_avx2() { return kAvx2; }

void erf_avx2(const float* x, float* y, int64_t n) {
  map_array(x, y, n, [](__m256 v) { return erf8(v); });
}

void exp_avx2(const float* x, float* y, int64_t n) {
  map_array(x, y, n, [](__m256 v) { return exp8(v); });
}

}  // namespace leanembed::kernels
