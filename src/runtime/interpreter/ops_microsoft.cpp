// com.microsoft ops that ONNX Runtime's optimizer writes into BERT models (see
// onnxruntime/core/graph/contrib_ops): Gelu, BiasGelu, FastGelu, FusedMatMul,
// SkipLayerNormalization. Same numeric conventions as the ai.onnx ops.
#include <cmath>

#include "runtime/interpreter/elementwise.h"
#include "runtime/interpreter/matmul.h"
#include "runtime/interpreter/normalization.h"
#include "runtime/interpreter/ops.h"
#include "runtime/interpreter/type_dispatch.h"

namespace leanembed::interp {
namespace {

// gelu(x + bias) for bias broadcast (numpy rules); the sum is rounded to T first, as a separate
// Add would.
template <double (*Gelu)(double)>
void run_gelu_with_bias(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor* bias = ctx.optional_input(1);
  ctx.set_output(0, visit_float(x.dtype(), ctx.node.op_type.c_str(), [&]<typename T>() {
    if (!bias) return map_unary<T, T>(x, x.dtype(), [](T v) { return static_cast<T>(Gelu(static_cast<double>(v))); });
    if (bias->dtype() != x.dtype())
      throw Error(ErrorCode::runtime, "bias element type " + dtype_name(bias->dtype()) + " differs from the input's");
    return map_binary<T, T, T>(x, *bias, x.dtype(), [](T v, T b) {
      return static_cast<T>(Gelu(static_cast<double>(static_cast<T>(v + b))));
    });
  }));
}

void check_fused_matmul(const onnx::Node& node, int64_t) {
  if (attr_int(node, "transBatchA", 0) != 0 || attr_int(node, "transBatchB", 0) != 0)
    throw Error(ErrorCode::unsupported, "transBatchA/transBatchB are not supported");
}

// alpha * op(A) @ op(B); op transposes the last two dims when transA / transB is set.
void run_fused_matmul(OpContext& ctx) {
  ctx.set_output(0, matmul(ctx.input(0), ctx.input(1), attr_int(ctx.node, "transA", 0) != 0,
                           attr_int(ctx.node, "transB", 0) != 0, attr_float(ctx.node, "alpha", 1.0f)));
}

// output = LayerNorm(input + skip + bias) over the last dim, with gamma and optional beta;
// optional outputs: mean, inv_std_var (shape [..., 1]) and the sum input + skip + bias.
void run_skip_layer_norm(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& skip = ctx.input(1);
  const Tensor& gamma = ctx.input(2);
  const Tensor* beta = ctx.optional_input(3);
  const Tensor* bias = ctx.optional_input(4);
  if (x.rank() < 1) throw Error(ErrorCode::runtime, "input must have rank >= 1");
  if (broadcast_shapes(skip.shape(), x.shape()) != x.shape())
    throw Error(ErrorCode::runtime, "skip of shape " + shape_string(skip.shape()) + " does not broadcast to input " +
                                        shape_string(x.shape()));
  const double epsilon = attr_float(ctx.node, "epsilon", 1e-12f);
  const int64_t cols = x.dim(x.rank() - 1);
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  std::vector<int64_t> norm_shape{cols};
  std::vector<int64_t> stat_shape(x.shape().begin(), x.shape().end() - 1);
  stat_shape.push_back(1);
  visit_float(x.dtype(), "SkipLayerNormalization", [&]<typename T>() {
    Tensor sum = map_binary<T, T, T>(x, skip, x.dtype(), [](T a, T b) { return static_cast<T>(a + b); });
    if (bias) {
      if (bias->dtype() != x.dtype()) throw Error(ErrorCode::runtime, "bias element type differs from the input's");
      expand_row_parameter(*bias, norm_shape, "bias");  // checks the shape
      sum = map_binary<T, T, T>(sum, *bias, x.dtype(), [](T a, T b) { return static_cast<T>(a + b); });
    }
    for (const Tensor* p : {&gamma, beta})
      if (p && p->dtype() != x.dtype()) throw Error(ErrorCode::runtime, "gamma/beta element type differs from the input's");
    std::vector<double> g = expand_row_parameter(gamma, norm_shape, "gamma");
    std::vector<double> b = beta ? expand_row_parameter(*beta, norm_shape, "beta") : std::vector<double>();
    Tensor y(x.dtype(), x.shape());
    Tensor mean(DataType::float32, stat_shape), inv_std(DataType::float32, stat_shape);
    layer_norm_rows<T>(sum.template data<T>().data(), rows, cols, g, b, epsilon, y.template mutable_data<T>().data(),
                       mean.mutable_data<float>().data(), inv_std.mutable_data<float>().data());
    ctx.set_output(0, std::move(y));
    if (ctx.wants_output(1)) ctx.set_output(1, std::move(mean));
    if (ctx.wants_output(2)) ctx.set_output(2, std::move(inv_std));
    if (ctx.wants_output(3)) ctx.set_output(3, std::move(sum));
  });
}

}  // namespace

void add_microsoft_ops(std::vector<OpSpec>& t) {
  t.push_back(promoted({"com.microsoft", "Gelu", 1, 1, 1, 1, 1, run_gelu_with_bias<gelu_erf>}));
  t.push_back(promoted({"com.microsoft", "BiasGelu", 1, 2, 2, 1, 1, run_gelu_with_bias<gelu_erf>}));
  t.push_back(promoted({"com.microsoft", "FastGelu", 1, 1, 2, 1, 1, run_gelu_with_bias<gelu_tanh>}));
  t.push_back(promoted({"com.microsoft", "FusedMatMul", 1, 2, 2, 1, 1, run_fused_matmul, check_fused_matmul}));
  // output and input_skip_bias_sum have the input's type; mean and inv_std_var are float32.
  t.push_back(promoted({"com.microsoft", "SkipLayerNormalization", 1, 3, 5, 1, 4, run_skip_layer_norm}, 0b1001));
}

}  // namespace leanembed::interp
