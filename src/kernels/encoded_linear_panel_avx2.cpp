// The AVX2 micro-kernel over a decoded panel (encoded_linear_decoding.h), compiled with
// -mavx2 -mfma -mf16c: panels 16 columns wide, tiles of 6 rows x 2 ymm (12 accumulators; per k
// step 2 loads of the panel, 6 broadcasts of x, 12 FMAs; no decoding in the loop). Chunks of k
// after the first add to y; the last panel of a column range may be narrower than 16: it is
// zero-padded and y is read and written with masks. The avx2 table of the q4 / f16 family.
// Intrinsics and file-local helpers only (see encoded_linear_q4_avx2.cpp).
#include <immintrin.h>

#include <cstdint>

#include "kernels/encoded_linear_decoding.h"

namespace leanembed::kernels {

namespace {

int64_t smaller(int64_t a, int64_t b) { return a < b ? a : b; }

// Lane i is all ones when i < count (count may be <= 0 or >= 8).
__m256i lanes_below(int64_t count) {
  const int c = count < 0 ? 0 : (count > 8 ? 8 : static_cast<int>(count));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// y[r, 0..width) (+)= x[r, 0..kc) . panel for r < R; first chunk: y = sum + bias.
template <int R>
void panel_tile(const float* panel, int64_t kc, int64_t width, const float* x, int64_t ldx, float* y,
                int64_t ldy, bool first, const float* bias) {
  const __m256i mask0 = lanes_below(width), mask1 = lanes_below(width - 8);
  __m256 acc[R][2];
  for (int r = 0; r < R; ++r) {
    if (first) {
      acc[r][0] = bias ? _mm256_maskload_ps(bias, mask0) : _mm256_setzero_ps();
      acc[r][1] = bias ? _mm256_maskload_ps(bias + 8, mask1) : _mm256_setzero_ps();
    } else {
      acc[r][0] = _mm256_maskload_ps(y + r * ldy, mask0);
      acc[r][1] = _mm256_maskload_ps(y + r * ldy + 8, mask1);
    }
  }
  for (int64_t t = 0; t < kc; ++t) {
    const __m256 w0 = _mm256_load_ps(panel + t * 16), w1 = _mm256_load_ps(panel + t * 16 + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 xb = _mm256_broadcast_ss(x + r * ldx + t);
      acc[r][0] = _mm256_fmadd_ps(xb, w0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(xb, w1, acc[r][1]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_maskstore_ps(y + r * ldy, mask0, acc[r][0]);
    _mm256_maskstore_ps(y + r * ldy + 8, mask1, acc[r][1]);
  }
}

// The AVX-512 micro-kernel (a panel 32 columns wide: 2 zmm per row of the panel, 12 rows of x:
// 24 accumulators; 2 loads + 12 broadcasts per 24 FMAs). Only called after
// Rows [r0, r1) of x against one filled panel.
void panel_rows(const float* panel, int64_t kc, int64_t width, int64_t r0, int64_t r1, const float* x, int64_t ldx,
                float* y, int64_t ldy, bool first, const float* bias) {
  int64_t r = r0;
  for (; r + 6 <= r1; r += 6) panel_tile<6>(panel, kc, width, x + r * ldx, ldx, y + r * ldy, ldy, first, bias);
  const float* xr = x + r * ldx;
  float* yr = y + r * ldy;
  switch (r1 - r) {
    case 1: panel_tile<1>(panel, kc, width, xr, ldx, yr, ldy, first, bias); break;
    case 2: panel_tile<2>(panel, kc, width, xr, ldx, yr, ldy, first, bias); break;
    case 3: panel_tile<3>(panel, kc, width, xr, ldx, yr, ldy, first, bias); break;
    case 4: panel_tile<4>(panel, kc, width, xr, ldx, yr, ldy, first, bias); break;
    case 5: panel_tile<5>(panel, kc, width, xr, ldx, yr, ldy, first, bias); break;
    default: break;
  }
}

constexpr int64_t kWidth = 16;

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

const DecodingKernels& decoding_kernels_avx2() {
  static constexpr DecodingKernels table{"avx2", kWidth, panel_range};
  return table;
}

}  // namespace leanembed::kernels
