// The row kernels' arithmetic written once, over a vector type: row_kernels_avx2.cpp instantiates
// it with 8 floats per vector (AVX2 + FMA), row_kernels_avx512.cpp with 16 (AVX-512F), each file
// compiled with its ISA's flags. Internal to src/kernels.
//
// A vector type V provides (static members; `reg` the vector, `mask` what a comparison gives):
//   kLanes; set1, zero, loadu, storeu; load_partial(p, n, fill) and store_partial(p, n, v) for
//   the first n < kLanes lanes, never touching memory past them; add, sub, mul, div, min, max,
//   fmadd (a*b+c), fnmadd (c-a*b), fmsub (a*b-c); abs, neg, sign (the sign bit alone), or_bits;
//   lt, gt, ge (ordered: false for NaN), any(mask), select(mask, if_set, if_clear),
//   zero_where(mask, v) and keep_where(mask, v) (lanes set, resp. clear, become 0), first_lanes(n);
//   round_nearest; pow2(n) = 2^n for integral n in [-126, 127]; hmax, hsum (over the lanes);
//   dreg, a double accumulator: dzero, add_widened(acc, v), dsum(acc).
// LEANEMBED_SIMD_SAME_NAMED_OPS defines the members whose intrinsics differ only in their prefix.
//
// Everything here is in an anonymous namespace and calls no library function that other files
// also instantiate (no std::min, std::sqrt): each ISA file gets its own copy, built with its own
// flags, and no wider-ISA copy of a shared inline function can reach baseline code (see
// src/kernels/README.md). Both instantiations run the same operations in the same order; only the
// width, and so the order of a row's sums, differs. Tests hold each to the scalar reference.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/kernels.h"
#include "kernels/row_parallel.h"

