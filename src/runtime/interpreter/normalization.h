// Row normalisation shared by LayerNormalization and com.microsoft SkipLayerNormalization.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/interpreter/tensor.h"

namespace leanembed::interp {

// `param` (Scale or B, same dtype as the data) broadcast unidirectionally to `norm_shape` and
// widened to double: size numel(norm_shape). Throws Error(runtime) naming `what` if it does not
// broadcast.
std::vector<double> expand_row_parameter(const Tensor& param, std::span<const int64_t> norm_shape, const char* what);

// For each of `rows` rows of `cols` values of x (float32 or float64 T): mean, variance as
// mean((v - mean)^2), inv_std = 1/sqrt(var + epsilon), y = (v - mean) * inv_std * gamma + beta
// (beta may be empty). Statistics in double. mean_out / inv_std_out (size rows) may be null.
template <typename T>
void layer_norm_rows(const T* x, int64_t rows, int64_t cols, const std::vector<double>& gamma,
                     const std::vector<double>& beta, double epsilon, T* y, float* mean_out, float* inv_std_out);

}  // namespace leanembed::interp
