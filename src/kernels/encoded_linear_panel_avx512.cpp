// The AVX-512 micro-kernel over a decoded panel (encoded_linear_decoding.h), compiled with
// -mavx2 -mfma -mf16c -mavx512f: panels 32 columns wide (2 zmm per row of the panel), tiles of 12
// rows of x (24 accumulators; 2 loads + 12 broadcasts per 24 FMAs), then 4, then 1-3. The panels
// are filled by the encodings' AVX2 code. The avx512 table of the q4 / f16 family: 1.5-1.8x the
// AVX2 micro-kernel. Intrinsics and file-local helpers only (see encoded_linear_q4_avx2.cpp).
#include <immintrin.h>

#include <cstdint>

#include "kernels/encoded_linear_decoding.h"

namespace leanembed::kernels {

namespace {

int64_t smaller(int64_t a, int64_t b) { return a < b ? a : b; }

__mmask16 mask16_below(int64_t count) {
  return count <= 0 ? 0 : (count >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << count) - 1u));
}

template <int R>
void panel_tile(const float* panel, int64_t kc, int64_t width, const float* x, int64_t ldx, float* y, int64_t ldy,
                bool first, const float* bias) {
  const __mmask16 mask0 = mask16_below(width), mask1 = mask16_below(width - 16);
  __m512 acc[R][2];
  for (int r = 0; r < R; ++r) {
    if (first) {
      acc[r][0] = bias ? _mm512_maskz_loadu_ps(mask0, bias) : _mm512_setzero_ps();
      acc[r][1] = bias ? _mm512_maskz_loadu_ps(mask1, bias + 16) : _mm512_setzero_ps();
    } else {
      acc[r][0] = _mm512_maskz_loadu_ps(mask0, y + r * ldy);
      acc[r][1] = _mm512_maskz_loadu_ps(mask1, y + r * ldy + 16);
    }
  }
  for (int64_t t = 0; t < kc; ++t) {
    const __m512 w0 = _mm512_load_ps(panel + t * 32), w1 = _mm512_load_ps(panel + t * 32 + 16);
    for (int r = 0; r < R; ++r) {
      const __m512 xb = _mm512_set1_ps(x[r * ldx + t]);
      acc[r][0] = _mm512_fmadd_ps(xb, w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(xb, w1, acc[r][1]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(y + r * ldy, mask0, acc[r][0]);
    _mm512_mask_storeu_ps(y + r * ldy + 16, mask1, acc[r][1]);
  }
}

// Rows [r0, r1) of x against one filled panel of width P (16: AVX2 tiles, 32: AVX-512 tiles).
// Rows [r0, r1) of x against one filled panel.
void panel_rows(const float* panel, int64_t kc, int64_t width, int64_t r0, int64_t r1, const float* x, int64_t ldx,
                float* y, int64_t ldy, bool first, const float* bias) {
  int64_t r = r0;
  for (; r + 12 <= r1; r += 12) panel_tile<12>(panel, kc, width, x + r * ldx, ldx, y + r * ldy, ldy, first, bias);
  for (; r + 4 <= r1; r += 4) panel_tile<4>(panel, kc, width, x + r * ldx, ldx, y + r * ldy, ldy, first, bias);
  const float* xr = x + r * ldx;
  float* yr = y + r * ldy;
  switch (r1 - r) {
    case 1: panel_tile<1>(panel, kc, width, xr, ldx, yr, ldy, first, bias); break;
    case 2: panel_tile<2>(panel, kc, width, xr, ldx, yr, ldy, first, bias); break;
    case 3: panel_tile<3>(panel, kc, width, xr, ldx, yr, ldy, first, bias); break;
    default: break;
  }
}

constexpr int64_t kWidth = 32;

// Rows [0, m) x columns [j0, j1) in panels kWidth columns wide, each filled by the encoding.
void panel_range(const DecodedColumns& columns, int64_t k, int64_t j0, int64_t j1, int64_t m, const float* x,
                 int64_t ldx, float* y, int64_t ldy, const float* bias) {
  alignas(64) float panel[kPanelMaxChunk * kWidth];
  for (int64_t r0 = 0; r0 < m; r0 += kPanelRowBlock) {
    const int64_t r1 = smaller(m, r0 + kPanelRowBlock);
    for (int64_t j = j0; j < j1; j += kWidth) {
      const int64_t width = smaller(kWidth, j1 - j);
      const float* bj = bias ? bias + j : nullptr;
      for (int64_t i0 = 0; i0 < k; i0 += kPanelMaxChunk) {
        const int64_t kc = smaller(kPanelMaxChunk, k - i0);
        columns.fill_panel(columns.layout, j, width, i0, kc, panel, kWidth);
        panel_rows(panel, kc, width, r0, r1, x + i0, ldx, y + j, ldy, i0 == 0, bj);
      }
    }
  }
}

}  // namespace

const DecodingKernels& decoding_kernels_avx512() {
  static constexpr DecodingKernels table{"avx512", kWidth, panel_range};
  return table;
}

}  // namespace leanembed::kernels
