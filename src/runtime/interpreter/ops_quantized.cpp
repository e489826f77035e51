// Quantized ops, written from the ONNX operator specification and ONNX Runtime's contrib-op
// documentation: ai.onnx DynamicQuantizeLinear, QuantizeLinear, DequantizeLinear, MatMulInteger and
// com.microsoft MatMulNBits, MatMulIntegerToFloat, DynamicQuantizeMatMul. These are what ONNX
// Runtime's dynamic quantizer (q8/int8 files), its 4-bit weight quantizer (q4 files) and its
// optimizer's fusions of the q8 pattern write.
//
// Numbers: scales, quotients and dequantized values are float32 as the spec's reference computes
// them (a scale one ulp off flips roundings); "round" is to nearest, ties to even, done explicitly
// (independent of the floating-point environment); saturation clamps to the integer type's range.
// A NaN quantizes to the zero point (the spec leaves it open; it must not become a cast of NaN).
// Integer products are exact; MatMulInteger's sums wrap modulo 2^32 (the spec allows overflow of a
// 32-bit accumulator only); MatMulNBits sums in double and rounds once, as MatMul does here.
#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/interpreter/broadcast.h"
#include "runtime/interpreter/ops.h"

namespace leanembed::interp {
namespace {

// ---- Element helpers -----------------------------------------------------------------------------

struct QuantRange {
  int32_t min, max;
};

// The saturation range of a quantized type (uint8 or int8); Error(runtime) naming `what` otherwise.
QuantRange quant_range(DataType t, const char* what) {
  if (t == DataType::uint8) return {0, 255};
  if (t == DataType::int8) return {-128, 127};
  throw Error(ErrorCode::runtime, std::string(what) + " should be uint8 or int8, found " + dtype_name(t));
}

// The values of a uint8/int8/int32 tensor as int32 (size numel). Error(runtime) naming `what` for
// other types.
std::vector<int32_t> widen_ints(const Tensor& t, const char* what) {
  std::vector<int32_t> v(static_cast<std::size_t>(t.numel()));
  switch (t.dtype()) {
    case DataType::uint8: std::ranges::copy(t.data<uint8_t>(), v.begin()); break;
    case DataType::int8: std::ranges::copy(t.data<int8_t>(), v.begin()); break;
    case DataType::int32: std::ranges::copy(t.data<int32_t>(), v.begin()); break;
    default:
      throw Error(ErrorCode::runtime, std::string(what) + " should be uint8, int8 or int32, found " +
                                          dtype_name(t.dtype()));
  }
  return v;
}

// Rounds to the nearest integer, ties to even (exact for every float: x - floor(x) is exact).
double round_half_even(double x) {
  const double f = std::floor(x);
  const double diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return std::fmod(f, 2.0) == 0.0 ? f : f + 1;
}

// saturate(round(x / scale) + zero_point) with the quotient in float32. NaN -> the zero point.
int32_t quantize_value(float x, float scale, int32_t zero_point, QuantRange range) {
  const float quotient = x / scale;
  if (std::isnan(quotient)) return std::clamp(zero_point, range.min, range.max);
  const double v = round_half_even(quotient) + zero_point;  // exact: |quotient| < 2^128, zp small
  return static_cast<int32_t>(std::clamp(v, static_cast<double>(range.min), static_cast<double>(range.max)));
}

// Writes int32 values (already in range) into a uint8 or int8 tensor of the same size.
void store_ints(Tensor& out, const std::vector<int32_t>& v) {
  if (out.dtype() == DataType::uint8) {
    auto d = out.mutable_data<uint8_t>();
    for (std::size_t i = 0; i < v.size(); ++i) d[i] = static_cast<uint8_t>(v[i]);
  } else {
    auto d = out.mutable_data<int8_t>();
    for (std::size_t i = 0; i < v.size(); ++i) d[i] = static_cast<int8_t>(v[i]);
  }
}

// ---- (De)QuantizeLinear parameters ---------------------------------------------------------------

// Scale and zero point per channel: element i of x uses channel (i / inner) % scale.size(). Per
// tensor: one channel, inner = numel(x).
struct ChannelParams {
  std::vector<float> scale;
  std::vector<int32_t> zero_point;
  int64_t inner = 1;
  int64_t channel(int64_t i) const { return (i / inner) % static_cast<int64_t>(scale.size()); }
};

// Reads scale (float32) and the optional zero point (`zp_type` when present) for x. A one-element
// scale is per tensor; a 1-D scale of x.dim(axis) elements is per axis (opset >= 13). The zero
// point must have the scale's shape. Error(runtime) naming what does not fit.
ChannelParams channel_params(const OpContext& ctx, const Tensor& x, const Tensor& scale, const Tensor* zero_point) {
  if (scale.dtype() != DataType::float32)
    throw Error(ErrorCode::runtime, "scale should be float32, found " + dtype_name(scale.dtype()));
  ChannelParams p;
  p.scale.assign(scale.data<float>().begin(), scale.data<float>().end());
  if (zero_point) {
    if (zero_point->shape() != scale.shape())
      throw Error(ErrorCode::runtime, "zero point shape " + shape_string(zero_point->shape()) +
                                          " differs from the scale's " + shape_string(scale.shape()));
    p.zero_point = widen_ints(*zero_point, "zero point");
  } else {
    p.zero_point.assign(p.scale.size(), 0);
  }
  if (scale.numel() == 1 && scale.rank() <= 1) {
    p.inner = std::max<int64_t>(x.numel(), 1);
    return p;
  }
  if (ctx.opset < 13 || scale.rank() != 1)
    throw Error(ErrorCode::runtime, "scale of shape " + shape_string(scale.shape()) +
                                        " should be a scalar" + (ctx.opset < 13 ? "" : " or 1-D (per axis)") +
                                        " at opset " + std::to_string(ctx.opset));
  const int64_t axis = normalize_axis(attr_int(ctx.node, "axis", 1), x.rank(), "axis");
  if (scale.dim(0) != x.dim(axis))
    throw Error(ErrorCode::runtime, "per-axis scale has " + std::to_string(scale.dim(0)) + " values, axis " +
                                        std::to_string(axis) + " of input " + shape_string(x.shape()) + " has " +
                                        std::to_string(x.dim(axis)));
  for (int64_t d = axis + 1; d < x.rank(); ++d) p.inner *= x.dim(d);
  return p;
}

// Settings of opset 19/21 that are not implemented: blocked quantization, other output types.
void check_quantize_linear(const onnx::Node& node, int64_t) {
  if (attr_int(node, "block_size", 0) != 0)
    throw Error(ErrorCode::unsupported, "blocked quantization (block_size != 0) is not supported");
  const int64_t out = attr_int(node, "output_dtype", 0);
  if (out != 0 && out != static_cast<int64_t>(DataType::uint8) && out != static_cast<int64_t>(DataType::int8))
    throw Error(ErrorCode::unsupported, "output_dtype " + std::to_string(out) + " is not supported (uint8, int8)");
}

// y = saturate(round(x / y_scale) + y_zero_point); y has the zero point's type (else output_dtype,
// else uint8).
void run_quantize_linear(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor* zp = ctx.optional_input(2);
  DataType out_type = DataType::uint8;
  if (const int64_t attr = attr_int(ctx.node, "output_dtype", 0); attr != 0) out_type = static_cast<DataType>(attr);
  if (zp) {
    if (attr_int(ctx.node, "output_dtype", 0) != 0 && zp->dtype() != out_type)
      throw Error(ErrorCode::runtime, "y_zero_point is " + dtype_name(zp->dtype()) + " but output_dtype asks for " +
                                          dtype_name(out_type));
    out_type = zp->dtype();
  }
  const QuantRange range = quant_range(out_type, "y_zero_point / output type");
  const ChannelParams p = channel_params(ctx, x, ctx.input(1), zp);
  std::vector<float> xs(static_cast<std::size_t>(x.numel()));
  if (x.dtype() == DataType::float32) {
    std::ranges::copy(x.data<float>(), xs.begin());
  } else if (x.dtype() == DataType::int32) {
    std::ranges::transform(x.data<int32_t>(), xs.begin(), [](int32_t v) { return static_cast<float>(v); });
  } else {
    throw Error(ErrorCode::runtime, "x should be float32 or int32, found " + dtype_name(x.dtype()));
  }
  std::vector<int32_t> q(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const auto c = static_cast<std::size_t>(p.channel(static_cast<int64_t>(i)));
    q[i] = quantize_value(xs[i], p.scale[c], p.zero_point[c], range);
  }
  Tensor y(out_type, x.shape());
  store_ints(y, q);
  ctx.set_output(0, std::move(y));
}

// y = float(x - x_zero_point) * x_scale, in float32.
void run_dequantize_linear(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor* zp = ctx.optional_input(2);
  if (zp && zp->dtype() != x.dtype())
    throw Error(ErrorCode::runtime, "x_zero_point is " + dtype_name(zp->dtype()) + ", x is " + dtype_name(x.dtype()));
  const std::vector<int32_t> xs = widen_ints(x, "x");
  const ChannelParams p = channel_params(ctx, x, ctx.input(1), zp);
  if (x.dtype() == DataType::int32 && std::ranges::any_of(p.zero_point, [](int32_t z) { return z != 0; }))
    throw Error(ErrorCode::runtime, "an int32 x takes no zero point (or zero)");
  Tensor y(DataType::float32, x.shape());
  auto out = y.mutable_data<float>();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const auto c = static_cast<std::size_t>(p.channel(static_cast<int64_t>(i)));
    // int64 difference: int32 x minus a zero point cannot overflow it.
    out[i] = static_cast<float>(static_cast<int64_t>(xs[i]) - p.zero_point[c]) * p.scale[c];
  }
  ctx.set_output(0, std::move(y));
}

// ---- DynamicQuantizeLinear -----------------------------------------------------------------------

// uint8 quantization with a range that includes 0: scale = (max(0, x_max) - min(0, x_min)) / 255
// in float32 (1 when the range is empty, i.e. x is all zeros or empty), zero point =
// saturate(round(0 - x_min / scale)), y = saturate(round(x / scale) + zero point). NaNs are left
// out of the range. x: float32 (else Error(runtime)); y has x's shape.
struct DynamicQuantized {
  Tensor y;
  float scale;
  int32_t zero_point;
};

DynamicQuantized dynamic_quantize(const Tensor& x) {
  if (x.dtype() != DataType::float32)
    throw Error(ErrorCode::runtime, "x should be float32, found " + dtype_name(x.dtype()));
  const auto xs = x.data<float>();
  float lo = 0.0f, hi = 0.0f;
  for (float v : xs) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const QuantRange range{0, 255};
  const float scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
  const float initial_zero_point = 0.0f - lo / scale;
  const auto zero_point = static_cast<int32_t>(round_half_even(std::clamp(initial_zero_point, 0.0f, 255.0f)));
  Tensor y(DataType::uint8, x.shape());
  auto out = y.mutable_data<uint8_t>();
  for (std::size_t i = 0; i < xs.size(); ++i)
    out[i] = static_cast<uint8_t>(quantize_value(xs[i], scale, zero_point, range));
  return {std::move(y), scale, zero_point};
}

Tensor uint8_scalar(int32_t v) {
  Tensor z(DataType::uint8, {});
  z.mutable_data<uint8_t>()[0] = static_cast<uint8_t>(v);
  return z;
}

void run_dynamic_quantize_linear(OpContext& ctx) {
  DynamicQuantized q = dynamic_quantize(ctx.input(0));
  ctx.set_output(0, std::move(q.y));
  if (ctx.wants_output(1)) ctx.set_output(1, Tensor::scalar_float(q.scale));
  if (ctx.wants_output(2)) ctx.set_output(2, uint8_scalar(q.zero_point));
}

// ---- MatMulInteger -------------------------------------------------------------------------------

// x - zero_point for every element of x (uint8/int8), as int32. The zero point is a scalar (or
// one element), a 1-D vector (per row of A when `per_row`: [M] read as [M, 1]; per column of B:
// [N]) or an N-D tensor that broadcasts to x's shape. Allocates numel(x) int32.
std::vector<int32_t> centered(const Tensor& x, const Tensor* zero_point, bool per_row, const char* what) {
  quant_range(x.dtype(), what);
  std::vector<int32_t> v = widen_ints(x, what);
  if (!zero_point) return v;
  const std::string zp_what = std::string(what) + " zero point";
  if (zero_point->dtype() != x.dtype())
    throw Error(ErrorCode::runtime, zp_what + " is " + dtype_name(zero_point->dtype()) + ", " + what + " is " +
                                        dtype_name(x.dtype()));
  const std::vector<int32_t> zp = widen_ints(*zero_point, zp_what.c_str());
  std::vector<int64_t> zp_shape = zero_point->shape();
  if (zero_point->numel() == 1) {
    for (int32_t& e : v) e -= zp[0];
    return v;
  }
  if (zp_shape.size() == 1 && per_row) zp_shape.push_back(1);  // [M] -> [M, 1]
  bool fits = x.rank() >= 2 && zp_shape.size() <= x.shape().size();
  for (std::size_t d = 1; fits && d <= zp_shape.size(); ++d) {
    const int64_t z = zp_shape[zp_shape.size() - d], s = x.shape()[x.shape().size() - d];
    fits = z == s || z == 1;
  }
  if (!fits)
    throw Error(ErrorCode::runtime, zp_what + " of shape " + shape_string(zero_point->shape()) +
                                        " does not fit " + what + " of shape " + shape_string(x.shape()) +
                                        (per_row ? " (scalar, [M] or [..., M, 1])" : " (scalar, [N] or [..., 1, N])"));
  std::array<std::vector<int64_t>, 1> strides{broadcast_strides(zp_shape, x.shape())};
  broadcast_for_each<1>(x.shape(), strides, [&](const int64_t* off, int64_t o, int64_t n, const int64_t* step) {
    for (int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(o + i)] -= zp[static_cast<std::size_t>(off[0] + i * step[0])];
  });
  return v;
}

// Y = (A - a_zero_point) @ (B - b_zero_point) with numpy matmul shapes (1-D operands, broadcast
// batch dims), int32 output. Allocates int32 copies of A and B plus the output.
Tensor matmul_integer(const Tensor& a, const Tensor& b, const Tensor* a_zero_point, const Tensor* b_zero_point) {
  if (a.rank() == 0 || b.rank() == 0)
    throw Error(ErrorCode::runtime, "A and B must have rank >= 1, found " + shape_string(a.shape()) + " and " +
                                        shape_string(b.shape()));
  const std::vector<int32_t> va = centered(a, a_zero_point, true, "A");
  const std::vector<int32_t> vb = centered(b, b_zero_point, false, "B");
  std::vector<int64_t> sa = a.shape(), sb = b.shape();
  const bool a_vector = sa.size() == 1, b_vector = sb.size() == 1;
  if (a_vector) sa.insert(sa.begin(), 1);
  if (b_vector) sb.push_back(1);
  const int64_t m = sa[sa.size() - 2], k = sa.back(), n = sb.back();
  if (sb[sb.size() - 2] != k)
    throw Error(ErrorCode::runtime, "inner dimensions differ: " + shape_string(a.shape()) + " times " +
                                        shape_string(b.shape()));
  std::vector<int64_t> batch_a(sa.begin(), sa.end() - 2), batch_b(sb.begin(), sb.end() - 2);
  const std::vector<int64_t> batch = broadcast_shapes(batch_a, batch_b);
  std::array<std::vector<int64_t>, 2> strides{broadcast_strides(batch_a, batch), broadcast_strides(batch_b, batch)};
  std::vector<int64_t> out_shape = batch;
  if (!a_vector) out_shape.push_back(m);
  if (!b_vector) out_shape.push_back(n);
  Tensor y(DataType::int32, out_shape);
  int32_t* py = y.mutable_data<int32_t>().data();
  std::vector<int64_t> acc(static_cast<std::size_t>(n));
  broadcast_for_each<2>(batch, strides, [&](const int64_t* off, int64_t o, int64_t count, const int64_t* step) {
    for (int64_t bi = 0; bi < count; ++bi) {
      const int32_t* pa = va.data() + (off[0] + bi * step[0]) * m * k;
      const int32_t* pb = vb.data() + (off[1] + bi * step[1]) * k * n;
      int32_t* po = py + (o + bi) * m * n;
      for (int64_t i = 0; i < m; ++i) {
        std::ranges::fill(acc, 0);
        for (int64_t kk = 0; kk < k; ++kk) {
          const int64_t av = pa[i * k + kk];
          for (int64_t j = 0; j < n; ++j) acc[static_cast<std::size_t>(j)] += av * pb[kk * n + j];
        }
        // int64 -> int32 is modulo 2^32 in C++20: the wrap of a 32-bit accumulator. No int64
        // overflow: each product is below 2^16 and K would need 2^47 terms.
        for (int64_t j = 0; j < n; ++j) po[i * n + j] = static_cast<int32_t>(acc[static_cast<std::size_t>(j)]);
      }
    }
  });
  // An empty batch leaves y zero-filled, which is the empty product's value.
  return y;
}

void run_matmul_integer(OpContext& ctx) {
  ctx.set_output(0, matmul_integer(ctx.input(0), ctx.input(1), ctx.optional_input(2), ctx.optional_input(3)));
}

// ---- com.microsoft MatMulIntegerToFloat, DynamicQuantizeMatMul ---------------------------------------
// What ONNX Runtime's optimizer fuses DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scale)
// -> Add(bias) into. Same numbers as the unfused graph: y = float(acc) * (a_scale * b_scale), then
// + bias, each step rounded to float32.

// One float from a one-element float32 tensor.
float float_scalar(const Tensor& t, const char* what) {
  if (t.dtype() != DataType::float32 || t.numel() != 1)
    throw Error(ErrorCode::runtime, std::string(what) + " should be one float32, found " + dtype_name(t.dtype()) + " " +
                                        shape_string(t.shape()));
  return t.data<float>()[0];
}

// acc (int32 [..., N]) * (a_scale * b_scale[n]) + bias[n]; b_scale holds 1 or N values, bias N.
Tensor scale_product(const Tensor& acc, float a_scale, const Tensor& b_scale, const Tensor* bias) {
  const int64_t n = acc.rank() == 0 ? 1 : acc.dim(acc.rank() - 1);
  if (b_scale.dtype() != DataType::float32 || (b_scale.numel() != 1 && (b_scale.rank() != 1 || b_scale.numel() != n)))
    throw Error(ErrorCode::runtime, "b_scale should be float32 with 1 or N=" + std::to_string(n) + " values, found " +
                                        dtype_name(b_scale.dtype()) + " " + shape_string(b_scale.shape()));
  if (bias && (bias->dtype() != DataType::float32 || bias->rank() != 1 || bias->numel() != n))
    throw Error(ErrorCode::runtime, "bias should be float32 [N=" + std::to_string(n) + "], found " +
                                        dtype_name(bias->dtype()) + " " + shape_string(bias->shape()));
  const auto bs = b_scale.data<float>();
  Tensor y(DataType::float32, acc.shape());
  const auto in = acc.data<int32_t>();
  auto out = y.mutable_data<float>();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const auto col = static_cast<std::size_t>(n == 0 ? 0 : static_cast<int64_t>(i) % n);
    const float multiplier = a_scale * bs[bs.size() == 1 ? 0 : col];
    float v = static_cast<float>(in[i]) * multiplier;
    if (bias) v += bias->data<float>()[col];
    out[i] = v;
  }
  return y;
}