// The members spelled alike for both widths: PREFIX is _mm256 or _mm512, REG __m256 or __m512.
#define LEANEMBED_SIMD_SAME_NAMED_OPS(PREFIX, REG)                                         \
  static REG set1(float v) { return PREFIX##_set1_ps(v); }                                 \
  static REG zero() { return PREFIX##_setzero_ps(); }                                      \
  static REG loadu(const float* p) { return PREFIX##_loadu_ps(p); }                        \
  static void storeu(float* p, REG v) { PREFIX##_storeu_ps(p, v); }                        \
  static REG add(REG a, REG b) { return PREFIX##_add_ps(a, b); }                           \
  static REG sub(REG a, REG b) { return PREFIX##_sub_ps(a, b); }                           \
  static REG mul(REG a, REG b) { return PREFIX##_mul_ps(a, b); }                           \
  static REG div(REG a, REG b) { return PREFIX##_div_ps(a, b); }                           \
  static REG min(REG a, REG b) { return PREFIX##_min_ps(a, b); }                           \
  static REG max(REG a, REG b) { return PREFIX##_max_ps(a, b); }                           \
  static REG fmadd(REG a, REG b, REG c) { return PREFIX##_fmadd_ps(a, b, c); }             \
  static REG fnmadd(REG a, REG b, REG c) { return PREFIX##_fnmadd_ps(a, b, c); }           \
  static REG fmsub(REG a, REG b, REG c) { return PREFIX##_fmsub_ps(a, b, c); }

namespace leanembed::kernels {
namespace {

// ---- exp ------------------------------------------------------------------------------------------

// e^x. Relative error <= ~2e-7 for x in [-87.33, 88.37] (Cody-Waite reduction x = n ln2 + r with
// |r| <= ln2/2, degree-7 Taylor polynomial for e^r, 2^n built in the exponent field). x below
// ln(FLT_MIN) = -87.3365 gives exactly 0 (so -inf, a masked score, gives 0); x in (88.37, 88.72]
// gives e^88.37; x above ln(FLT_MAX) gives +inf.
template <class V>
typename V::reg simd_exp(typename V::reg x) {
  using reg = typename V::reg;
  const reg lowest = V::set1(-87.3365448f);
  const reg highest_exact = V::set1(88.3762626f);  // (127.5 - 1e-6) * ln 2
  const auto underflow = V::lt(x, lowest);
  const auto overflow = V::gt(x, V::set1(88.7228391f));
  x = V::min(V::max(x, lowest), highest_exact);

  const reg n = V::round_nearest(V::mul(x, V::set1(1.44269504088896341f)));
  // ln 2 split so that n * ln2_hi is exact for |n| <= 128.
  reg r = V::fnmadd(n, V::set1(0.693359375f), x);
  r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);

  reg p = V::set1(1.0f / 5040);
  p = V::fmadd(p, r, V::set1(1.0f / 720));
  p = V::fmadd(p, r, V::set1(1.0f / 120));
  p = V::fmadd(p, r, V::set1(1.0f / 24));
  p = V::fmadd(p, r, V::set1(1.0f / 6));
  p = V::fmadd(p, r, V::set1(0.5f));
  p = V::fmadd(p, r, V::set1(1.0f));
  p = V::fmadd(p, r, V::set1(1.0f));

  // n is in [-126, 127] after the clamps, so 2^n is a normal float.
  const reg result = V::zero_where(underflow, V::mul(p, V::pow2(n)));
  return V::select(overflow, V::set1(__builtin_inff()), result);
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
template <class V>
typename V::reg simd_erf_small(typename V::reg x) {
  const typename V::reg u = V::mul(x, x);
  typename V::reg p = V::set1(8.775889803e-05f);
  p = V::fmadd(p, u, V::set1(-8.232853798e-04f));
  p = V::fmadd(p, u, V::set1(5.208503130e-03f));
  p = V::fmadd(p, u, V::set1(-2.686223379e-02f));
  p = V::fmadd(p, u, V::set1(1.128374377e-01f));
  p = V::fmadd(p, u, V::set1(-3.761263671e-01f));
  p = V::fmadd(p, u, V::set1(1.128379167e+00f));
  return V::mul(x, p);
}

// erfc(a) for a >= kErfSplit, given a and a^2 as an unevaluated sum a2_hi + a2_lo (exact or
// nearly: the rounding of a^2, up to 100 * 6e-8 in the exponent, would otherwise cost up to 6e-6
// relative error). Results below ~1e-38 come out as 0. Callers clamp a to <= ~10 and keep inf out.
template <class V>
typename V::reg simd_erfc_large(typename V::reg a, typename V::reg a2_hi, typename V::reg a2_lo) {
  const typename V::reg t = V::div(V::set1(1.0f), V::fmadd(a, V::set1(0.5f), V::set1(1.0f)));
  typename V::reg q = V::set1(-6.830812727e-02f);
  q = V::fmadd(q, t, V::set1(3.293162318e-01f));
  q = V::fmadd(q, t, V::set1(-5.770020114e-01f));
  q = V::fmadd(q, t, V::set1(3.766727441e-01f));
  q = V::fmadd(q, t, V::set1(-9.200455512e-02f));
  q = V::fmadd(q, t, V::set1(2.298158246e-01f));
  q = V::fmadd(q, t, V::set1(2.360704431e-01f));
  q = V::fmadd(q, t, V::set1(2.834716765e-01f));
  q = V::fmadd(q, t, V::set1(2.819933409e-01f));
  q = V::fmadd(q, t, V::set1(3.274088352e-06f));
  // e^(-hi - lo) ~ e^(-hi) (1 - lo), |lo| <= 1e-5.
  typename V::reg e = simd_exp<V>(V::neg(a2_hi));
  e = V::fnmadd(e, a2_lo, e);
  return V::mul(q, e);
}

template <class V>
typename V::reg simd_erf(typename V::reg x) {
  const typename V::reg a = V::abs(x);
  const auto large = V::ge(a, V::set1(kErfSplit));
  const typename V::reg small_result = simd_erf_small<V>(x);
  if (!V::any(large)) return small_result;
  // erfc(10) = 2e-45 is already 0 in float; the clamp keeps inf out of the a^2 split (NaN stays).
  const typename V::reg ac = V::min(V::set1(10.0f), a);
  const typename V::reg a2_hi = V::mul(ac, ac);
  const typename V::reg a2_lo = V::fmsub(ac, ac, a2_hi);
  const typename V::reg large_result =
      V::or_bits(V::sub(V::set1(1.0f), simd_erfc_large<V>(ac, a2_hi, a2_lo)), V::sign(x));
  return V::select(large, large_result, small_result);
}

// GELU(v) = 0.5 v (1 + erf(v / sqrt 2)), with 1 + erf(u) = erfc(-u) taken directly for u <= -0.875
// and as 2 - erfc(u) for u >= 0.875.
template <class V>
typename V::reg simd_gelu_erf(typename V::reg v) {
  using reg = typename V::reg;
  const reg u = V::mul(v, V::set1(0.707106781186547524f));
  const reg a = V::abs(u);
  const auto large = V::ge(a, V::set1(kErfSplit));
  reg one_plus_erf = V::add(V::set1(1.0f), simd_erf_small<V>(u));
  if (V::any(large)) {
    // u^2 = v^2 / 2 taken from v, not from the rounded u: v^2 = hi + lo exactly (FMA), halving
    // is exact. |v| is clamped at 14.2 (u = 10, where erfc is already 0) to keep inf out.
    const reg vc = V::min(V::set1(14.2f), V::abs(v));
    const reg v2_hi = V::mul(vc, vc);
    const reg v2_lo = V::fmsub(vc, vc, v2_hi);
    const reg half = V::set1(0.5f);
    const reg ac = V::min(V::set1(10.0f), a);
    const reg tail = simd_erfc_large<V>(ac, V::mul(v2_hi, half), V::mul(v2_lo, half));
    const reg large_value = V::select(V::lt(u, V::zero()), tail, V::sub(V::set1(2.0f), tail));
    one_plus_erf = V::select(large, large_value, one_plus_erf);
  }
  return V::mul(V::mul(V::set1(0.5f), v), one_plus_erf);
}

// ---- kernels --------------------------------------------------------------------------------------

template <class V>
void simd_layer_norm(int64_t rows, int64_t cols, const float* x, const float* residual, const float* bias,
                     const float* gamma, const float* beta, float eps, float* y) {
  using reg = typename V::reg;
  constexpr int64_t kLanes = V::kLanes;
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
        reg v = n == kLanes ? V::loadu(xr + i) : V::load_partial(xr + i, n, 0.0f);
        if (rr) v = V::add(v, n == kLanes ? V::loadu(rr + i) : V::load_partial(rr + i, n, 0.0f));
        if (bias) v = V::add(v, n == kLanes ? V::loadu(bias + i) : V::load_partial(bias + i, n, 0.0f));
        return v;
      };
      typename V::dreg sum = V::dzero();
      for (int64_t i = 0; i < full; i += kLanes) {
        const reg v = input(i, kLanes);
        V::storeu(yr + i, v);
        sum = V::add_widened(sum, v);
      }
      if (tail) {
        const reg v = input(full, tail);  // lanes past the row are 0
        V::store_partial(yr + full, tail, v);
        sum = V::add_widened(sum, v);
      }
      const double mean = V::dsum(sum) / static_cast<double>(cols);
      // The mean as an unevaluated sum of two floats, so v - mean loses nothing to its rounding.
      const float mean_hi_f = static_cast<float>(mean);
      const reg mean_hi = V::set1(mean_hi_f);
      const reg mean_lo = V::set1(static_cast<float>(mean - mean_hi_f));
      auto centered = [&](reg v) { return V::sub(V::sub(v, mean_hi), mean_lo); };

      // Pass 2: variance of (v - mean), four accumulators to keep the fp32 sums short.
      reg sq0 = V::zero(), sq1 = V::zero(), sq2 = V::zero(), sq3 = V::zero();
      int64_t i = 0;
      for (; i + 4 * kLanes <= full; i += 4 * kLanes) {
        const reg d0 = centered(V::loadu(yr + i));
        const reg d1 = centered(V::loadu(yr + i + kLanes));
        const reg d2 = centered(V::loadu(yr + i + 2 * kLanes));
        const reg d3 = centered(V::loadu(yr + i + 3 * kLanes));
        sq0 = V::fmadd(d0, d0, sq0);
        sq1 = V::fmadd(d1, d1, sq1);
        sq2 = V::fmadd(d2, d2, sq2);
        sq3 = V::fmadd(d3, d3, sq3);
      }
      for (; i < full; i += kLanes) {
        const reg d = centered(V::loadu(yr + i));
        sq0 = V::fmadd(d, d, sq0);
      }
      if (tail) {
        // Lanes past the row: v = mean_hi, so d = -mean_lo; zeroed.
        const reg d = V::keep_where(V::first_lanes(tail), centered(V::load_partial(yr + full, tail, mean_hi_f)));
        sq1 = V::fmadd(d, d, sq1);
      }
      const float var = V::hsum(V::add(V::add(sq0, sq1), V::add(sq2, sq3))) / static_cast<float>(cols);
      const reg rstd = V::set1(1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(var + eps))));

      // Pass 3: y = (v - mean) * rstd * gamma + beta.
      for (int64_t j = 0; j < full; j += kLanes) {
        const reg d = V::mul(centered(V::loadu(yr + j)), rstd);
        V::storeu(yr + j, V::fmadd(d, V::loadu(gamma + j), V::loadu(beta + j)));
      }
      if (tail) {
        const reg d = V::mul(centered(V::load_partial(yr + full, tail, 0.0f)), rstd);
        V::store_partial(yr + full, tail,
                         V::fmadd(d, V::load_partial(gamma + full, tail, 0.0f), V::load_partial(beta + full, tail, 0.0f)));
      }
    }
  });
}

// x[r, :] = f(x[r, :] + bias) for an elementwise vector function f.
template <class V, class F>
void simd_bias_map_rows(int64_t rows, int64_t cols, float* x, int64_t ldx, const float* bias, F f) {
  constexpr int64_t kLanes = V::kLanes;
  if (rows <= 0 || cols <= 0) return;
  for_each_row_block(rows, cols, [=](int64_t first, int64_t end) {
    const int64_t full = cols - cols % kLanes, tail = cols % kLanes;
    for (int64_t r = first; r < end; ++r) {
      float* row = x + r * ldx;
      for (int64_t i = 0; i < full; i += kLanes) {
        typename V::reg v = V::loadu(row + i);
        if (bias) v = V::add(v, V::loadu(bias + i));
        V::storeu(row + i, f(v));
      }
      if (tail) {
        typename V::reg v = V::load_partial(row + full, tail, 0.0f);
        if (bias) v = V::add(v, V::load_partial(bias + full, tail, 0.0f));
        V::store_partial(row + full, tail, f(v));
      }
    }
  });
}

template <class V>
void simd_bias_gelu_erf(int64_t rows, int64_t cols, float* x, int64_t ldx, const float* bias) {
  simd_bias_map_rows<V>(rows, cols, x, ldx, bias, [](typename V::reg v) { return simd_gelu_erf<V>(v); });
}

template <class V>
void simd_bias_add(int64_t rows, int64_t cols, float* x, int64_t ldx, const float* bias) {
  simd_bias_map_rows<V>(rows, cols, x, ldx, bias, [](typename V::reg v) { return v; });
}

template <class V>
void simd_softmax(int64_t rows, int64_t cols, float* x, int64_t ldx, float scale, const float* mask) {
  using reg = typename V::reg;
  constexpr int64_t kLanes = V::kLanes;
  if (rows <= 0 || cols <= 0) return;
  for_each_row_block(rows, cols, [=](int64_t first, int64_t end) {
    const int64_t full = cols - cols % kLanes, tail = cols % kLanes;
    const reg scale_v = V::set1(scale);
    const float minus_inf = -__builtin_inff();
    for (int64_t r = first; r < end; ++r) {
      float* row = x + r * ldx;
      // Pass 1: v = x * scale + mask, written back; running max (lanes past the row: -inf).
      reg max_v = V::set1(minus_inf);
      for (int64_t i = 0; i < full; i += kLanes) {
        const reg v = mask ? V::fmadd(V::loadu(row + i), scale_v, V::loadu(mask + i)) : V::mul(V::loadu(row + i), scale_v);
        V::storeu(row + i, v);
        max_v = V::max(max_v, v);
      }
      // The tail stays in registers through the three passes (storing it and loading it back
      // with a masked or buffered load stalled on every short row: attention's rows are ~20 long).
      reg tail_v = V::set1(minus_inf);  // the tail's v; lanes past the row -inf
      if (tail) {
        const reg xs = V::load_partial(row + full, tail, 0.0f);
        const reg v = mask ? V::fmadd(xs, scale_v, V::load_partial(mask + full, tail, 0.0f)) : V::mul(xs, scale_v);
        tail_v = V::select(V::first_lanes(tail), v, tail_v);
        max_v = V::max(max_v, tail_v);
      }
      const reg max = V::set1(V::hmax(max_v));

      // Pass 2: e = exp(v - max), written back, summed in double (past the row, exp(-inf) = 0).
      typename V::dreg sum = V::dzero();
      for (int64_t i = 0; i < full; i += kLanes) {
        const reg e = simd_exp<V>(V::sub(V::loadu(row + i), max));
        V::storeu(row + i, e);
        sum = V::add_widened(sum, e);
      }
      const reg tail_e = tail ? simd_exp<V>(V::sub(tail_v, max)) : V::zero();
      if (tail) sum = V::add_widened(sum, tail_e);

      // Pass 3: normalise.
      const reg inv = V::set1(static_cast<float>(1.0 / V::dsum(sum)));
      for (int64_t i = 0; i < full; i += kLanes) V::storeu(row + i, V::mul(V::loadu(row + i), inv));
      if (tail) V::store_partial(row + full, tail, V::mul(tail_e, inv));
    }
  });
}

// y[i] = f(x[i]) over a flat array.
template <class V, class F>
void simd_map_array(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + V::kLanes <= n; i += V::kLanes) V::storeu(y + i, f(V::loadu(x + i)));
  if (i < n) V::store_partial(y + i, n - i, f(V::load_partial(x + i, n - i, 0.0f)));
}

template <class V>
constexpr RowKernels simd_row_kernels(const char* isa) {
  return {isa, simd_layer_norm<V>, simd_bias_gelu_erf<V>, simd_bias_add<V>, simd_softmax<V>};
}

}  // namespace
}  // namespace leanembed::kernels
