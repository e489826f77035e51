#include "runtime/interpreter/op_context.h"

namespace leanembed::interp {

const Tensor& OpContext::input(std::size_t i) const {
  if (!has_input(i))
    throw Error(ErrorCode::model_format, "required input " + std::to_string(i) + " is missing");
  return *inputs[i];
}

void OpContext::set_output(std::size_t i, Tensor t) {
  if (i >= outputs.size()) return;  // an optional output the node does not declare
  outputs[i] = std::move(t);
}

namespace {

const onnx::Attribute* typed_attr(const onnx::Node& node, const char* name, onnx::AttributeType type,
                                  const char* type_name) {
  const onnx::Attribute* a = node.attribute(name);
  if (a && a->type != type)
    throw Error(ErrorCode::model_format, std::string("attribute '") + name + "' should be " + type_name +
                                             ", found type code " + std::to_string(static_cast<int>(a->type)));
  return a;
}

}  // namespace

int64_t attr_int(const onnx::Node& node, const char* name, int64_t fallback) {
  const auto* a = typed_attr(node, name, onnx::AttributeType::integer, "an int");
  return a ? a->i : fallback;
}

float attr_float(const onnx::Node& node, const char* name, float fallback) {
  const auto* a = typed_attr(node, name, onnx::AttributeType::floating, "a float");
  return a ? a->f : fallback;
}

std::string attr_string(const onnx::Node& node, const char* name, const std::string& fallback) {
  const auto* a = typed_attr(node, name, onnx::AttributeType::string, "a string");
  return a ? a->s : fallback;
}

std::optional<std::vector<int64_t>> attr_ints(const onnx::Node& node, const char* name) {
  const auto* a = typed_attr(node, name, onnx::AttributeType::integers, "a list of ints");
  if (!a) return std::nullopt;
  return a->ints;
}

int64_t attr_int_required(const onnx::Node& node, const char* name) {
  const auto* a = typed_attr(node, name, onnx::AttributeType::integer, "an int");
  if (!a) throw Error(ErrorCode::model_format, std::string("required attribute '") + name + "' is missing");
  return a->i;
}

int64_t normalize_axis(int64_t axis, int64_t rank, const char* what) {
  if (axis < -rank || axis >= rank)
    throw Error(ErrorCode::runtime, std::string(what) + " " + std::to_string(axis) + " is out of range for rank " +
                                        std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> int_values(const Tensor& t, const char* what) {
  if (t.dtype() != DataType::int64 && t.dtype() != DataType::int32)
    throw Error(ErrorCode::runtime, std::string(what) + " should be int64 or int32, found " + dtype_name(t.dtype()));
  if (t.rank() > 1)
    throw Error(ErrorCode::runtime, std::string(what) + " should be 1-D, found shape " + shape_string(t.shape()));
  std::vector<int64_t> v(static_cast<std::size_t>(t.numel()));
  if (t.dtype() == DataType::int64) {
    auto d = t.data<int64_t>();
    v.assign(d.begin(), d.end());
  } else {
    auto d = t.data<int32_t>();
    v.assign(d.begin(), d.end());
  }
  return v;
}

double scalar_value(const Tensor& t, const char* what) {
  if (t.numel() != 1)
    throw Error(ErrorCode::runtime, std::string(what) + " should hold one value, found shape " + shape_string(t.shape()));
  return t.value_as_double(0);
}

}  // namespace leanembed::interp
