// AVX2 + FMA + F16C kernels for the q4 and f16 encoded linear layers (encoded_linear.h), plus an
// AVX-512 micro-kernel (functions marked LEANEMBED_AVX512, target("avx512f")). Compiled with
// -mavx2 -mfma -mf16c; called only after cpu_has_avx2_fma_f16c() — and the AVX-512 functions only
// after cpu_has_avx512f() (encoded_linear_q4_f16.cpp). Like row_kernels_avx2.cpp, this
// file uses intrinsics and file-local helpers only (no std::min, no templates other files also
// instantiate), so no AVX2 copy of a shared inline function can leak into baseline code.
//
// Two paths, by the number of rows m of x:
//
// Few rows (m < 4; batch-1 matters): the weights are decoded in registers inside the dot products. q4: MatMulNBits stores column j's weights contiguously along k ([n, blocks,
// block_size / 2]), so y[r, j] is a dot product along k: a tile of R rows x C columns keeps R * C
// eight-lane accumulators; each 16-value piece of a block (8 packed bytes) is decoded once per tile
// — nibbles interleaved back into k order, zero point subtracted as bytes, widened to int32,
// converted, times the block's scale: exactly the reference's (q - zp) * scale in fp32 — and
// FMA'd into the R rows' accumulators; the lanes are summed at the end. C = 4 for R <= 2 and 2 for
// R = 3, so that enough independent FMA chains are in flight. A last partial block reads x with masked loads (the
// packed bytes are zero-padded). f16: W is row-major [k, n], so the kernel vectorises along n: R
// rows x 8*C8 columns, per k step one vcvtph2ps per 8 columns and one broadcast of x per row.
//
// Many rows: a panel of P columns x kc (<= 256) values of k is decoded once per block of
// 128 rows into fp32 on the stack, then a plain fp32 micro-kernel runs every tile of rows over it:
// AVX2, P = 16: 6 rows x 2 ymm (12 accumulators); AVX-512, P = 32: 12 rows x 2 zmm (24). q4 fills
// the panel 8 columns x 16 values at a time (packed bytes transposed, then decoded per k); f16
// widens rows of W. Stack: 16 KB (AVX2) or 32 KB (AVX-512) per thread; no heap, no scratch.
//
// Threads: output columns are split into contiguous ranges (multiples of 16 or 32), one per OpenMP
// thread; every output is computed by the same instructions whatever the split, so results do not
// depend on the thread count.
#include <immintrin.h>
#include <omp.h>

#include <cstdint>

#include "kernels/encoded_linear.h"
#include "kernels/encoded_linear_q4_f16_internal.h"

namespace leanembed::kernels {

namespace {

int64_t smaller(int64_t a, int64_t b) { return a < b ? a : b; }

float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Lane i is all ones when i < count (count may be <= 0 or >= 8).
__m256i lanes_below(int64_t count) {
  const int c = count < 0 ? 0 : (count > 8 ? 8 : static_cast<int>(count));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// ---- q4 ------------------------------------------------------------------------------------------

struct Q4Layout {
  const uint8_t* packed;
  const unsigned char* scales;  // fp32 values at any address
  const uint8_t* zero_points;   // null = 8
  int64_t k, block_size, blocks, zp_stride;
  int block_shift;  // log2(block_size): block of k index i = i >> block_shift (no division)
};

float block_scale(const Q4Layout& w, int64_t j, int64_t b) {
  float s;
  __builtin_memcpy(&s, w.scales + (j * w.blocks + b) * 4, sizeof s);
  return s;
}

int block_zero_point(const Q4Layout& w, int64_t j, int64_t b) {
  if (!w.zero_points) return 8;
  const uint8_t byte = w.zero_points[j * w.zp_stride + b / 2];
  return (b & 1) ? (byte >> 4) : (byte & 0x0F);
}

// 16 weights from 8 packed bytes at p (any address), in k order: (q - zp) * scale.
inline void decode16(const uint8_t* p, __m128i zp, __m256 scale, __m256& w0, __m256& w1) {
  const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  const __m128i low_mask = _mm_set1_epi8(0x0F);
  const __m128i low = _mm_and_si128(bytes, low_mask);                         // even k
  const __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_mask);     // odd k
  const __m128i q = _mm_sub_epi8(_mm_unpacklo_epi8(low, high), zp);           // -15..15
  w0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), scale);
  w1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))), scale);
}

