// Ops that make tensors from attributes or scalars: Constant, ConstantOfShape, Range; and Cast.
#include <cmath>
#include <cstring>

#include "runtime/interpreter/cast.h"
#include "runtime/interpreter/elementwise.h"
#include "runtime/interpreter/ops.h"

namespace leanembed::interp {
namespace {

// ---- Cast ----------------------------------------------------------------------------------------
void check_cast(const onnx::Node& node, int64_t) {
  const auto to = static_cast<DataType>(attr_int_required(node, "to"));
  if (dtype_size(to) == 0) throw Error(ErrorCode::unsupported, "Cast to " + dtype_name(to) + " is not supported");
}

void run_cast(OpContext& ctx) {
  ctx.set_output(0, cast_tensor(ctx.input(0), static_cast<DataType>(attr_int_required(ctx.node, "to"))));
}

// ---- Constant ------------------------------------------------------------------------------------
constexpr const char* kConstantValueAttributes[] = {"value",        "value_float",  "value_floats", "value_int",
                                                     "value_ints",   "value_string", "value_strings", "sparse_value"};

void check_constant(const onnx::Node& node, int64_t) {
  const onnx::Attribute* found = nullptr;
  for (const char* name : kConstantValueAttributes) {
    if (const onnx::Attribute* a = node.attribute(name)) {
      if (found) throw Error(ErrorCode::model_format, "more than one value attribute");
      found = a;
    }
  }
  if (!found) throw Error(ErrorCode::model_format, "no value attribute");
  if (found->name == "value") {
    if (found->type != onnx::AttributeType::tensor)
      throw Error(ErrorCode::model_format, "attribute 'value' should be a tensor");
    if (dtype_size(found->t.dtype) == 0)
      throw Error(ErrorCode::unsupported, "constant of element type " + dtype_name(found->t.dtype));
  } else if (found->name != "value_float" && found->name != "value_floats" && found->name != "value_int" &&
             found->name != "value_ints") {
    throw Error(ErrorCode::unsupported, "constant attribute '" + found->name + "' is not supported");
  }
}

void run_constant(OpContext& ctx) {
  const onnx::Node& n = ctx.node;
  if (const onnx::Attribute* a = n.attribute("value")) {
    ctx.set_output(0, Tensor::view(a->t));
  } else if (n.attribute("value_float")) {
    ctx.set_output(0, Tensor::scalar_float(attr_float(n, "value_float", 0.0f)));
  } else if (const onnx::Attribute* f = n.attribute("value_floats")) {
    if (f->type != onnx::AttributeType::floats) throw Error(ErrorCode::model_format, "value_floats should be floats");
    ctx.set_output(0, Tensor::from_floats({static_cast<int64_t>(f->floats.size())}, f->floats));
  } else if (n.attribute("value_int")) {
    ctx.set_output(0, Tensor::scalar_int64(attr_int(n, "value_int", 0)));
  } else if (auto ints = attr_ints(n, "value_ints")) {
    ctx.set_output(0, Tensor::from_int64s({static_cast<int64_t>(ints->size())}, *ints));
  } else {
    throw Error(ErrorCode::model_format, "no supported value attribute");
  }
}

// ---- ConstantOfShape -----------------------------------------------------------------------------
void check_constant_of_shape(const onnx::Node& node, int64_t) {
  if (const onnx::Attribute* a = node.attribute("value")) {
    if (a->type != onnx::AttributeType::tensor) throw Error(ErrorCode::model_format, "attribute 'value' should be a tensor");
    if (a->t.numel() != 1) throw Error(ErrorCode::model_format, "attribute 'value' should hold one element");
    if (dtype_size(a->t.dtype) == 0)
      throw Error(ErrorCode::unsupported, "value of element type " + dtype_name(a->t.dtype));
  }
}

void run_constant_of_shape(OpContext& ctx) {
  std::vector<int64_t> shape = int_values(ctx.input(0), "shape");
  for (int64_t d : shape)
    if (d < 0) throw Error(ErrorCode::runtime, "negative dimension in shape " + shape_string(shape));
  Tensor value = Tensor::scalar_float(0.0f);
  if (const onnx::Attribute* a = ctx.node.attribute("value")) value = Tensor::view(a->t);
  if (value.numel() != 1) throw Error(ErrorCode::model_format, "attribute 'value' should hold one element");
  Tensor out(value.dtype(), shape);
  const std::size_t size = dtype_size(value.dtype());
  std::byte* dst = out.mutable_bytes();
  for (int64_t i = 0; i < out.numel(); ++i) std::memcpy(dst + static_cast<std::size_t>(i) * size, value.bytes().data(), size);
  ctx.set_output(0, std::move(out));
}

// ---- Range ---------------------------------------------------------------------------------------
template <typename T>
Tensor range_of(T start, T limit, T delta) {
  int64_t n = 0;
  if constexpr (std::is_integral_v<T>) {
    if (delta == 0) throw Error(ErrorCode::runtime, "delta is 0");
    // 128-bit so that limit - start cannot overflow.
    const __int128 span = static_cast<__int128>(limit) - static_cast<__int128>(start);
    const __int128 d = delta;
    if ((span > 0 && d > 0) || (span < 0 && d < 0)) n = static_cast<int64_t>((span + d + (d > 0 ? -1 : 1)) / d);
  } else {
    const double count = std::ceil((static_cast<double>(limit) - static_cast<double>(start)) / static_cast<double>(delta));
    if (!std::isfinite(count)) throw Error(ErrorCode::runtime, "the element count is not finite (delta 0 or NaN/inf bounds)");
    if (count > 0) {
      if (count > 9.0e18) throw Error(ErrorCode::runtime, "the element count overflows");
      n = static_cast<int64_t>(count);
    }
  }
  Tensor out(dtype_for<T>(), {n});
  T* p = out.mutable_data<T>().data();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<T>(i) * delta);
  return out;
}

void run_range(OpContext& ctx) {
  const Tensor& start = ctx.input(0);
  const Tensor& limit = ctx.input(1);
  const Tensor& delta = ctx.input(2);
  for (const Tensor* t : {&start, &limit, &delta}) {
    if (t->numel() != 1 || t->rank() > 1)
      throw Error(ErrorCode::runtime, "start, limit and delta should be scalars, found shape " + shape_string(t->shape()));
    if (t->dtype() != start.dtype()) throw Error(ErrorCode::runtime, "start, limit and delta differ in element type");
  }
  switch (start.dtype()) {
    case DataType::float32:
      return ctx.set_output(0, range_of<float>(start.data<float>()[0], limit.data<float>()[0], delta.data<float>()[0]));
    case DataType::float64:
      return ctx.set_output(0, range_of<double>(start.data<double>()[0], limit.data<double>()[0], delta.data<double>()[0]));
    case DataType::int32:
      return ctx.set_output(0, range_of<int32_t>(start.data<int32_t>()[0], limit.data<int32_t>()[0], delta.data<int32_t>()[0]));
    case DataType::int64:
      return ctx.set_output(0, range_of<int64_t>(start.data<int64_t>()[0], limit.data<int64_t>()[0], delta.data<int64_t>()[0]));
    default:
      throw Error(ErrorCode::runtime, "element type " + dtype_name(start.dtype()) + " is not supported");
  }
}

}  // namespace

void add_constant_ops(std::vector<OpSpec>& t) {
  t.push_back({"", "Cast", 6, 1, 1, 1, 1, run_cast, check_cast});
  t.push_back({"", "Constant", 1, 0, 0, 1, 1, run_constant, check_constant});
  t.push_back({"", "ConstantOfShape", 9, 1, 1, 1, 1, run_constant_of_shape, check_constant_of_shape});
  t.push_back({"", "Range", 11, 3, 3, 1, 1, run_range});
}

}  // namespace leanembed::interp
