// Transposition (transpose.h) with AVX2 (built with -mavx2, see CMakeLists.txt): the avx2 table.
// dispatch.cpp calls into it only after its CPU check.
//
// 32-bit results (copy32, bf16_to_f32): strips of 16 source rows, each cut into 8 x 8 blocks that
// are transposed in eight ymm registers (unpack, shuffle, permute2f128: 24 shuffles, no arithmetic,
// so NaN payloads pass unchanged); bf16 is widened while loaded (vpmovzxwd + shift by 16). The two
// blocks of a strip give 64 contiguous bytes of each destination row. 16-bit (copy16): 16 rows x
// 8 columns per step, rows r and r + 8 in the two 128-bit lanes of one register, the classic
// 8 x 8 epi16 unpack network run on both lanes at once (32 bytes per destination row). Rows and
// columns left over (fewer than 8, or 16 for copy16) are copied one element at a time, as the
// reference does. Intrinsics and file-local helpers only (src/kernels/README.md: no shared inline
// functions or templates instantiated with these flags).
#include <immintrin.h>

#include <cstring>

#include "kernels/transpose.h"

namespace leanembed::kernels {
namespace {

// dst[c * rows + r] for r in [r0, r1), c in [c0, c1), one element at a time.
template <class Out, int kInBytes, bool kWiden>
void scalar_rect(const std::byte* src, int64_t rows, int64_t cols, Out* dst, int64_t r0, int64_t r1, int64_t c0,
                 int64_t c1) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) {
      if constexpr (kWiden) {
        uint16_t bits;
        std::memcpy(&bits, src + 2 * (r * cols + c), 2);
        dst[c * rows + r] = static_cast<uint32_t>(bits) << 16;
      } else {
        std::memcpy(&dst[c * rows + r], src + kInBytes * (r * cols + c), kInBytes);
      }
    }
}

inline __m256 load8(const std::byte* p) { return _mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }

