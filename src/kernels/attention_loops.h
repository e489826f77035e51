// The loops of one attention head (attention.h), included by attention_reference.cpp,
// attention_avx2.cpp and attention_avx512.cpp, each compiled for its ISA: the compiler vectorises
// them for that file's flags. Everything here is in an anonymous namespace (each file gets its own
// copy, built with its own flags) and calls no library function that other files also instantiate
// (no std::min), so no wider-ISA copy of a shared inline function can reach baseline code.
#pragma once

#include <cstdint>

#include "kernels/attention.h"

namespace leanembed::kernels {
namespace {

constexpr int64_t kAttentionRows = 4;    // query rows per block
constexpr int64_t kAttentionLanes = 16;  // keys (scores) or head dims (context) per block

int64_t attention_last_row(int64_t i, int64_t L) { return i < L - 1 ? i : L - 1; }

void attention_head_loops(int64_t L, int64_t d, const float* q, const float* k, const float* v, int64_t ld,
                          float scale, float* ctx, int64_t ld_ctx, float* scratch, const RowKernels& rows) {
  constexpr int64_t kRows = kAttentionRows, kLanes = kAttentionLanes;
  if (L <= 0) return;
  const int64_t Lp = (L + kLanes - 1) / kLanes * kLanes;
  float* scores = scratch;       // [L, Lp]
  float* kt = scratch + L * Lp;  // [d, Lp]: K^T, zero-padded to Lp keys
  for (int64_t c = 0; c < d; ++c) {
    for (int64_t j = 0; j < L; ++j) kt[c * Lp + j] = k[j * ld + c];
    for (int64_t j = L; j < Lp; ++j) kt[c * Lp + j] = 0.0f;
  }

  // scores[i, j] = q_i . k_j, blocks of kRows rows x kLanes keys held in accumulators. Rows past
  // the end repeat the last row (computed, not stored).
  for (int64_t i0 = 0; i0 < L; i0 += kRows) {
    const float* qr[kRows];
    for (int64_t r = 0; r < kRows; ++r) qr[r] = q + attention_last_row(i0 + r, L) * ld;
    for (int64_t j0 = 0; j0 < Lp; j0 += kLanes) {
      float acc[kRows][kLanes] = {};
      for (int64_t c = 0; c < d; ++c) {
        const float* kc = kt + c * Lp + j0;
        for (int64_t r = 0; r < kRows; ++r) {
          const float a = qr[r][c];
          for (int64_t x = 0; x < kLanes; ++x) acc[r][x] += a * kc[x];
        }
      }
      for (int64_t r = 0; r < kRows && i0 + r < L; ++r)
        for (int64_t x = 0; x < kLanes; ++x) scores[(i0 + r) * Lp + j0 + x] = acc[r][x];
    }
  }
  rows.softmax(L, L, scores, Lp, scale, nullptr);

  // ctx[i, :] = sum_j P[i, j] v_j, blocks of kRows rows x kLanes dims; then the dims left over.
  const int64_t d_blocked = d / kLanes * kLanes;
  for (int64_t i0 = 0; i0 < L; i0 += kRows) {
    const float* pr[kRows];
    for (int64_t r = 0; r < kRows; ++r) pr[r] = scores + attention_last_row(i0 + r, L) * Lp;
    for (int64_t c0 = 0; c0 < d_blocked; c0 += kLanes) {
      float acc[kRows][kLanes] = {};
      for (int64_t j = 0; j < L; ++j) {
        const float* vj = v + j * ld + c0;
        for (int64_t r = 0; r < kRows; ++r) {
          const float p = pr[r][j];
          for (int64_t x = 0; x < kLanes; ++x) acc[r][x] += p * vj[x];
        }
      }
      for (int64_t r = 0; r < kRows && i0 + r < L; ++r)
        for (int64_t x = 0; x < kLanes; ++x) ctx[(i0 + r) * ld_ctx + c0 + x] = acc[r][x];
    }
    for (int64_t r = 0; r < kRows && i0 + r < L; ++r)
      for (int64_t c = d_blocked; c < d; ++c) {
        float sum = 0.0f;
        for (int64_t j = 0; j < L; ++j) sum += pr[r][j] * v[j * ld + c];
        ctx[(i0 + r) * ld_ctx + c] = sum;
      }
  }
}

}  // namespace
}  // namespace leanembed::kernels
