// The scalar reference row kernels: the spec every faster table is tested against. Plain loops,
// double accumulation; rows are split over threads like the fast tables so both scale alike.
#include <cmath>
#include <cstdint>

#include "kernels/kernels.h"
#include "kernels/row_parallel.h"

namespace leanembed::kernels {
namespace {

// The value LayerNorm normalises: x + residual + bias, added left to right in fp32 as the
// decomposed ONNX graph does.
inline float layer_norm_input(const float* x, const float* residual, const float* bias, int64_t r,
                              int64_t cols, int64_t i) {
  float v = x[r * cols + i];
  if (residual) v += residual[r * cols + i];
  if (bias) v += bias[i];
  return v;
}

void layer_norm_ref(int64_t rows, int64_t cols, const float* x, const float* residual,
                    const float* bias, const float* gamma, const float* beta, float eps, float* y) {
  if (rows <= 0 || cols <= 0) return;
  for_each_row_block(rows, cols, [=](int64_t first, int64_t end) {
    for (int64_t r = first; r < end; ++r) {
      double sum = 0;
      for (int64_t i = 0; i < cols; ++i) sum += layer_norm_input(x, residual, bias, r, cols, i);
      const double mean = sum / static_cast<double>(cols);
      double sq = 0;
      for (int64_t i = 0; i < cols; ++i) {
        double d = layer_norm_input(x, residual, bias, r, cols, i) - mean;
        sq += d * d;
      }
      const double rstd = 1.0 / std::sqrt(sq / static_cast<double>(cols) + static_cast<double>(eps));
      // Reads of x/residual at index i happen before the write of y at i, so y may alias either.
      for (int64_t i = 0; i < cols; ++i) {
        double d = layer_norm_input(x, residual, bias, r, cols, i) - mean;
        y[r * cols + i] = static_cast<float>(d * rstd * gamma[i] + beta[i]);
      }
    }
  });
}

void bias_gelu_erf_ref(int64_t rows, int64_t cols, float* x, int64_t ldx, const float* bias) {
  if (rows <= 0 || cols <= 0) return;
  for_each_row_block(rows, cols, [=](int64_t first, int64_t end) {
    for (int64_t r = first; r < end; ++r) {
      float* row = x + r * ldx;
      for (int64_t i = 0; i < cols; ++i) {
        const double v = bias ? row[i] + bias[i] : row[i];
        // 1 + erf(v / sqrt 2) written as erfc(-v / sqrt 2): the same value without the cancellation
        // that would leave the left tail (v < -5) with no correct digits even in double.
        row[i] = static_cast<float>(0.5 * v * std::erfc(-v * M_SQRT1_2));
      }
    }
  });
}

void bias_add_ref(int64_t rows, int64_t cols, float* x, int64_t ldx, const float* bias) {
  if (rows <= 0 || cols <= 0) return;
  for_each_row_block(rows, cols, [=](int64_t first, int64_t end) {
    for (int64_t r = first; r < end; ++r)
      for (int64_t i = 0; i < cols; ++i) x[r * ldx + i] += bias[i];
  });
}

void softmax_ref(int64_t rows, int64_t cols, float* x, int64_t ldx, float scale, const float* mask) {
  if (rows <= 0 || cols <= 0) return;
  for_each_row_block(rows, cols, [=](int64_t first, int64_t end) {
    for (int64_t r = first; r < end; ++r) {
      float* row = x + r * ldx;
      auto value = [&](int64_t i) {
        return static_cast<double>(row[i]) * scale + (mask ? mask[i] : 0.0);
      };
      double max = -INFINITY;
      for (int64_t i = 0; i < cols; ++i) max = std::fmax(max, value(i));
      double sum = 0;
      for (int64_t i = 0; i < cols; ++i) sum += std::exp(value(i) - max);
      for (int64_t i = 0; i < cols; ++i) row[i] = static_cast<float>(std::exp(value(i) - max) / sum);
    }
  });
}

const RowKernels kReference{"ref", layer_norm_ref, bias_gelu_erf_ref, bias_add_ref, softmax_ref};

}  // namespace

const RowKernels& row_kernels_reference() { return kReference; }

}  // namespace leanembed::kernels