inline __m256 load8_bf16(const std::byte* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// 8 rows of 8 values at s (rows `ls` bytes apart) into 8 rows of 8 at d (rows `ld` elements apart).
template <bool kWiden>
inline void block8x8(const std::byte* s, int64_t ls, uint32_t* d, int64_t ld) {
  __m256 r0, r1, r2, r3, r4, r5, r6, r7;
  if constexpr (kWiden) {
    r0 = load8_bf16(s), r1 = load8_bf16(s + ls), r2 = load8_bf16(s + 2 * ls), r3 = load8_bf16(s + 3 * ls);
    r4 = load8_bf16(s + 4 * ls), r5 = load8_bf16(s + 5 * ls), r6 = load8_bf16(s + 6 * ls), r7 = load8_bf16(s + 7 * ls);
  } else {
    r0 = load8(s), r1 = load8(s + ls), r2 = load8(s + 2 * ls), r3 = load8(s + 3 * ls);
    r4 = load8(s + 4 * ls), r5 = load8(s + 5 * ls), r6 = load8(s + 6 * ls), r7 = load8(s + 7 * ls);
  }
  // t: pairs of rows interleaved; u: four rows' columns j, j + 4 (per 128-bit lane); o: columns.
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  auto* f = reinterpret_cast<float*>(d);
  _mm256_storeu_ps(f + 0 * ld, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(f + 1 * ld, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(f + 2 * ld, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(f + 3 * ld, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(f + 4 * ld, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(f + 5 * ld, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(f + 6 * ld, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(f + 7 * ld, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// 32-bit results from 4-byte (copy) or 2-byte bf16 (widened) sources.
template <bool kWiden>
void transpose32(const std::byte* src, int64_t rows, int64_t cols, uint32_t* dst) {
  constexpr int64_t kIn = kWiden ? 2 : 4;
  const int64_t ls = cols * kIn;
  const int64_t full_cols = cols / 8 * 8;
  int64_t r = 0;
  for (; r + 16 <= rows; r += 16) {
    const std::byte* s = src + r * ls;
    for (int64_t c = 0; c < full_cols; c += 8) {
      block8x8<kWiden>(s + c * kIn, ls, dst + c * rows + r, rows);
      block8x8<kWiden>(s + 8 * ls + c * kIn, ls, dst + c * rows + r + 8, rows);
    }
    scalar_rect<uint32_t, 4, kWiden>(src, rows, cols, dst, r, r + 16, full_cols, cols);
  }
  for (; r + 8 <= rows; r += 8) {
    for (int64_t c = 0; c < full_cols; c += 8) block8x8<kWiden>(src + r * ls + c * kIn, ls, dst + c * rows + r, rows);
    scalar_rect<uint32_t, 4, kWiden>(src, rows, cols, dst, r, r + 8, full_cols, cols);
  }
  scalar_rect<uint32_t, 4, kWiden>(src, rows, cols, dst, r, rows, 0, cols);
}

void copy32(const std::byte* src, int64_t rows, int64_t cols, uint32_t* dst) { transpose32<false>(src, rows, cols, dst); }

void bf16_to_f32(const std::byte* src, int64_t rows, int64_t cols, uint32_t* dst) {
  transpose32<true>(src, rows, cols, dst);
}

inline __m256i load8x2_16(const std::byte* lo, const std::byte* hi) {
  const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(lo));
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi));
  return _mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1);
}

// 16 rows of 8 16-bit values at s (rows `ls` bytes apart) into 8 rows of 16 at d (`ld` apart):
// lane 0 carries rows 0-7, lane 1 rows 8-15; every unpack works within lanes.
inline void block16x8(const std::byte* s, int64_t ls, uint16_t* d, int64_t ld) {
  const __m256i r0 = load8x2_16(s, s + 8 * ls), r1 = load8x2_16(s + ls, s + 9 * ls);
  const __m256i r2 = load8x2_16(s + 2 * ls, s + 10 * ls), r3 = load8x2_16(s + 3 * ls, s + 11 * ls);
  const __m256i r4 = load8x2_16(s + 4 * ls, s + 12 * ls), r5 = load8x2_16(s + 5 * ls, s + 13 * ls);
  const __m256i r6 = load8x2_16(s + 6 * ls, s + 14 * ls), r7 = load8x2_16(s + 7 * ls, s + 15 * ls);
  // a: rows 2i, 2i+1 interleaved (columns 0-3 / 4-7); b: four rows, two columns; c: one column.
  const __m256i a0 = _mm256_unpacklo_epi16(r0, r1), a1 = _mm256_unpackhi_epi16(r0, r1);
  const __m256i a2 = _mm256_unpacklo_epi16(r2, r3), a3 = _mm256_unpackhi_epi16(r2, r3);
  const __m256i a4 = _mm256_unpacklo_epi16(r4, r5), a5 = _mm256_unpackhi_epi16(r4, r5);
  const __m256i a6 = _mm256_unpacklo_epi16(r6, r7), a7 = _mm256_unpackhi_epi16(r6, r7);
  const __m256i b0 = _mm256_unpacklo_epi32(a0, a2), b1 = _mm256_unpackhi_epi32(a0, a2);
  const __m256i b2 = _mm256_unpacklo_epi32(a1, a3), b3 = _mm256_unpackhi_epi32(a1, a3);
  const __m256i b4 = _mm256_unpacklo_epi32(a4, a6), b5 = _mm256_unpackhi_epi32(a4, a6);
  const __m256i b6 = _mm256_unpacklo_epi32(a5, a7), b7 = _mm256_unpackhi_epi32(a5, a7);
  auto store = [&](int64_t c, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + c * ld), v); };
  store(0, _mm256_unpacklo_epi64(b0, b4));
  store(1, _mm256_unpackhi_epi64(b0, b4));
  store(2, _mm256_unpacklo_epi64(b1, b5));
  store(3, _mm256_unpackhi_epi64(b1, b5));
  store(4, _mm256_unpacklo_epi64(b2, b6));
  store(5, _mm256_unpackhi_epi64(b2, b6));
  store(6, _mm256_unpacklo_epi64(b3, b7));
  store(7, _mm256_unpackhi_epi64(b3, b7));
}

void copy16(const std::byte* src, int64_t rows, int64_t cols, uint16_t* dst) {
  const int64_t ls = cols * 2;
  const int64_t full_cols = cols / 8 * 8;
  int64_t r = 0;
  for (; r + 16 <= rows; r += 16) {
    for (int64_t c = 0; c < full_cols; c += 8) block16x8(src + r * ls + c * 2, ls, dst + c * rows + r, rows);
    scalar_rect<uint16_t, 2, false>(src, rows, cols, dst, r, r + 16, full_cols, cols);
  }
  scalar_rect<uint16_t, 2, false>(src, rows, cols, dst, r, rows, 0, cols);
}

}  // namespace

const TransposeKernels& transpose_kernels_avx2() {
  static constexpr TransposeKernels table{"avx2", copy32, copy16, bf16_to_f32};
  return table;
}

}  // namespace leanembed::kernels
