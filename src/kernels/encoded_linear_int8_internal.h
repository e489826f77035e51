// The pieces of the int8 encoded linear layer shared by its files (internal to src/kernels):
//   encoded_linear_int8.cpp         the factory, the view checks, the reference (the spec) and the
//                                   scalar row functions (quantizer, epilogue: the ref table);
//   encoded_linear_int8_onednn.cpp  the fast layer: oneDNN u8 x s8 -> s32 matmul + our epilogue,
//                                   with the row functions of kernel_config().int8_rows (dispatch.h);
//   encoded_linear_int8_avx512.cpp  AVX-512 row quantizer and epilogue (function-level target
//                                   attributes; the avx512 table, used only when cpu_has_avx512_int8()).
// The scalar and AVX-512 row functions give bit-identical results (same IEEE operations in the
// same order), so fast and reference agree exactly.
#pragma once

#include <cstdint>
#include <memory>

#include "kernels/cpu_features.h"
#include "kernels/encoded_linear.h"

namespace leanembed::kernels {

// Largest k the int8 layers accept: every sum of k products (q - zp_x) * (W - zp_w), each at most
// 255 * 255 in magnitude, then fits in int32 (255 * 255 * 33025 < 2^31).
inline constexpr int64_t kInt8MaxK = 33025;

// Throws Error(invalid_argument) naming the field if `w` is inconsistent: null data or scales,
// k or n < 1, k > kInt8MaxK, k * n overflowing, scale_count not 1 or n, zero_point_count not 0, 1
// or n, zero_points null with a count > 0 or set with a count of 0.
void int8_view_check(const Int8WeightsView& w);

// One activation row's quantization: q = saturate(round-half-even(x / scale) + zero_point).
struct Int8RowQuant {
  float scale = 0.0f;      // (max(0, max x) - min(0, min x)) / 255
  int32_t zero_point = 0;  // round-half-even(-min / scale) clamped to [0, 255]; 0 when scale == 0
  int32_t sum = 0;         // sum of the row's q values (for the zero-point compensation)
};

// scale and zero_point (sum = 0) from a row's running minimum lo <= 0 and maximum hi >= 0.
Int8RowQuant int8_row_params(float lo, float hi);

// Quantizes v[i] = x[i] (times c[i] when c is not null) for i < k into q[0, k) (x, c: any float
// alignment); returns scale, zero point and sum of q. NaN values are skipped by the min / max and
// quantize to 0; results stay finite integers.
Int8RowQuant int8_quantize_row_scalar(const float* x, int64_t k, uint8_t* q, const float* c = nullptr);
Int8RowQuant int8_quantize_row_avx512(const float* x, int64_t k, uint8_t* q, const float* c = nullptr);

// The epilogue of one output row: for j < n,
//   s = acc[j] (+ acc2[j] if acc2) - zp_w[j] * q_sum - zp_x * col_sum[j]   (int32, exact)
//   y[j] = scale_x * scale_w[j] * float(s) + (bias ? bias[j] : 0)
// where acc = sum_i q[i] * W[i, j] and col_sum[j] = sum_i (W[i, j] - zp_w[j]) (both over the
// signed weights). acc, acc2, y: n values, 4-byte aligned.
struct Int8EpilogueRow {
  int64_t n = 0;
  const int32_t* acc = nullptr;
  const int32_t* acc2 = nullptr;
  float scale_x = 0.0f;
  int32_t zp_x = 0, q_sum = 0;
  const float* scale_w = nullptr;  // n values
  const int32_t* zp_w = nullptr;   // n values
  const int32_t* col_sum = nullptr;  // n values
  const float* bias = nullptr;     // n values or null
  float* y = nullptr;
};
void int8_epilogue_row_scalar(const Int8EpilogueRow& r);
void int8_epilogue_row_avx512(const Int8EpilogueRow& r);

// The row functions of the fast int8 layer as one family (dispatch.h): the layer looks the table
// up on every run().
struct Int8RowKernels {
  const char* isa;  // "ref", "avx512"
  Int8RowQuant (*quantize_row)(const float* x, int64_t k, uint8_t* q, const float* c);
  void (*epilogue_row)(const Int8EpilogueRow& r);
};
const Int8RowKernels& int8_row_kernels_reference();
const Int8RowKernels& int8_row_kernels_avx512();  // only when cpu_has_avx512_int8()


// True if oneDNN's effective ISA has VNNI (AVX2-VNNI, AVX512-VNNI or later: exact u8 x s8 sums).
bool int8_onednn_has_vnni();

// The layers behind encoded_linear_int8() (the view must have passed int8_view_check()).
std::unique_ptr<EncodedLinear> encoded_linear_int8_reference(const Int8WeightsView& w);
// split_weights: compute with the weights split in two halves of magnitude <= 64 (two products),
// which keeps oneDNN exact on CPUs without VNNI, whose u8 x s8 instruction (vpmaddubsw) saturates
// pairs of products to int16. Chosen automatically by encoded_linear_int8(fast); exposed for tests.
std::unique_ptr<EncodedLinear> encoded_linear_int8_onednn(const Int8WeightsView& w, bool split_weights);

}  // namespace leanembed::kernels
