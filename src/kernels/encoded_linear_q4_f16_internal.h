// The pieces of the q4 / f16 encoded linear layers shared by their files (internal to src/kernels,
// and for its tests and benchmarks):
//   encoded_linear_q4_f16.cpp       the factories, the view checks, the references (the spec), the
//                                   CPU checks and the kernel choice;
//   encoded_linear_q4_f16_avx2.cpp  the AVX2+FMA+F16C kernels and the AVX-512 ones (function-level
//                                   target attributes), called only after the checks below.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kernels/cpu_features.h"
#include "kernels/encoded_linear.h"

namespace leanembed::kernels {

// Call only when cpu_has_avx2_fma_f16c(), and with avx512 = true only when
// cpu_has_avx512f(). Same arguments as EncodedLinear::run() (already checked), on up to
// `threads` OpenMP threads.
void q4_run_avx2(const BlockQ4WeightsView& w, int64_t m, const float* x, int64_t ldx, float* y,
                 int64_t ldy, const float* bias, int threads, bool avx512);
void f16_run_avx2(const F16WeightsView& w, int64_t m, const float* x, int64_t ldx, float* y,
                  int64_t ldy, const float* bias, int threads, bool avx512);

// A layer on the named kernel ("ref", "avx2", "avx512"), for tests and benchmarks; throws
// Error(invalid_argument) if this CPU cannot run it.
std::unique_ptr<EncodedLinear> encoded_linear_q4_kernel(const BlockQ4WeightsView& w, const std::string& kernel);
std::unique_ptr<EncodedLinear> encoded_linear_f16_kernel(const F16WeightsView& w, const std::string& kernel);

}  // namespace leanembed::kernels
