// The row-kernel tables and the pieces the start-up selection and the tests need (internal to
// src/kernels). Each ISA's table lives in its own file, compiled with that ISA's flags; only
// row_kernels_select.cpp decides which one runs.
#pragma once

#include <cstdint>

#include "kernels/cpu_features.h"
#include "kernels/kernels.h"

namespace leanembed::kernels {

// row_kernels_avx2.cpp (compiled with -mavx2 -mfma). Call only when cpu_has_avx2_fma().
const RowKernels& row_kernels_avx2();

// What row_kernels() picks on its first call: the table LEANEMBED_ISA names ("auto", "avx2",
// "ref"; unset or empty = "auto"), else the best for this CPU. Reads the environment on every call.
// Throws Error(invalid_argument) if LEANEMBED_ISA names an unknown table or one this CPU cannot run.
const RowKernels& row_kernels_startup_choice();


// The vectorised math behind the AVX2 table, exposed for the accuracy tests: y[i] = f(x[i]) for
// i < n. x and y may be the same array. Call only when cpu_has_avx2_fma().
void erf_avx2(const float* x, float* y, int64_t n);  // max abs error vs std::erf <= 1e-6
void exp_avx2(const float* x, float* y, int64_t n);  // rel error <= ~2e-7 for x in [-87, 88]

}  // namespace leanembed::kernels
