// Elementwise ops with numpy broadcasting: Add Sub Mul Div Pow Sqrt Erf Tanh Relu Gelu Equal Not
// Where. Float math is float32 (or float64) as the spec's types say; transcendental functions are
// evaluated in double and rounded once.
#include <cmath>
#include <numbers>

#include "runtime/interpreter/elementwise.h"
#include "runtime/interpreter/ops.h"
#include "runtime/interpreter/type_dispatch.h"

namespace leanembed::interp {
namespace {

void require_same_dtype(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    throw Error(ErrorCode::runtime, "inputs have different element types: " + dtype_name(a.dtype()) + " and " +
                                        dtype_name(b.dtype()));
}

template <typename Op>
void run_arithmetic(OpContext& ctx, Op op) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  require_same_dtype(a, b);
  ctx.set_output(0, visit_arithmetic(a.dtype(), ctx.node.op_type.c_str(), [&]<typename T>() {
    return map_binary<T, T, T>(a, b, a.dtype(), [&](T x, T y) { return op(x, y); });
  }));
}

void run_add(OpContext& ctx) {
  run_arithmetic(ctx, []<typename T>(T a, T b) { return wrap_add(a, b); });
}
void run_sub(OpContext& ctx) {
  run_arithmetic(ctx, []<typename T>(T a, T b) { return wrap_sub(a, b); });
}
void run_mul(OpContext& ctx) {
  run_arithmetic(ctx, []<typename T>(T a, T b) { return wrap_mul(a, b); });
}
// Integer division truncates toward zero (what ONNX Runtime does); division by zero is an error and
// INT_MIN / -1 wraps to INT_MIN.
void run_div(OpContext& ctx) {
  run_arithmetic(ctx, []<typename T>(T a, T b) -> T {
    if constexpr (std::is_integral_v<T>) {
      if (b == 0) throw Error(ErrorCode::runtime, "integer division by zero");
      if (b == -1) return wrap_sub(T{0}, a);
      return static_cast<T>(a / b);
    } else {
      return a / b;
    }
  });
}

// Pow(X, Y): the result has X's type; Y may be any of float32/float64/int32/int64.
void run_pow(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& y = ctx.input(1);
  ctx.set_output(0, visit_arithmetic(x.dtype(), "Pow base", [&]<typename T>() {
    return visit_arithmetic(y.dtype(), "Pow exponent", [&]<typename E>() {
      return map_binary<T, E, T>(x, y, x.dtype(), [](T a, E b) -> T {
        const double r = std::pow(static_cast<double>(a), static_cast<double>(b));
        if constexpr (std::is_integral_v<T>) return saturate_to_integer<T>(r);
        else return static_cast<T>(r);
      });
    });
  }));
}

template <typename F>
void run_float_unary(OpContext& ctx, F f) {
  const Tensor& x = ctx.input(0);
  ctx.set_output(0, visit_float(x.dtype(), ctx.node.op_type.c_str(), [&]<typename T>() {
    return map_unary<T, T>(x, x.dtype(), [&](T v) { return static_cast<T>(f(static_cast<double>(v))); });
  }));
}

void run_sqrt(OpContext& ctx) { run_float_unary(ctx, [](double v) { return std::sqrt(v); }); }
void run_erf(OpContext& ctx) { run_float_unary(ctx, [](double v) { return std::erf(v); }); }
void run_tanh(OpContext& ctx) { run_float_unary(ctx, [](double v) { return std::tanh(v); }); }

void run_relu(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  ctx.set_output(0, visit_arithmetic(x.dtype(), "Relu", [&]<typename T>() {
    // NaN stays NaN (max(0, NaN) in the spec's function body propagates it).
    return map_unary<T, T>(x, x.dtype(), [](T v) { return v < T{0} ? T{0} : v; });
  }));
}

}  // namespace

double gelu_erf(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }
double gelu_tanh(double v) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * v * (1.0 + std::tanh(k * (v + 0.044715 * v * v * v)));
}