// y[r, j0 + c] for r < R, c < C.
template <int R, int C>
void q4_tile(const Q4Layout& w, int64_t j0, const float* x, int64_t ldx, float* y, int64_t ldy,
             const float* bias) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  const int64_t bs = w.block_size, half = bs / 2;
  const int64_t full_blocks = w.k / bs;
  for (int64_t b = 0; b < w.blocks; ++b) {
    const uint8_t* block[C];
    __m256 scale[C];
    __m128i zp[C];
    for (int c = 0; c < C; ++c) {
      block[c] = w.packed + ((j0 + c) * w.blocks + b) * half;
      scale[c] = _mm256_set1_ps(block_scale(w, j0 + c, b));
      zp[c] = _mm_set1_epi8(static_cast<char>(block_zero_point(w, j0 + c, b)));
    }
    const int64_t i0 = b * bs;
    if (b < full_blocks) {
      for (int64_t t = 0; t < bs; t += 16) {
        for (int c = 0; c < C; ++c) {
          __m256 w0, w1;
          decode16(block[c] + t / 2, zp[c], scale[c], w0, w1);
          for (int r = 0; r < R; ++r) {
            const float* xr = x + r * ldx + i0 + t;
            acc[r][c] = _mm256_fmadd_ps(_mm256_loadu_ps(xr), w0, acc[r][c]);
            acc[r][c] = _mm256_fmadd_ps(_mm256_loadu_ps(xr + 8), w1, acc[r][c]);
          }
        }
      }
    } else {
      // Last, partial block: x exists only below k; masked lanes read nothing and give 0.
      for (int64_t t = 0; i0 + t < w.k; t += 16) {
        const __m256i mask0 = lanes_below(w.k - (i0 + t));
        const __m256i mask1 = lanes_below(w.k - (i0 + t + 8));
        for (int c = 0; c < C; ++c) {
          __m256 w0, w1;
          decode16(block[c] + t / 2, zp[c], scale[c], w0, w1);
          for (int r = 0; r < R; ++r) {
            const float* xr = x + r * ldx + i0 + t;
            acc[r][c] = _mm256_fmadd_ps(_mm256_maskload_ps(xr, mask0), w0, acc[r][c]);
            acc[r][c] = _mm256_fmadd_ps(_mm256_maskload_ps(xr + 8, mask1), w1, acc[r][c]);
          }
        }
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      y[r * ldy + j0 + c] = horizontal_sum(acc[r][c]) + (bias ? bias[j0 + c] : 0.0f);
}

template <int R, int C>
void q4_columns(const Q4Layout& w, int64_t j0, int64_t j1, const float* x, int64_t ldx, float* y,
                int64_t ldy, const float* bias) {
  int64_t j = j0;
  for (; j + C <= j1; j += C) q4_tile<R, C>(w, j, x, ldx, y, ldy, bias);
  for (; j < j1; ++j) q4_tile<R, 1>(w, j, x, ldx, y, ldy, bias);
}

// Rows [0, m) x columns [j0, j1) (used for m < kPanelMinRows; correct for any m).
void q4_range(const Q4Layout& w, int64_t j0, int64_t j1, int64_t m, const float* x, int64_t ldx, float* y,
              int64_t ldy, const float* bias) {
  int64_t r = 0;
  for (; r + 3 <= m; r += 3) q4_columns<3, 2>(w, j0, j1, x + r * ldx, ldx, y + r * ldy, ldy, bias);
  if (m - r == 2) q4_columns<2, 4>(w, j0, j1, x + r * ldx, ldx, y + r * ldy, ldy, bias);
  if (m - r == 1) q4_columns<1, 4>(w, j0, j1, x + r * ldx, ldx, y + r * ldy, ldy, bias);
}

// ---- f16 -----------------------------------------------------------------------------------------

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

// ---- many rows: fill a panel of W once, reuse it for every row ------------------------------------
// For m >= kPanelMinRows, a panel of 16 columns x kc (<= kPanelMaxChunk) values of k of W is
// decoded to fp32 on the stack (kc x 16 floats, 16 KB, L1-resident) once per block of kPanelRowBlock
// rows, and every 6-row tile of x runs a plain fp32 micro-kernel over it (per k step: 2 loads of the
// panel, 6 broadcasts of x, 12 FMAs; no decoding in the loop). Chunks of k after the first add to y.
// The last panel of a column range may be narrower than 16: it is zero-padded and y is read and
// written with masks. q4 fills the panel from 8 x 8 transposed packed bytes (q4_fill_panel); f16
// widens rows of W directly (W is row-major [k, n]). The AVX-512 variant: panels 32 wide.

// Measured (1 thread, MiniLM shapes, both micro-kernels): the panel path wins from 4-5 rows for q4
// and from 4 rows for f16; below, decoding in registers costs less than filling a panel.
constexpr int64_t kPanelMinRows = 4;
constexpr int64_t kPanelMaxChunk = 256;   // a multiple of 16 (q4 decodes 16 values at a time)
constexpr int64_t kPanelRowBlock = 128;   // 128 x kc floats of x stay in L1/L2 across the panels

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
// cpu_has_avx512f(); the function attribute limits AVX-512 code to these functions.
#define LEANEMBED_AVX512 __attribute__((target("avx512f")))

LEANEMBED_AVX512 __mmask16 mask16_below(int64_t count) {
  return count <= 0 ? 0 : (count >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << count) - 1u));
}

