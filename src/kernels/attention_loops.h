// The loops of one attention head (attention.h), included by attention_reference.cpp,
// attention_avx2.cpp and attention_avx512.cpp, each compiled for its ISA: the vector type below is
// lowered to that file's instructions. Everything here is in an anonymous namespace (each file gets
// its own copy, built with its own flags) and calls no library function that other files also
// instantiate (no std::min), so no wider-ISA copy of a shared inline function can reach baseline
// code.
#pragma once

#include <cstdint>

#include "kernels/attention.h"

namespace leanembed::kernels {
namespace {

constexpr int64_t kAttentionRows = 4;    // query rows per block
constexpr int64_t kAttentionLanes = 16;  // keys (scores) or head dims (context) per block

int64_t attention_last_row(int64_t i, int64_t L) { return i < L - 1 ? i : L - 1; }

// The accumulators: a block row of kAttentionLanes floats is kAttentionParts GCC vector values, as
// wide as the file's flags make a register (16 floats with AVX-512F, 8 with AVX, 4 on baseline
// x86-64), so each part lives in one register. Four rows of them are four named values, not an
// array: GCC kept an array of accumulators in memory and reloaded one each step (a store-to-load
// chain that ran the loops at a fifth of their speed); a 64-byte vector type on AVX2 or SSE was
// lowered through general-purpose registers.
#if defined(__AVX512F__)
constexpr int kAttentionVectorFloats = 16;
#elif defined(__AVX__)
constexpr int kAttentionVectorFloats = 8;
#else
constexpr int kAttentionVectorFloats = 4;
#endif
constexpr int kAttentionParts = kAttentionLanes / kAttentionVectorFloats;
typedef float AttentionVector __attribute__((vector_size(kAttentionVectorFloats * sizeof(float))));

struct AttentionRow {
  AttentionVector part[kAttentionParts];
};

// a += s * p[0 .. kAttentionLanes)
void attention_fma(AttentionRow& a, float s, const float* p) {
#pragma GCC unroll 4
  for (int i = 0; i < kAttentionParts; ++i) {
    AttentionVector v;
    __builtin_memcpy(&v, p + i * kAttentionVectorFloats, sizeof v);
    a.part[i] += s * v;
  }
}

void attention_store(float* p, const AttentionRow& a) {
#pragma GCC unroll 4
  for (int i = 0; i < kAttentionParts; ++i)
    __builtin_memcpy(p + i * kAttentionVectorFloats, &a.part[i], sizeof a.part[i]);
}

// Stores the accumulators of rows i0..i0+3 that exist (i0 < L) to out, rows `ld` floats apart.
void attention_store_rows(float* out, int64_t ld, int64_t i0, int64_t L, const AttentionRow& a0,
                          const AttentionRow& a1, const AttentionRow& a2, const AttentionRow& a3) {
  attention_store(out, a0);
  if (i0 + 1 < L) attention_store(out + ld, a1);
  if (i0 + 2 < L) attention_store(out + 2 * ld, a2);
  if (i0 + 3 < L) attention_store(out + 3 * ld, a3);
}

void attention_head_loops(int64_t L, int64_t d, const float* q, const float* k, const float* v, int64_t ld,
                          float scale, float* ctx, int64_t ld_ctx, float* scratch, const RowKernels& rows) {
  static_assert(kAttentionRows == 4, "the loops below hold four rows of accumulators");
  constexpr int64_t kLanes = kAttentionLanes;
  if (L <= 0) return;
  const int64_t Lp = (L + kLanes - 1) / kLanes * kLanes;
  float* scores = scratch;       // [L, Lp]
  float* kt = scratch + L * Lp;  // [d, Lp]: K^T, zero-padded to Lp keys
  for (int64_t c = 0; c < d; ++c) {
    for (int64_t j = 0; j < L; ++j) kt[c * Lp + j] = k[j * ld + c];
    for (int64_t j = L; j < Lp; ++j) kt[c * Lp + j] = 0.0f;
  }

  // scores[i, j] = q_i . k_j, blocks of 4 rows x kLanes keys held in accumulators. Rows past the
  // end repeat the last row (computed, not stored).
  for (int64_t i0 = 0; i0 < L; i0 += kAttentionRows) {
    const float* q0 = q + i0 * ld;
    const float* q1 = q + attention_last_row(i0 + 1, L) * ld;
    const float* q2 = q + attention_last_row(i0 + 2, L) * ld;
    const float* q3 = q + attention_last_row(i0 + 3, L) * ld;
    for (int64_t j0 = 0; j0 < Lp; j0 += kLanes) {
      AttentionRow a0 = {}, a1 = {}, a2 = {}, a3 = {};
      for (int64_t c = 0; c < d; ++c) {
        const float* kc = kt + c * Lp + j0;
        attention_fma(a0, q0[c], kc);
        attention_fma(a1, q1[c], kc);
        attention_fma(a2, q2[c], kc);
        attention_fma(a3, q3[c], kc);
      }
      attention_store_rows(scores + i0 * Lp + j0, Lp, i0, L, a0, a1, a2, a3);
    }
  }
  rows.softmax(L, L, scores, Lp, scale, nullptr);

  // ctx[i, :] = sum_j P[i, j] v_j, blocks of 4 rows x kLanes dims; then the dims left over.
  const int64_t d_blocked = d / kLanes * kLanes;
  for (int64_t i0 = 0; i0 < L; i0 += kAttentionRows) {
    const float* p0 = scores + i0 * Lp;
    const float* p1 = scores + attention_last_row(i0 + 1, L) * Lp;
    const float* p2 = scores + attention_last_row(i0 + 2, L) * Lp;
    const float* p3 = scores + attention_last_row(i0 + 3, L) * Lp;
    for (int64_t c0 = 0; c0 < d_blocked; c0 += kLanes) {
      AttentionRow a0 = {}, a1 = {}, a2 = {}, a3 = {};
      for (int64_t j = 0; j < L; ++j) {
        const float* vj = v + j * ld + c0;
        attention_fma(a0, p0[j], vj);
        attention_fma(a1, p1[j], vj);
        attention_fma(a2, p2[j], vj);
        attention_fma(a3, p3[j], vj);
      }
      attention_store_rows(ctx + i0 * ld_ctx + c0, ld_ctx, i0, L, a0, a1, a2, a3);
    }
    const float* pr[kAttentionRows] = {p0, p1, p2, p3};
    for (int64_t r = 0; r < kAttentionRows && i0 + r < L; ++r)
      for (int64_t c = d_blocked; c < d; ++c) {
        float sum = 0.0f;
        for (int64_t j = 0; j < L; ++j) sum += pr[r][j] * v[j * ld + c];
        ctx[(i0 + r) * ld_ctx + c] = sum;
      }
  }
}

}  // namespace
}  // namespace leanembed::kernels
