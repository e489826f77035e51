// The row-kernel tables and the pieces the tests need (internal to src/kernels). Each ISA's table
// lives in its own file, compiled with that ISA's flags; only dispatch.cpp decides which one runs.
#pragma once

#include <cstdint>

#include "kernels/cpu_features.h"
#include "kernels/kernels.h"

namespace leanembed::kernels {

// row_kernels_avx2.cpp (compiled with -mavx2 -mfma). Call only when cpu_has_avx2_fma().
const RowKernels& row_kernels_avx2();


// The vectorised math behind the AVX2 table, exposed for the accuracy tests: y[i] = f(x[i]) for
// i < n. x and y may be the same array. Call only when cpu_has_avx2_fma().
void erf_avx2(const float* x, float* y, int64_t n);  // max abs error vs std::erf <= 1e-6
void exp_avx2(const float* x, float* y, int64_t n);  // rel error <= ~2e-7 for x in [-87, 88]

}  // namespace leanembed::kernels