// Inputs: A, B (uint8/int8), a_scale, b_scale, a_zero_point?, b_zero_point?, bias?.
void run_matmul_integer_to_float(OpContext& ctx) {
  const Tensor acc = matmul_integer(ctx.input(0), ctx.input(1), ctx.optional_input(4), ctx.optional_input(5));
  ctx.set_output(0, scale_product(acc, float_scalar(ctx.input(2), "a_scale"), ctx.input(3), ctx.optional_input(6)));
}

// Inputs: A (float32, quantized as DynamicQuantizeLinear does), B (uint8/int8), b_scale,
// b_zero_point?, bias?.
void run_dynamic_quantize_matmul(OpContext& ctx) {
  const DynamicQuantized a = dynamic_quantize(ctx.input(0));
  const Tensor a_zero_point = uint8_scalar(a.zero_point);
  const Tensor acc = matmul_integer(a.y, ctx.input(1), &a_zero_point, ctx.optional_input(3));
  ctx.set_output(0, scale_product(acc, a.scale, ctx.input(2), ctx.optional_input(4)));
}

// ---- com.microsoft MatMulNBits -------------------------------------------------------------------

struct NBitsShape {
  int64_t k, n, bits, block_size, blocks, blob_bytes;
};

NBitsShape nbits_shape(const onnx::Node& node) {
  NBitsShape s{};
  s.k = attr_int_required(node, "K");
  s.n = attr_int_required(node, "N");
  s.bits = attr_int(node, "bits", 4);
  s.block_size = attr_int_required(node, "block_size");
  if (s.k <= 0 || s.n <= 0)
    throw Error(ErrorCode::model_format, "K and N should be positive, found K=" + std::to_string(s.k) +
                                             " N=" + std::to_string(s.n));
  if (s.block_size < 16 || (s.block_size & (s.block_size - 1)) != 0)
    throw Error(ErrorCode::model_format, "block_size should be a power of 2 >= 16, found " +
                                             std::to_string(s.block_size));
  s.blocks = (s.k + s.block_size - 1) / s.block_size;
  s.blob_bytes = s.block_size * s.bits / 8;
  return s;
}

