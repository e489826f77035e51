// Self-attention of one head of one sequence, unpadded (no mask: every token is real): a kernel
// family of its own (dispatch.h). The same register-blocked loops — 4 query rows x 16 keys (scores)
// and 4 rows x 16 dims (context) of accumulators, each accumulator a 16-float GCC vector value
// (attention_loops.h) — are compiled three times: attention_reference.cpp for baseline x86-64,
// attention_avx2.cpp with -mavx2 -mfma, attention_avx512.cpp with -mavx512f; kernel_config() picks one.
#pragma once

#include <cstdint>

#include "kernels/kernels.h"

namespace leanembed::kernels {

struct AttentionKernels {
  const char* isa;  // "ref", "avx2", "avx512"
  // For the L tokens of one sequence and one head of size d:
  //   P = softmax(scale * Q K^T) (rows over keys), ctx = P V
  // q, k, v point at the head's first element of the sequence's first row; rows are `ld` floats
  // apart (ld = hidden for the Q, K and V blocks of the encoder's qkv buffer). ctx (row stride
  // ld_ctx) may be q itself: every row of Q is read (for the scores) before any row of ctx is
  // written. scratch holds at least attention_scratch_floats(L, d) floats. Runs on the calling
  // thread; allocates nothing. `rows` supplies the softmax.
  void (*head)(int64_t L, int64_t d, const float* q, const float* k, const float* v, int64_t ld, float scale,
               float* ctx, int64_t ld_ctx, float* scratch, const RowKernels& rows);
};

// Floats of scratch a head needs for a sequence of L tokens and heads of size d:
// (L + d) * round_up(L, 16) (scores [L, Lp] and K^T [d, Lp], Lp = L rounded up to 16 keys).
int64_t attention_scratch_floats(int64_t L, int64_t d);

// The table in effect (kernel_config().attention).
const AttentionKernels& attention_kernels();

// Each ISA's table (for dispatch.cpp and the tests): the avx2 one only when cpu_has_avx2_fma(),
// the avx512 one only when cpu_has_avx512f().
const AttentionKernels& attention_kernels_reference();
const AttentionKernels& attention_kernels_avx2();
const AttentionKernels& attention_kernels_avx512();

}  // namespace leanembed::kernels
