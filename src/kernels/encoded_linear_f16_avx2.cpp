// f16 (IEEE binary16 weights) widening for x86-64 CPUs with AVX2, FMA and F16C (compiled with
// -mavx2 -mfma -mf16c, see CMakeLists.txt): the few-rows kernel and the fill of a decoded panel for
// the micro-kernels of encoded_linear_panel_avx2.cpp / _avx512.cpp (encoded_linear_decoding.h).
// Called only when kernel_config().decoding is the avx2 or avx512 table (dispatch.h). Intrinsics
// and file-local helpers only (see encoded_linear_q4_avx2.cpp).
//
// Few rows: W is row-major [k, n], so the kernel vectorises along n: R rows x 8*C8 columns, per k
// step one vcvtph2ps per 8 columns and one broadcast of x per row. Panel fill: rows of W widened.
#include <immintrin.h>

#include <cstdint>

#include "kernels/encoded_linear_decoding.h"

namespace leanembed::kernels {

namespace {

struct F16Layout {
  const unsigned char* data;  // binary16 [k, n], any address
  int64_t k, n;
};

inline __m256 load8_half(const unsigned char* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// y[r, j + 8c + l] for r < R, c < C8, l < 8.
template <int R, int C8>
void f16_tile(const F16Layout& w, int64_t j, const float* x, int64_t ldx, float* y, int64_t ldy,
              const float* bias) {
  __m256 acc[R][C8];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C8; ++c) acc[r][c] = _mm256_setzero_ps();
  const unsigned char* wp = w.data + j * 2;
  const int64_t row_bytes = w.n * 2;
  for (int64_t i = 0; i < w.k; ++i, wp += row_bytes) {
    __m256 wv[C8];
    for (int c = 0; c < C8; ++c) wv[c] = load8_half(wp + 16 * c);
    for (int r = 0; r < R; ++r) {
      const __m256 xb = _mm256_broadcast_ss(x + r * ldx + i);
      for (int c = 0; c < C8; ++c) acc[r][c] = _mm256_fmadd_ps(xb, wv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C8; ++c) {
      __m256 v = acc[r][c];
      if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j + 8 * c));
      _mm256_storeu_ps(y + r * ldy + j + 8 * c, v);
    }
}

// The last `width` (< 8) columns starting at j: W read through a zero-padded copy of each row piece.
template <int R>
void f16_tail(const F16Layout& w, int64_t j, int64_t width, const float* x, int64_t ldx, float* y,
              int64_t ldy, const float* bias) {
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  const unsigned char* wp = w.data + j * 2;
  for (int64_t i = 0; i < w.k; ++i, wp += w.n * 2) {
    unsigned char piece[16] = {};
    for (int64_t b = 0; b < width * 2; ++b) piece[b] = wp[b];
    const __m256 wv = load8_half(piece);
    for (int r = 0; r < R; ++r) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(x + r * ldx + i), wv, acc[r]);
  }
  for (int r = 0; r < R; ++r) {
    float out[8];
    _mm256_storeu_ps(out, acc[r]);
    for (int64_t c = 0; c < width; ++c) y[r * ldy + j + c] = out[c] + (bias ? bias[j + c] : 0.0f);
  }
}

// R rows x columns [j0, j1).
template <int R>
void f16_columns(const F16Layout& w, int64_t j0, int64_t j1, const float* x, int64_t ldx, float* y,
                 int64_t ldy, const float* bias) {
  int64_t j = j0;
  if (R <= 2)
    for (; j + 32 <= j1; j += 32) f16_tile<R, 4>(w, j, x, ldx, y, ldy, bias);
  for (; j + 16 <= j1; j += 16) f16_tile<R, 2>(w, j, x, ldx, y, ldy, bias);
  for (; j + 8 <= j1; j += 8) f16_tile<R, 1>(w, j, x, ldx, y, ldy, bias);
  if (j < j1) f16_tail<R>(w, j, j1 - j, x, ldx, y, ldy, bias);
}


// Rows [0, m) x columns [j0, j1) (used for m < kPanelMinRows; correct for any m).
void f16_range(const F16Layout& w, int64_t j0, int64_t j1, int64_t m, const float* x, int64_t ldx, float* y,
               int64_t ldy, const float* bias) {
  int64_t r = 0;
  for (; r + 3 <= m; r += 3) f16_columns<3>(w, j0, j1, x + r * ldx, ldx, y + r * ldy, ldy, bias);
  if (m - r == 2) f16_columns<2>(w, j0, j1, x + r * ldx, ldx, y + r * ldy, ldy, bias);
  if (m - r == 1) f16_columns<1>(w, j0, j1, x + r * ldx, ldx, y + r * ldy, ldy, bias);
}

// Rows [0, m) x columns [j0, j1) for DecodedColumns::few_rows (used for m < kPanelMinRows).
void f16_few_rows(const void* layout, int64_t j0, int64_t j1, int64_t m, const float* x, int64_t ldx, float* y,
                  int64_t ldy, const float* bias) {
  f16_range(*static_cast<const F16Layout*>(layout), j0, j1, m, x, ldx, y, ldy, bias);
}

// panel[t * stride + c] = W[i0 + t, j + c] for t < kc, c < width (<= stride, 16 or 32); 0 for c >= width.
void f16_fill_panel(const F16Layout& w, int64_t j, int64_t width, int64_t i0, int64_t kc, float* panel,
                    int64_t stride) {
  const unsigned char* wp = w.data + (i0 * w.n + j) * 2;
  if (width == stride) {
    for (int64_t t = 0; t < kc; ++t, wp += w.n * 2)
      for (int64_t c = 0; c < stride; c += 8) _mm256_store_ps(panel + t * stride + c, load8_half(wp + 2 * c));
    return;
  }
  for (int64_t t = 0; t < kc; ++t, wp += w.n * 2) {
    unsigned char piece[64] = {};
    for (int64_t b = 0; b < width * 2; ++b) piece[b] = wp[b];
    for (int64_t c = 0; c < stride; c += 8) _mm256_store_ps(panel + t * stride + c, load8_half(piece + 2 * c));
  }
}

// Splits columns [0, n) into `threads` contiguous ranges whose starts are multiples of `unit` and

void f16_fill(const void* layout, int64_t j, int64_t width, int64_t i0, int64_t kc, float* panel, int64_t stride) {
  f16_fill_panel(*static_cast<const F16Layout*>(layout), j, width, i0, kc, panel, stride);
}

}  // namespace

void f16_run_avx2(const F16WeightsView& w, int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy,
                  const float* bias, int threads, const DecodingKernels& kernels) {
  const F16Layout layout{static_cast<const unsigned char*>(w.data), w.k, w.n};
  decoding_run({&layout, f16_few_rows, f16_fill}, kernels, w.k, w.n, m, x, ldx, y, ldy, bias, threads);
}

}  // namespace leanembed::kernels
