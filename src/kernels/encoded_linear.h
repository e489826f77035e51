// Linear layers whose weights are stored encoded — int8/uint8 with scales and zero points
// (ONNX Runtime's MatMulInteger form), 4-bit blocks (com.microsoft MatMulNBits) or float16 — and
// computed without widening the weights to fp32 in memory:
//
//   y[m, j] = sum_i x[m, i] * W[i, j] + bias[j]     (x fp32 [M, K], W [K, N] decoded on the fly, y fp32)
//
// One interface, EncodedLinear, for every encoding; each encoding has a scalar reference (the spec,
// plain loops) and a fast implementation that the tests compare against it.
//
// Views: the *View structs point at the model's bytes (usually a read-only file mapping, at any
// byte address — exporters do not align raw_data); they must outlive the EncodedLinear made from
// them unless the implementation documents that it copied them (owned_bytes() > 0).
//
// Threading: one EncodedLinear must not run on two threads at once (implementations may cache
// state); each run() itself uses up to threads_get() OpenMP threads. Memory: run() takes its work
// memory from the caller's scratch of exactly scratch_bytes(m) bytes (64-byte aligned) and holds
// nothing after it returns. The references allocate nothing; the fast ones may make small transient
// allocations inside libraries (oneDNN's argument maps: a few hundred bytes per primitive call;
// libgomp's thread team on first use), measured in tests/runtime/encoder/test_encoder_allocations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "kernels/kernels.h"  // Implementation

namespace leanembed::kernels {

// int8 / uint8 weights W [k, n] row-major (MatMulInteger's B) with per-tensor or per-column
// (per-output) scales and zero points: W_real[i, j] = (W[i, j] - zero_point[j]) * scale[j].
struct Int8WeightsView {
  const void* data = nullptr;    // k * n bytes, int8 if is_signed else uint8; any address
  bool is_signed = false;
  int64_t k = 0, n = 0;
  const void* scales = nullptr;  // scale_count fp32 values (1 = per tensor, n = per column); any address
  int64_t scale_count = 1;
  const void* zero_points = nullptr;  // zero_point_count values of W's type; null = all zero; any address
  int64_t zero_point_count = 0;       // 0, 1 or n
  // k floats (float-aligned) or null: the layer's input is x[r, i] * input_scale[i] (a per-channel
  // Mul in front of the quantization, as `leanembed quantize`'s smoothing writes it), applied while
  // the row is quantized instead of in a pass of its own. The products are the same IEEE multiplies,
  // so the result equals scaling x first and running the layer without it, bit for bit.
  const float* input_scale = nullptr;
};

// com.microsoft MatMulNBits with bits = 4: for output column j and block b (block_size consecutive
// k), W_real[i, j] = (q(j, i) - zp(j, b)) * scale(j, b), where q(j, i) is the 4-bit value at
// packed[j][i / block_size][(i % block_size) / 2] (low nibble for even i, high nibble for odd i),
// scale(j, b) = scales[j * blocks + b], zp(j, b) = the 4-bit value at
// zero_points[j * ceil(blocks / 2) + b / 2] (low nibble for even b) or 8 when zero_points is null.
// blocks = ceil(k / block_size); a last partial block is zero-padded in `packed`.
struct BlockQ4WeightsView {
  const uint8_t* packed = nullptr;       // n * blocks * block_size / 2 bytes
  const void* scales = nullptr;          // n * blocks fp32 values; any address
  const uint8_t* zero_points = nullptr;  // n * ceil(blocks / 2) bytes, or null (= 8)
  int64_t k = 0, n = 0, block_size = 32; // block_size: a power of two >= 16
};

// IEEE float16 weights W [k, n] row-major (a MatMul's B as an fp16 initializer).
struct F16WeightsView {
  const void* data = nullptr;  // k * n binary16 values, little-endian; any even or odd address
  int64_t k = 0, n = 0;
};

class EncodedLinear {
 public:
  virtual ~EncodedLinear() = default;
  virtual const char* name() const = 0;  // e.g. "int8-onednn", "q4-avx2", "f16-ref"
  virtual int64_t k() const = 0;
  virtual int64_t n() const = 0;
  // Bytes this object allocated and holds (packed / reordered weights, column sums); 0 = only views.
  virtual std::size_t owned_bytes() const = 0;
  // Exact scratch bytes run() needs for m rows (0 if none).
  virtual std::size_t scratch_bytes(int64_t m) const = 0;
  // y[r, :] (row stride ldy) = x[r, :] (row stride ldx, float-aligned) * W + bias for r < m.
  // bias: n floats or null. scratch: scratch_bytes(m) bytes, 64-byte aligned (null if 0).
  virtual void run(int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy, const float* bias,
                   void* scratch) = 0;
  // When libgomp's pool sleeps between parallel regions (pool_threads_sleep(), threads.h), every
  // region pays for waking it: an encoder whose feed-forward layers run on this kernel is faster on
  // one thread for runs of fewer rows (tokens) than this, and the fast encoder then keeps such runs
  // on the calling thread (FastEncoderOptions::parallel_min_tokens). 0 = always as many threads as
  // the setting allows. Measured on whole encoders, not on this layer alone: src/kernels/README.md
  // "Small runs on one thread".
  virtual int64_t parallel_min_rows() const { return 0; }
};


// int8: activations (x, times input_scale if set) are quantized per row (per token) to uint8 exactly as ONNX's
// DynamicQuantizeLinear does for a whole tensor, but with one scale / zero point per row: range
// [min(0, min x), max(0, max x)], scale = range / 255, zero point = round-half-even(-min / scale)
// clamped to [0, 255] (scale 0 → all q = zero point = 0), q = saturate(round-half-even(x / scale) + zp).
// The integer products are accumulated exactly in int32, then
//   y[m, j] = scale_x[m] * scale_w[j] * sum_i (q[m, i] - zp_x[m]) * (W[i, j] - zp_w[j]) + bias[j].
// Integer sums are exact, so fast and reference agree to the rounding of that last line.
// Throws Error(invalid_argument) for inconsistent views (sizes, counts, null data).
std::unique_ptr<EncodedLinear> encoded_linear_int8(const Int8WeightsView& w, Implementation impl);

// 4-bit blocks: weights stay 4-bit in memory; blocks are decoded inside the dot product, with x in
// fp32 (no activation quantization): y[m, j] = sum_b scale(j, b) * sum_{i in b} x[m, i] * (q - zp).
std::unique_ptr<EncodedLinear> encoded_linear_q4(const BlockQ4WeightsView& w, Implementation impl);

// float16 weights widened to fp32 inside the product; accumulation in fp32.
std::unique_ptr<EncodedLinear> encoded_linear_f16(const F16WeightsView& w, Implementation impl);

}  // namespace leanembed::kernels