namespace {

void check_gelu(const onnx::Node& node, int64_t) {
  const std::string a = attr_string(node, "approximate", "none");
  if (a != "none" && a != "tanh")
    throw Error(ErrorCode::model_format, "attribute 'approximate' should be \"none\" or \"tanh\", found \"" + a + "\"");
}

void run_gelu(OpContext& ctx) {
  if (attr_string(ctx.node, "approximate", "none") == "tanh") run_float_unary(ctx, gelu_tanh);
  else run_float_unary(ctx, gelu_erf);
}

void run_equal(OpContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  require_same_dtype(a, b);
  if (a.dtype() == DataType::boolean) {
    ctx.set_output(0, map_binary<uint8_t, uint8_t, uint8_t>(a, b, DataType::boolean, [](uint8_t x, uint8_t y) {
      return static_cast<uint8_t>((x != 0) == (y != 0));
    }));
    return;
  }
  ctx.set_output(0, visit_arithmetic(a.dtype(), "Equal", [&]<typename T>() {
    return map_binary<T, T, uint8_t>(a, b, DataType::boolean, [](T x, T y) { return static_cast<uint8_t>(x == y); });
  }));
}

void run_not(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DataType::boolean)
    throw Error(ErrorCode::runtime, "input should be bool, found " + dtype_name(x.dtype()));
  ctx.set_output(0, map_unary<uint8_t, uint8_t>(x, DataType::boolean, [](uint8_t v) { return static_cast<uint8_t>(v == 0); }));
}

// Where(condition, X, Y): three-way broadcasting; X and Y of any one element type.
void run_where(OpContext& ctx) {
  const Tensor& c = ctx.input(0);
  const Tensor& x = ctx.input(1);
  const Tensor& y = ctx.input(2);
  if (c.dtype() != DataType::boolean)
    throw Error(ErrorCode::runtime, "condition should be bool, found " + dtype_name(c.dtype()));
  require_same_dtype(x, y);
  std::vector<int64_t> shape = broadcast_shapes(broadcast_shapes(c.shape(), x.shape()), y.shape());
  std::array<std::vector<int64_t>, 3> strides{broadcast_strides(c.shape(), shape), broadcast_strides(x.shape(), shape),
                                              broadcast_strides(y.shape(), shape)};
  Tensor out(x.dtype(), shape);
  const uint8_t* pc = c.data<uint8_t>().data();
  const std::byte* px = x.bytes().data();
  const std::byte* py = y.bytes().data();
  std::byte* po = out.mutable_bytes();
  visit_element_size(x.dtype(), "Where", [&]<std::size_t Size>() {
    broadcast_for_each<3>(shape, strides, [&](const int64_t* off, int64_t o, int64_t n, const int64_t* step) {
      for (int64_t i = 0; i < n; ++i) {
        const bool take_x = pc[off[0] + i * step[0]] != 0;
        const std::byte* src = take_x ? px + (off[1] + i * step[1]) * Size : py + (off[2] + i * step[2]) * Size;
        std::memcpy(po + (o + i) * Size, src, Size);
      }
    });
  });
  ctx.set_output(0, std::move(out));
}

}  // namespace

void add_elementwise_ops(std::vector<OpSpec>& t) {
  t.push_back(promoted({"", "Add", 7, 2, 2, 1, 1, run_add}));
  t.push_back(promoted({"", "Sub", 7, 2, 2, 1, 1, run_sub}));
  t.push_back(promoted({"", "Mul", 7, 2, 2, 1, 1, run_mul}));
  t.push_back(promoted({"", "Div", 7, 2, 2, 1, 1, run_div}));
  t.push_back(promoted({"", "Pow", 7, 2, 2, 1, 1, run_pow}));
  t.push_back(promoted({"", "Sqrt", 6, 1, 1, 1, 1, run_sqrt}));
  t.push_back(promoted({"", "Erf", 9, 1, 1, 1, 1, run_erf}));
  t.push_back(promoted({"", "Tanh", 6, 1, 1, 1, 1, run_tanh}));
  t.push_back(promoted({"", "Relu", 6, 1, 1, 1, 1, run_relu}));
  t.push_back(promoted({"", "Gelu", 20, 1, 1, 1, 1, run_gelu, check_gelu}));
  t.push_back(promoted({"", "Equal", 11, 2, 2, 1, 1, run_equal}, 0));
  t.push_back({"", "Not", 1, 1, 1, 1, 1, run_not});
  t.push_back({"", "Where", 9, 3, 3, 1, 1, run_where});
}

}  // namespace leanembed::interp
