// GPTQ-style error compensation for weight rounding (Frantar et al., "GPTQ: Accurate Post-Training
// Quantization for Generative Pre-trained Transformers", 2022), written for MatMul's B = [K, N].
//
// The output error of a MatMul whose weight W is replaced by W' is X (W - W'); over calibration
// inputs X its squared norm is trace((W - W')^T H (W - W')) with H = X^T X (K x K). Rounding the
// input rows k = 0, 1, ... in order, GPTQ moves each row's rounding error onto the rows not yet
// rounded, so that they compensate it for the inputs seen: with U the upper Cholesky factor of H^-1
// (U^T U = H^-1), after row k is rounded, rows j > k get  w_j -= U[k][j] / U[k][k] * (w_k - w'_k).
// H is dampened (H + lambda I, lambda = damp * mean diagonal) since a few hundred calibration tokens
// do not fix all K directions; channels never active in calibration get H[k][k] = 1.
//
// The rounding itself (scales, zero points, integers) is the caller's, through GptqRounder; group
// boundaries (MatMulNBits' blocks) let it choose each group's scale from the already-compensated
// weights, as GPTQ does.
// Threading: reentrant. Errors: Error(invalid_argument) for sizes that do not match.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace leanembed::quantize {

// H = sum over rows of x x^T for `rows` (count * K floats, one calibration token's input per row),
// each channel first divided by scale[k] when `scale` is given (size K). Returns K * K doubles.
// Memory: K * K doubles (the result). Time: count * K^2 / 2 multiply-adds.
std::vector<double> gram_matrix(std::span<const float> rows, int64_t K, std::span<const float> scale = {});

// U (K * K, row-major, upper triangular) with U^T U = (H + lambda I)^-1 as described above.
// `h` is K * K symmetric. Throws Error(invalid_argument) when a value is not finite, or when H is not
// positive definite even after dampening. Memory: two K * K double arrays. Time: K^3 / 3
// multiply-adds.
std::vector<double> inverse_hessian_factor(std::span<const double> h, int64_t K, double damp = 0.01);

// What GPTQ asks of a rounding scheme.
class GptqRounder {
 public:
  virtual ~GptqRounder() = default;
  // Called before the rows [first, first + rows) are rounded, with their current (compensated)
  // values `w` (rows * N): the place to choose the group's scales.
  virtual void begin_group(int64_t first, int64_t rows, std::span<const float> w) = 0;
  // Rounds row k: `row` (N values) holds its current values; replace them by the dequantized ones
  // (and keep the integers).
  virtual void round_row(int64_t k, std::span<float> row) = 0;
};

// Rounds w ([K, N] row-major, modified in place: ends as the dequantized weights) row by row with
// error compensation from `h` (K * K, X^T X of the calibration inputs; dampened by `damp`). Rows are
// handed to the rounder in batches of `group` (the last may be shorter): begin_group(first, rows)
// with the current values, then round_row for each. In order 0..K-1; with act_order by decreasing
// H[k][k] (the inputs with the most energy first, their error compensated by all the others), and
// then every group's begin_group is called first, on the uncompensated weights ("static groups",
// so that the groups stay MatMulNBits' consecutive blocks). Memory: K * N floats + 3 K * K doubles.
// Time: K^3 / 3 + K^2 N / 2 multiply-adds.
void gptq_round(std::span<float> w, int64_t K, int64_t N, std::span<const double> h, double damp, int64_t group,
                bool act_order, GptqRounder& rounder);

}  // namespace leanembed::quantize