template <int R>
LEANEMBED_AVX512 void panel_tile_avx512(const float* panel, int64_t kc, int64_t width, const float* x,
                                        int64_t ldx, float* y, int64_t ldy, bool first, const float* bias) {
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
template <int P>
void panel_rows(const float* panel, int64_t kc, int64_t width, int64_t r0, int64_t r1, const float* x,
                int64_t ldx, float* y, int64_t ldy, bool first, const float* bias) {
  int64_t r = r0;
  if constexpr (P == 32) {
    for (; r + 12 <= r1; r += 12) panel_tile_avx512<12>(panel, kc, width, x + r * ldx, ldx, y + r * ldy, ldy, first, bias);
    for (; r + 4 <= r1; r += 4) panel_tile_avx512<4>(panel, kc, width, x + r * ldx, ldx, y + r * ldy, ldy, first, bias);
    const float* xr = x + r * ldx;
    float* yr = y + r * ldy;
    switch (r1 - r) {
      case 1: panel_tile_avx512<1>(panel, kc, width, xr, ldx, yr, ldy, first, bias); break;
      case 2: panel_tile_avx512<2>(panel, kc, width, xr, ldx, yr, ldy, first, bias); break;
      case 3: panel_tile_avx512<3>(panel, kc, width, xr, ldx, yr, ldy, first, bias); break;
      default: break;
    }
  } else {
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
}

// Rows [0, m) x columns [j0, j1) with panels P (16 or 32) columns wide: fill(j, width, i0, kc,
// panel, P) writes panel[t * P + c] = W_real[i0 + t, j + c] for t < kc, c < width and 0 for
// width <= c < P.
template <int P, typename Fill>
void panel_range(const Fill& fill, int64_t k, int64_t j0, int64_t j1, int64_t m, const float* x, int64_t ldx,
                 float* y, int64_t ldy, const float* bias) {
  alignas(64) float panel[kPanelMaxChunk * P];
  for (int64_t r0 = 0; r0 < m; r0 += kPanelRowBlock) {
    const int64_t r1 = smaller(m, r0 + kPanelRowBlock);
    for (int64_t j = j0; j < j1; j += P) {
      const int64_t width = smaller(P, j1 - j);
      const float* bj = bias ? bias + j : nullptr;
      for (int64_t i0 = 0; i0 < k; i0 += kPanelMaxChunk) {
        const int64_t kc = smaller(kPanelMaxChunk, k - i0);
        fill(j, width, i0, kc, panel, P);
        panel_rows<P>(panel, kc, width, r0, r1, x + i0, ldx, y + j, ldy, i0 == 0, bj);
      }
    }
  }
}

// Transposes 8 rows of 8 bytes (the low halves of r[0..8)) into pairs of bytes: out[q] holds byte
// 2q of rows 0..7 in its low 8 bytes and byte 2q + 1 of rows 0..7 in its high 8 bytes.
void transpose8x8_bytes(const __m128i r[8], __m128i out[4]) {
  const __m128i a0 = _mm_unpacklo_epi8(r[0], r[1]), a1 = _mm_unpacklo_epi8(r[2], r[3]);
  const __m128i a2 = _mm_unpacklo_epi8(r[4], r[5]), a3 = _mm_unpacklo_epi8(r[6], r[7]);
  const __m128i b0 = _mm_unpacklo_epi16(a0, a1), b1 = _mm_unpackhi_epi16(a0, a1);
  const __m128i b2 = _mm_unpacklo_epi16(a2, a3), b3 = _mm_unpackhi_epi16(a2, a3);
  out[0] = _mm_unpacklo_epi32(b0, b2);
  out[1] = _mm_unpackhi_epi32(b0, b2);
  out[2] = _mm_unpacklo_epi32(b1, b3);
  out[3] = _mm_unpackhi_epi32(b1, b3);
}

// The q4 panel, 8 columns at a time: for each 16-value piece, the 8 columns' 8 packed bytes are
// transposed (byte p of every column together), then each byte position gives two panel rows —
// k = 2p (low nibbles) and 2p + 1 (high) — for the 8 columns at once: widen to int32, minus the
// columns' zero points, to fp32, times their scales (vectors rebuilt once per block). Columns past
// `width` get zero bytes, zero points and scales (so zeros). Rows of the panel past k come from the
// zero padding of the last block; the micro-kernel never reads them.
void q4_fill_panel(const Q4Layout& w, int64_t j, int64_t width, int64_t i0, int64_t kc, float* panel,
                   int64_t stride) {
  const int64_t half = w.block_size / 2, column_bytes = w.blocks * half;
  const __m256i low_mask = _mm256_set1_epi32(0x0F);
  for (int64_t c0 = 0; c0 < stride; c0 += 8) {
    const int64_t cols = width - c0 < 0 ? 0 : smaller(8, width - c0);
    int64_t block = -1;
    __m256 scale = _mm256_setzero_ps();
    __m256i zp = _mm256_setzero_si256();
    for (int64_t t = 0; t < kc; t += 16) {
      const int64_t i = i0 + t, b = i >> w.block_shift, within = i & (w.block_size - 1);
      if (b != block) {
        block = b;
        alignas(32) float s[8] = {};
        alignas(32) int32_t z[8] = {};
        for (int64_t c = 0; c < cols; ++c) {
          s[c] = block_scale(w, j + c0 + c, b);
          z[c] = block_zero_point(w, j + c0 + c, b);
        }
        scale = _mm256_load_ps(s);
        zp = _mm256_load_si256(reinterpret_cast<const __m256i*>(z));
      }
      __m128i rows[8], pairs[4];
      for (int64_t c = 0; c < 8; ++c)
        rows[c] = c < cols ? _mm_loadl_epi64(reinterpret_cast<const __m128i*>(
                                 w.packed + (j + c0 + c) * column_bytes + b * half + within / 2))
                           : _mm_setzero_si128();
      transpose8x8_bytes(rows, pairs);
      for (int64_t p = 0; p < 8; ++p) {
        const __m128i bytes = (p & 1) ? _mm_srli_si128(pairs[p / 2], 8) : pairs[p / 2];
        const __m256i v = _mm256_cvtepu8_epi32(bytes);
        const __m256i even = _mm256_sub_epi32(_mm256_and_si256(v, low_mask), zp);
        const __m256i odd = _mm256_sub_epi32(_mm256_srli_epi32(v, 4), zp);
        _mm256_store_ps(panel + (t + 2 * p) * stride + c0, _mm256_mul_ps(_mm256_cvtepi32_ps(even), scale));
        _mm256_store_ps(panel + (t + 2 * p + 1) * stride + c0, _mm256_mul_ps(_mm256_cvtepi32_ps(odd), scale));
      }
    }
  }
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
// runs body(j0, j1) for each, in parallel when threads > 1.
template <typename Body>
void split_columns(int64_t n, int64_t unit, int threads, const Body& body) {
  const int64_t units = (n + unit - 1) / unit;
  const int team = static_cast<int>(smaller(threads < 1 ? 1 : threads, units));
  if (team <= 1) {
    body(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(team)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t j0 = smaller(n, units * t / nt * unit);
    const int64_t j1 = smaller(n, units * (t + 1) / nt * unit);
    if (j0 < j1) body(j0, j1);
  }
}

}  // namespace

namespace {

// The columns split over the threads; each range decoded row by row when m is small (range), else
// through panels of decoded weights (fill, see panel_range).
template <class Range, class Fill>
void run_by_columns(int64_t k, int64_t n, int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy,
                    const float* bias, int threads, bool avx512, const Range& range, const Fill& fill) {
  split_columns(n, avx512 ? 32 : 16, threads, [&](int64_t j0, int64_t j1) {
    if (m < kPanelMinRows)
      range(j0, j1);
    else if (avx512)
      panel_range<32>(fill, k, j0, j1, m, x, ldx, y, ldy, bias);
    else
      panel_range<16>(fill, k, j0, j1, m, x, ldx, y, ldy, bias);
  });
}

}  // namespace

void q4_run_avx2(const BlockQ4WeightsView& w, int64_t m, const float* x, int64_t ldx, float* y,
                 int64_t ldy, const float* bias, int threads, bool avx512) {
  const int64_t blocks = (w.k + w.block_size - 1) / w.block_size;
  const Q4Layout layout{w.packed, static_cast<const unsigned char*>(w.scales), w.zero_points, w.k,
                        w.block_size, blocks, (blocks + 1) / 2, __builtin_ctzll(static_cast<unsigned long long>(w.block_size))};
  run_by_columns(
      w.k, w.n, m, x, ldx, y, ldy, bias, threads, avx512,
      [&](int64_t j0, int64_t j1) { q4_range(layout, j0, j1, m, x, ldx, y, ldy, bias); },
      [&layout](int64_t j, int64_t width, int64_t i0, int64_t kc, float* panel, int64_t stride) {
        q4_fill_panel(layout, j, width, i0, kc, panel, stride);
      });
}

void f16_run_avx2(const F16WeightsView& w, int64_t m, const float* x, int64_t ldx, float* y,
                  int64_t ldy, const float* bias, int threads, bool avx512) {
  const F16Layout layout{static_cast<const unsigned char*>(w.data), w.k, w.n};
  run_by_columns(
      w.k, w.n, m, x, ldx, y, ldy, bias, threads, avx512,
      [&](int64_t j0, int64_t j1) { f16_range(layout, j0, j1, m, x, ldx, y, ldy, bias); },
      [&layout](int64_t j, int64_t width, int64_t i0, int64_t kc, float* panel, int64_t stride) {
        f16_fill_panel(layout, j, width, i0, kc, panel, stride);
      });
}

}  // namespace leanembed::kernels
