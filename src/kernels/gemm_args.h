// Checks shared by every Matmul implementation (internal to src/kernels).
#pragma once

#include "kernels/kernels.h"

namespace leanembed::kernels {

// Throws Error(invalid_argument) naming `who` and the offending field if `args` does not describe a
// valid product: negative sizes, a missing pointer for a non-empty operand, or a row stride too
// small for the stored shape (A is stored m x k, or k x m when trans_a; B is k x n, or n x k when
// trans_b; C is m x n).
void gemm_args_check(const GemmArgs& args, const char* who);

// The k == 0 product: C = beta * C + bias (C is not read when beta == 0). Plain loops.
void gemm_empty_k(const GemmArgs& args);

}  // namespace leanembed::kernels
