// The batched matrix product shared by MatMul, Gemm and com.microsoft FusedMatMul.
#pragma once

#include "runtime/interpreter/tensor.h"

namespace leanembed::interp {

// alpha * op(A) @ op(B) with numpy matmul semantics: a 1-D A is a row vector [1, K] and a 1-D B a
// column [K, 1] (the added dim is removed from the result); leading (batch) dims broadcast. op
// transposes the last two dims when trans_a / trans_b is set (needs rank >= 2). A and B: float32
// or float64, same type. Sums accumulate in double, rows in i-k-j order. Allocates only the result
// and one row of N doubles. Throws Error(runtime) naming the shapes when they do not fit.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false, double alpha = 1.0);

}  // namespace leanembed::interp
