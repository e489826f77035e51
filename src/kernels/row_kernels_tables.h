// The row-kernel tables and the pieces the tests need (internal to src/kernels). Each ISA's table
// lives in its own file, compiled with that ISA's flags; only dispatch.cpp decides which one runs.
#pragma once

#include <cstdint>

#include "kernels/cpu_features.h"
#include "kernels/kernels.h"

namespace leanembed::kernels {

// row_kernels_avx2.cpp (compiled with -mavx2 -mfma). Call only when cpu_has_avx2_fma().
const RowKernels& row_kernels_avx2();
// row_kernels_avx512.cpp (compiled with -mavx512f added). Call only when cpu_has_avx512f().
const RowKernels& row_kernels_avx512();

// The vectorised math behind those tables (row_kernels_simd.h), exposed for the accuracy tests:
// y[i] = f(x[i]) for i < n. x and y may be the same array. Same CPU conditions as the tables.
void erf_avx2(const float* x, float* y, int64_t n);  // max abs error vs std::erf <= 1e-6
void exp_avx2(const float* x, float* y, int64_t n);  // rel error <= ~2e-7 for x in [-87, 88]
void erf_avx512(const float* x, float* y, int64_t n);
void exp_avx512(const float* x, float* y, int64_t n);

}  // namespace leanembed::kernels
