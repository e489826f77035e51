// Softmax (opset <= 12: rows of the input coerced to 2-D at `axis`; >= 13: along one axis),
// ReduceMean (axes an attribute before opset 18, an input from 18 with noop_with_empty_axes) and
// LayerNormalization. Sums and statistics in double.
#include <algorithm>
#include <cmath>

#include "runtime/interpreter/broadcast.h"
#include "runtime/interpreter/normalization.h"
#include "runtime/interpreter/ops.h"
#include "runtime/interpreter/type_dispatch.h"

namespace leanembed::interp {
namespace {

void run_softmax(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const bool coerce_2d = ctx.opset < 13;
  const int64_t rank = x.rank();
  // A scalar is treated as a vector of one element (softmax of it is 1).
  const int64_t axis = rank == 0 ? 0 : normalize_axis(attr_int(ctx.node, "axis", coerce_2d ? 1 : -1), rank, "axis");
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t d = 0; d < rank; ++d) {
    if (d < axis) outer *= x.dim(d);
    else if (d == axis || coerce_2d) n *= x.dim(d);
    else inner *= x.dim(d);
  }
  ctx.set_output(0, visit_float(x.dtype(), "Softmax", [&]<typename T>() {
    Tensor out(x.dtype(), x.shape());
    const T* px = x.data<T>().data();
    T* po = out.mutable_data<T>().data();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t in = 0; in < inner; ++in) {
        const T* row = px + o * n * inner + in;
        T* dst = po + o * n * inner + in;
        double max = -INFINITY;
        for (int64_t i = 0; i < n; ++i) max = std::max(max, static_cast<double>(row[i * inner]));
        double sum = 0.0;
        for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(row[i * inner]) - max);
        for (int64_t i = 0; i < n; ++i)
          dst[i * inner] = static_cast<T>(std::exp(static_cast<double>(row[i * inner]) - max) / sum);
      }
    }
    return out;
  }));
}

void run_reduce_mean(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  const bool keepdims = attr_int(ctx.node, "keepdims", 1) != 0;
  std::vector<int64_t> axes;
  bool noop_with_empty_axes = false;
  if (ctx.opset >= 18) {
    if (const Tensor* a = ctx.optional_input(1)) axes = int_values(*a, "axes");
    noop_with_empty_axes = attr_int(ctx.node, "noop_with_empty_axes", 0) != 0;
  } else if (auto a = attr_ints(ctx.node, "axes")) {
    axes = *a;
  }
  if (axes.empty() && noop_with_empty_axes) {
    ctx.set_output(0, x);
    return;
  }
  std::vector<bool> reduced(static_cast<std::size_t>(rank), axes.empty());
  for (int64_t a : axes) {
    const int64_t axis = normalize_axis(a, rank, "axis");
    if (reduced[static_cast<std::size_t>(axis)]) throw Error(ErrorCode::runtime, "axis " + std::to_string(a) + " repeated");
    reduced[static_cast<std::size_t>(axis)] = true;
  }
  std::vector<int64_t> kept_shape, out_shape;
  int64_t count = 1;
  for (int64_t d = 0; d < rank; ++d) {
    const bool r = reduced[static_cast<std::size_t>(d)];
    kept_shape.push_back(r ? 1 : x.dim(d));
    if (r) count *= x.dim(d);
    if (!r || keepdims) out_shape.push_back(r ? 1 : x.dim(d));
  }
  // Walk the input; each element adds into the output cell whose broadcast stride maps to it.
  std::array<std::vector<int64_t>, 1> strides{broadcast_strides(kept_shape, x.shape())};
  ctx.set_output(0, visit_arithmetic(x.dtype(), "ReduceMean", [&]<typename T>() {
    std::vector<double> sums(static_cast<std::size_t>(shape_numel(kept_shape)), 0.0);
    const T* px = x.data<T>().data();
    broadcast_for_each<1>(x.shape(), strides, [&](const int64_t* off, int64_t o, int64_t n, const int64_t* step) {
      for (int64_t i = 0; i < n; ++i) sums[static_cast<std::size_t>(off[0] + i * step[0])] += static_cast<double>(px[o + i]);
    });
    Tensor out(x.dtype(), out_shape);
    T* po = out.mutable_data<T>().data();
    for (std::size_t i = 0; i < sums.size(); ++i) {
      const double mean = sums[i] / static_cast<double>(count);  // 0 / 0 = NaN for an empty reduction
      if constexpr (std::is_integral_v<T>) po[i] = static_cast<T>(count == 0 ? 0 : static_cast<int64_t>(mean));
      else po[i] = static_cast<T>(mean);
    }
    return out;
  }));
}

void check_layer_norm(const onnx::Node& node, int64_t) {
  const int64_t stash = attr_int(node, "stash_type", 1);
  if (stash != 1)
    throw Error(ErrorCode::unsupported, "stash_type " + std::to_string(stash) + " (only 1 = float32 is supported)");
}

void run_layer_norm(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* bias = ctx.optional_input(2);
  const int64_t rank = x.rank();
  const int64_t axis = normalize_axis(attr_int(ctx.node, "axis", -1), rank, "axis");
  const double epsilon = attr_float(ctx.node, "epsilon", 1e-5f);
  std::vector<int64_t> norm_shape(x.shape().begin() + axis, x.shape().end());
  std::vector<int64_t> stat_shape(x.shape().begin(), x.shape().begin() + axis);
  stat_shape.resize(static_cast<std::size_t>(rank), 1);
  const int64_t cols = shape_numel(norm_shape);
  const int64_t rows = cols == 0 ? shape_numel(stat_shape) : x.numel() / cols;
  for (const Tensor* p : {&scale, bias})
    if (p && p->dtype() != x.dtype())
      throw Error(ErrorCode::runtime, "Scale/B element type " + dtype_name(p->dtype()) + " differs from X's " +
                                          dtype_name(x.dtype()));
  std::vector<double> gamma = expand_row_parameter(scale, norm_shape, "Scale");
  std::vector<double> beta = bias ? expand_row_parameter(*bias, norm_shape, "B") : std::vector<double>();
  Tensor mean(DataType::float32, stat_shape), inv_std(DataType::float32, stat_shape);
  Tensor y = visit_float(x.dtype(), "LayerNormalization", [&]<typename T>() {
    Tensor out(x.dtype(), x.shape());
    layer_norm_rows<T>(x.data<T>().data(), rows, cols, gamma, beta, epsilon, out.mutable_data<T>().data(),
                       mean.mutable_data<float>().data(), inv_std.mutable_data<float>().data());
    return out;
  });
  ctx.set_output(0, std::move(y));
  if (ctx.wants_output(1)) ctx.set_output(1, std::move(mean));
  if (ctx.wants_output(2)) ctx.set_output(2, std::move(inv_std));
}

}  // namespace

void add_normalization_ops(std::vector<OpSpec>& t) {
  t.push_back(promoted({"", "Softmax", 1, 1, 1, 1, 1, run_softmax}));
  t.push_back(promoted({"", "ReduceMean", 1, 1, 2, 1, 1, run_reduce_mean}));
  // LayerNormalization is ai.onnx from opset 17, but ONNX Runtime's optimizer writes it into models
  // that import an older default opset (it registers the op there as its own extension), so any
  // supported opset is accepted.
  // Mean and InvStdDev stay float32 (the stash type) when X is float16.
  t.push_back(promoted({"", "LayerNormalization", 1, 2, 3, 1, 3, run_layer_norm, check_layer_norm}, 0b001));
}

}  // namespace leanembed::interp
