// Self-attention of one head of one sequence, unpadded (no mask: every token is real).
#pragma once

#include <cstdint>

#include "kernels/kernels.h"

namespace leanembed::runtime::encoder {

// Floats of scratch attention_head needs for a sequence of L tokens and heads of size d:
// (L + d) * round_up(L, 16).
int64_t attention_scratch_floats(int64_t L, int64_t d);

// For the L tokens of one sequence and one head of size d:
//   P = softmax(scale * Q K^T) (rows over keys), ctx = P V
// q, k, v point at the head's first element of the sequence's first row; rows are `ld` floats
// apart (ld = hidden for the Q, K and V blocks of the qkv buffer). ctx (row stride ld_ctx) may be q itself: every
// row of Q is read (for the scores) before any row of ctx is written. scratch holds at least
// attention_scratch_floats(L, d) floats. Runs on the calling thread; allocates nothing.
// `rows` is the row-kernel table (softmax).
void attention_head(int64_t L, int64_t d, const float* q, const float* k, const float* v, int64_t ld,
                    float scale, float* ctx, int64_t ld_ctx, float* scratch, const kernels::RowKernels& rows);

}  // namespace leanembed::runtime::encoder
