#include "runtime/interpreter/normalization.h"

#include <cmath>

#include "runtime/interpreter/broadcast.h"
#include "runtime/interpreter/type_dispatch.h"

namespace leanembed::interp {

std::vector<double> expand_row_parameter(const Tensor& param, std::span<const int64_t> norm_shape, const char* what) {
  bool fits = param.rank() <= static_cast<int64_t>(norm_shape.size());
  for (int64_t i = 1; fits && i <= param.rank(); ++i) {
    const int64_t d = param.dim(param.rank() - i);
    fits = d == 1 || d == norm_shape[norm_shape.size() - static_cast<std::size_t>(i)];
  }
  if (!fits)
    throw Error(ErrorCode::runtime, std::string(what) + " of shape " + shape_string(param.shape()) +
                                        " does not broadcast to the normalized shape " + shape_string(norm_shape));
  std::vector<double> out(static_cast<std::size_t>(shape_numel(norm_shape)));
  std::array<std::vector<int64_t>, 1> strides{broadcast_strides(param.shape(), norm_shape)};
  visit_float(param.dtype(), what, [&]<typename T>() {
    const T* p = param.data<T>().data();
    broadcast_for_each<1>(norm_shape, strides, [&](const int64_t* off, int64_t o, int64_t n, const int64_t* step) {
      for (int64_t i = 0; i < n; ++i) out[static_cast<std::size_t>(o + i)] = static_cast<double>(p[off[0] + i * step[0]]);
    });
  });
  return out;
}

template <typename T>
void layer_norm_rows(const T* x, int64_t rows, int64_t cols, const std::vector<double>& gamma,
                     const std::vector<double>& beta, double epsilon, T* y, float* mean_out, float* inv_std_out) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    double sum = 0.0;
    for (int64_t c = 0; c < cols; ++c) sum += static_cast<double>(xr[c]);
    const double mean = cols > 0 ? sum / static_cast<double>(cols) : 0.0;
    double sq = 0.0;
    for (int64_t c = 0; c < cols; ++c) {
      const double d = static_cast<double>(xr[c]) - mean;
      sq += d * d;
    }
    const double var = cols > 0 ? sq / static_cast<double>(cols) : 0.0;
    const double inv_std = 1.0 / std::sqrt(var + epsilon);
    for (int64_t c = 0; c < cols; ++c) {
      double v = (static_cast<double>(xr[c]) - mean) * inv_std * gamma[static_cast<std::size_t>(c)];
      if (!beta.empty()) v += beta[static_cast<std::size_t>(c)];
      yr[c] = static_cast<T>(v);
    }
    if (mean_out) mean_out[r] = static_cast<float>(mean);
    if (inv_std_out) inv_std_out[r] = static_cast<float>(inv_std);
  }
}

template void layer_norm_rows<float>(const float*, int64_t, int64_t, const std::vector<double>&,
                                     const std::vector<double>&, double, float*, float*, float*);
template void layer_norm_rows<double>(const double*, int64_t, int64_t, const std::vector<double>&,
                                      const std::vector<double>&, double, double*, float*, float*);

}  // namespace leanembed::interp
