// q4 (MatMulNBits, bits = 4) decoding for x86-64 CPUs with AVX2, FMA and F16C (compiled with
// -mavx2 -mfma -mf16c, see CMakeLists.txt): the few-rows kernel, which decodes weights in
// registers inside the dot products, and the fill of a decoded panel for the micro-kernels of
// encoded_linear_panel_avx2.cpp / _avx512.cpp (encoded_linear_decoding.h). Called only when
// kernel_config().decoding is the avx2 or avx512 table (dispatch.h). Like row_kernels_avx2.cpp, this
// file uses intrinsics and file-local helpers only (no std::min, no templates other files also
// instantiate), so no AVX2 copy of a shared inline function can leak into baseline code.
//
// Few rows: MatMulNBits stores column j's weights contiguously along k ([n, blocks,
// block_size / 2]), so y[r, j] is a dot product along k: a tile of R rows x C columns keeps R * C
// eight-lane accumulators; each 16-value piece of a block (8 packed bytes) is decoded once per tile
// — nibbles interleaved back into k order, zero point subtracted as bytes, widened to int32,
// converted, times the block's scale: exactly the reference's (q - zp) * scale in fp32 — and
// FMA'd into the R rows' accumulators; the lanes are summed at the end. C = 4 for R <= 2 and 2 for
// R = 3, so that enough independent FMA chains are in flight. A last partial block reads x with
// masked loads (the packed bytes are zero-padded).
//
// Panel fill: 8 columns x 16 values at a time (the 8 columns' packed bytes transposed, then decoded
// per k), see q4_fill_panel.
#include <immintrin.h>

#include <cstdint>

#include "kernels/encoded_linear_decoding.h"

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

// Rows [0, m) x columns [j0, j1) for DecodedColumns::few_rows (used for m < kPanelMinRows).
void q4_few_rows(const void* layout, int64_t j0, int64_t j1, int64_t m, const float* x, int64_t ldx, float* y,
                 int64_t ldy, const float* bias) {
  q4_range(*static_cast<const Q4Layout*>(layout), j0, j1, m, x, ldx, y, ldy, bias);
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


void q4_fill(const void* layout, int64_t j, int64_t width, int64_t i0, int64_t kc, float* panel, int64_t stride) {
  q4_fill_panel(*static_cast<const Q4Layout*>(layout), j, width, i0, kc, panel, stride);
}

}  // namespace

void q4_run_avx2(const BlockQ4WeightsView& w, int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy,
                 const float* bias, int threads, const DecodingKernels& kernels) {
  const int64_t blocks = (w.k + w.block_size - 1) / w.block_size;
  const Q4Layout layout{w.packed, static_cast<const unsigned char*>(w.scales), w.zero_points, w.k,
                        w.block_size, blocks, (blocks + 1) / 2, __builtin_ctzll(static_cast<unsigned long long>(w.block_size))};
  decoding_run({&layout, q4_few_rows, q4_fill}, kernels, w.k, w.n, m, x, ldx, y, ldy, bias, threads);
}

}  // namespace leanembed::kernels