void check_matmul_nbits(const onnx::Node& node, int64_t) {
  const NBitsShape s = nbits_shape(node);
  if (s.bits != 4 && s.bits != 8)
    throw Error(ErrorCode::unsupported, "bits=" + std::to_string(s.bits) + " is not supported (4, 8)");
  if (node.inputs.size() > 4 && !node.inputs[4].empty())
    throw Error(ErrorCode::unsupported, "g_idx (input 4) is not supported");
}

// The code of element i of a row of `bits`-bit values packed low bits first into bytes.
int32_t packed_code(const uint8_t* row, int64_t i, int64_t bits) {
  const int64_t bit = i * bits;
  return (row[bit / 8] >> (bit % 8)) & ((1 << bits) - 1);
}

// Y[..., n] = sum_k A[..., k] * W[n, k] (+ bias[n]) where W[n, k] = (code - zero_point) * scale of
// k's block along row n, in float32. B: uint8 [N, blocks, blob_bytes]; scales: [N * blocks];
// zero_points: uint8 packed per row ([N * ceil(blocks * bits / 8)]), or float32 [N * blocks], or
// absent (2^(bits-1)). Allocates W (N * K floats), one row of N doubles and the output.
void run_matmul_nbits(OpContext& ctx) {
  const NBitsShape s = nbits_shape(ctx.node);
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const Tensor& scales = ctx.input(2);
  const Tensor* zero_points = ctx.optional_input(3);
  const Tensor* bias = ctx.optional_input(5);
  if (a.dtype() != DataType::float32 || scales.dtype() != DataType::float32)
    throw Error(ErrorCode::runtime, "A and scales should be float32 (or float16), found " + dtype_name(a.dtype()) +
                                        " and " + dtype_name(scales.dtype()));
  if (a.rank() < 1 || a.dim(a.rank() - 1) != s.k)
    throw Error(ErrorCode::runtime, "A of shape " + shape_string(a.shape()) + " should end in K=" + std::to_string(s.k));
  if (b.dtype() != DataType::uint8 || b.numel() != s.n * s.blocks * s.blob_bytes)
    throw Error(ErrorCode::runtime, "B should be uint8 [N, blocks, blob] = [" + std::to_string(s.n) + ", " +
                                        std::to_string(s.blocks) + ", " + std::to_string(s.blob_bytes) + "], found " +
                                        dtype_name(b.dtype()) + " " + shape_string(b.shape()));
  if (scales.numel() != s.n * s.blocks)
    throw Error(ErrorCode::runtime, "scales should hold N * blocks = " + std::to_string(s.n * s.blocks) +
                                        " values, found shape " + shape_string(scales.shape()));
  const int64_t zp_row_bytes = (s.blocks * s.bits + 7) / 8;
  if (zero_points) {
    const bool packed = zero_points->dtype() == DataType::uint8 && zero_points->numel() == s.n * zp_row_bytes;
    const bool unpacked = zero_points->dtype() == DataType::float32 && zero_points->numel() == s.n * s.blocks;
    if (!packed && !unpacked)
      throw Error(ErrorCode::runtime, "zero_points should be uint8 with N * ceil(blocks * bits / 8) = " +
                                          std::to_string(s.n * zp_row_bytes) + " bytes or float32 with N * blocks = " +
                                          std::to_string(s.n * s.blocks) + " values, found " +
                                          dtype_name(zero_points->dtype()) + " " + shape_string(zero_points->shape()));
  }
  if (bias && (bias->dtype() != DataType::float32 || bias->numel() != s.n))
    throw Error(ErrorCode::runtime, "bias should be float32 [N=" + std::to_string(s.n) + "], found " +
                                        dtype_name(bias->dtype()) + " " + shape_string(bias->shape()));

  // Dequantized weights, row n = output column n.
  const auto nk = static_cast<std::size_t>(s.n * s.k);
  std::vector<float> w(nk);
  const uint8_t* pb = b.data<uint8_t>().data();
  const float* ps = scales.data<float>().data();
  const float default_zp = static_cast<float>(1 << (s.bits - 1));
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t blk = 0; blk < s.blocks; ++blk) {
      const int64_t block = n * s.blocks + blk;
      float zp = default_zp;
      if (zero_points && zero_points->dtype() == DataType::uint8)
        zp = static_cast<float>(packed_code(zero_points->data<uint8_t>().data() + n * zp_row_bytes, blk, s.bits));
      else if (zero_points)
        zp = zero_points->data<float>()[static_cast<std::size_t>(block)];
      const uint8_t* blob = pb + block * s.blob_bytes;
      for (int64_t i = 0; i < s.block_size && blk * s.block_size + i < s.k; ++i)
        w[static_cast<std::size_t>(n * s.k + blk * s.block_size + i)] =
            (static_cast<float>(packed_code(blob, i, s.bits)) - zp) * ps[block];
    }

  std::vector<int64_t> out_shape = a.shape();
  out_shape.back() = s.n;
  Tensor y(DataType::float32, out_shape);
  const int64_t rows = a.numel() / s.k;
  const float* pa = a.data<float>().data();
  float* py = y.mutable_data<float>().data();
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = pa + r * s.k;
    for (int64_t n = 0; n < s.n; ++n) {
      const float* wn = w.data() + n * s.k;
      double acc = bias ? static_cast<double>(bias->data<float>()[static_cast<std::size_t>(n)]) : 0.0;
      for (int64_t kk = 0; kk < s.k; ++kk) acc += static_cast<double>(row[kk]) * static_cast<double>(wn[kk]);
      py[r * s.n + n] = static_cast<float>(acc);
    }
  }
  ctx.set_output(0, std::move(y));
}

}  // namespace

void add_quantized_ops(std::vector<OpSpec>& t) {
  t.push_back({"", "DynamicQuantizeLinear", 11, 1, 1, 1, 3, run_dynamic_quantize_linear});
  // float16 x / scale (opset 19+) computed through float32; Quantize's output is an integer type,
  // Dequantize's follows the scale's type.
  t.push_back(promoted({"", "QuantizeLinear", 10, 2, 3, 1, 1, run_quantize_linear, check_quantize_linear}, 0));
  t.push_back(promoted({"", "DequantizeLinear", 10, 2, 3, 1, 1, run_dequantize_linear, check_quantize_linear}));
  t.push_back({"", "MatMulInteger", 10, 2, 4, 1, 1, run_matmul_integer});
  t.push_back({"com.microsoft", "MatMulIntegerToFloat", 1, 4, 7, 1, 1, run_matmul_integer_to_float});
  t.push_back({"com.microsoft", "DynamicQuantizeMatMul", 1, 3, 5, 1, 1, run_dynamic_quantize_matmul});
  t.push_back(promoted({"com.microsoft", "MatMulNBits", 1, 3, 6, 1, 1, run_matmul_nbits, check_matmul_nbits}));
}

}  // namespace leanembed::interp
