// The numeric part of the quantizer: a float weight matrix -> integers + scales (+ zero points), each
// scheme with a clipping search that minimises the weighted squared error of the dequantized
// weights. No graph knowledge here (quantize.cpp does the rewriting).
//
// Layout: `w` is MatMul's B, [K, N] row-major (K inputs, N outputs); a "column" is one output
// channel (N of them). `importance` (size K, or empty = all 1) weighs each input row's error: the
// output error of column j is sum_k x_k * (w_kj - dequant(w_kj)), so rows whose activations are
// large should be kept more precisely; quantize.cpp passes E[x_k^2] estimates.
//
// Search: with importance given, for each column (8-bit) or block (4-bit) the representable range
// is shrunk from the min/max by a grid of factors and the candidate with the least
// sum_k importance_k * err_k^2 is kept. Without importance no range is clipped (measured on the
// MiniLM fixture: clipping and a least-squares scale refinement both lower MSE yet make the worst
// sentences worse, because the weights they round hardest are the outliers that matter); 4-bit
// blocks still choose between min..max over 15 steps (zero point anywhere) and ONNX Runtime's
// symmetric form (the extreme at +-8 steps, one level finer) by their squared error.
//
// Memory: each function allocates its outputs (sizes stated per field) plus a transposed copy of
// `w` (K * N floats). Threading: reentrant.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace leanembed::quantize {

// Per output channel, asymmetric uint8: w ~ (q - zero_point[j]) * scale[j].
struct Uint8Columns {
  std::vector<uint8_t> q;            // K * N, same layout as w
  std::vector<float> scale;          // N
  std::vector<uint8_t> zero_point;   // N
};
Uint8Columns quantize_columns_uint8(std::span<const float> w, int64_t K, int64_t N, std::span<const float> importance);

// Per output channel, symmetric int8 in [-127, 127]: w ~ q * scale[j] (zero point 0).
struct Int8Columns {
  std::vector<int8_t> q;             // K * N
  std::vector<float> scale;          // N
};
Int8Columns quantize_columns_int8(std::span<const float> w, int64_t K, int64_t N, std::span<const float> importance);

// com.microsoft MatMulNBits' 4-bit layout: per output channel n, K is cut into nb = ceil(K / block)
// blocks of `block` rows (the last padded with zeros); w[k][n] ~ (q - zp[n][b]) * scale[n][b].
struct Q4Blocks {
  int64_t blocks_per_column = 0;     // nb
  std::vector<uint8_t> packed;       // N * nb * block / 2: two 4-bit values per byte, even k in the low nibble
  std::vector<float> scales;         // N * nb
  std::vector<uint8_t> zero_points;  // N * ceil(nb / 2): 4-bit zero points, even block in the low nibble
};
// block: a power of two >= 16. Throws Error(invalid_argument) otherwise.
Q4Blocks quantize_blocks_q4(std::span<const float> w, int64_t K, int64_t N, int64_t block, std::span<const float> importance);

// What the GPTQ forms need: H = X^T X of the calibration inputs (K * K, gram_matrix in gptq.h), the
// dampening and the order (gptq_round).
struct GptqSettings {
  std::span<const double> h;
  double damp = 0.01;
  bool act_order = false;
};
// The same three forms rounded with GPTQ's error compensation (gptq.h). 8-bit: each column's scale and
// zero point are those of the plain function above (same search), only the integers differ.
// q4: each block's parameters are searched on the compensated values when GPTQ reaches the block.
// Extra memory: a float copy of w and, for 8-bit, K * N floats. Time: K^2 N / 2 multiply-adds.
Uint8Columns quantize_columns_uint8_gptq(std::span<const float> w, int64_t K, int64_t N,
                                         std::span<const float> importance, const GptqSettings& gptq);
Int8Columns quantize_columns_int8_gptq(std::span<const float> w, int64_t K, int64_t N,
                                       std::span<const float> importance, const GptqSettings& gptq);
Q4Blocks quantize_blocks_q4_gptq(std::span<const float> w, int64_t K, int64_t N, int64_t block,
                                 std::span<const float> importance, const GptqSettings& gptq);

// com.microsoft MatMulNBits with bits 8: per output channel n, K cut into nb = ceil(K / block)
// blocks; w[k][n] ~ (q - zp[n][b]) * scale[n][b], q and zp uint8, min..max over 255 steps per block.
struct Q8Blocks {
  int64_t blocks_per_column = 0;     // nb
  std::vector<uint8_t> packed;       // N * nb * block: one byte per value (past K: the zero point)
  std::vector<float> scales;         // N * nb
  std::vector<uint8_t> zero_points;  // N * nb
};
// Rounded to nearest, or with GPTQ's compensation when `gptq` is given (each block's range taken from
// the compensated values). block: a power of two >= 16, else Error(invalid_argument).
Q8Blocks quantize_blocks_q8(std::span<const float> w, int64_t K, int64_t N, int64_t block, const GptqSettings* gptq);

// float -> IEEE half, round to nearest even; values beyond the half range are clamped to +-65504
// (counted in *clamped when given), NaN stays NaN.
uint16_t float_to_half(float f);
std::vector<uint16_t> to_half(std::span<const float> values, std::size_t* clamped = nullptr);

}  // namespace leanembed::quantize
