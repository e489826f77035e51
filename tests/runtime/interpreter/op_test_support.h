// Helpers for the interpreter's op tests: one-node models built in code, run through the real
// Interpreter, and float comparisons. Expected values in the tests are worked out by hand from the
// ONNX operator spec, never produced by the code under test.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "onnx/model.h"
#include "runtime/interpreter/interpreter.h"
#include "runtime/interpreter/tensor.h"

namespace leanembed::interp::test {

inline onnx::Attribute attr_i(const std::string& name, int64_t v) {
  onnx::Attribute a;
  a.name = name;
  a.type = onnx::AttributeType::integer;
  a.i = v;
  return a;
}
inline onnx::Attribute attr_f(const std::string& name, float v) {
  onnx::Attribute a;
  a.name = name;
  a.type = onnx::AttributeType::floating;
  a.f = v;
  return a;
}
inline onnx::Attribute attr_s(const std::string& name, const std::string& v) {
  onnx::Attribute a;
  a.name = name;
  a.type = onnx::AttributeType::string;
  a.s = v;
  return a;
}
inline onnx::Attribute attr_ints(const std::string& name, std::vector<int64_t> v) {
  onnx::Attribute a;
  a.name = name;
  a.type = onnx::AttributeType::integers;
  a.ints = std::move(v);
  return a;
}
inline onnx::Attribute attr_floats(const std::string& name, std::vector<float> v) {
  onnx::Attribute a;
  a.name = name;
  a.type = onnx::AttributeType::floats;
  a.floats = std::move(v);
  return a;
}

// "x3" (built with += : GCC 12 warns falsely (-Wrestrict) about indexed_name("x", i)).
inline std::string indexed_name(const char* prefix, std::size_t i) {
  std::string s(prefix);
  s += std::to_string(i);
  return s;
}

// A TensorData owning a copy of `t`'s bytes (as a reader's decoded field would).
inline onnx::TensorData tensor_data(const std::string& name, const Tensor& t) {
  auto buffer = std::make_shared<std::vector<std::byte>>(t.bytes().begin(), t.bytes().end());
  onnx::TensorData d;
  d.name = name;
  d.dtype = t.dtype();
  d.dims = t.shape();
  d.bytes = std::span<const std::byte>(buffer->data(), buffer->size());
  d.owner = buffer;
  return d;
}
inline onnx::Attribute attr_t(const std::string& name, const Tensor& t) {
  onnx::Attribute a;
  a.name = name;
  a.type = onnx::AttributeType::tensor;
  a.t = tensor_data("", t);
  return a;
}

// A model with one node `op_type` whose inputs are graph inputs x0, x1, ... (an undefined Tensor
// leaves that input out with ""), and outputs y0, y1, ... (n_outputs of them).
inline onnx::Model one_node_model(const std::string& op_type, int64_t opset, const std::vector<Tensor>& inputs,
                                  std::vector<onnx::Attribute> attributes = {}, int n_outputs = 1,
                                  const std::string& domain = "") {
  onnx::Model m;
  m.opset_imports[""] = opset;
  if (!domain.empty()) m.opset_imports[domain] = 1;
  onnx::Node n;
  n.name = std::string("the_").append(op_type);
  n.op_type = op_type;
  n.domain = domain;
  n.attributes = std::move(attributes);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) {
      n.inputs.push_back("");
      continue;
    }
    onnx::ValueInfo v;
    v.name = indexed_name("x", i);
    v.elem_type = inputs[i].dtype();
    m.graph.inputs.push_back(v);
    n.inputs.push_back(v.name);
  }
  for (int o = 0; o < n_outputs; ++o) {
    n.outputs.push_back(indexed_name("y", static_cast<std::size_t>(o)));
    onnx::ValueInfo v;
    v.name = n.outputs.back();
    m.graph.outputs.push_back(v);
  }
  m.graph.nodes.push_back(std::move(n));
  return m;
}

// Runs op_type on `inputs` and returns its outputs y0, y1, ...
inline std::vector<Tensor> run_op(const std::string& op_type, int64_t opset, const std::vector<Tensor>& inputs,
                                  std::vector<onnx::Attribute> attributes = {}, int n_outputs = 1,
                                  const std::string& domain = "") {
  Interpreter interpreter(one_node_model(op_type, opset, inputs, std::move(attributes), n_outputs, domain));
  Interpreter::TensorMap feed;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined()) feed[indexed_name("x", i)] = inputs[i];
  auto out = interpreter.run(feed);
  std::vector<Tensor> result;
  for (int o = 0; o < n_outputs; ++o) result.push_back(out.at(indexed_name("y", static_cast<std::size_t>(o))));
  return result;
}
inline Tensor run1(const std::string& op_type, int64_t opset, const std::vector<Tensor>& inputs,
                   std::vector<onnx::Attribute> attributes = {}) {
  return run_op(op_type, opset, inputs, std::move(attributes)).at(0);
}

inline Tensor f32(std::vector<int64_t> shape, std::vector<float> v) { return Tensor::from_floats(std::move(shape), v); }
inline Tensor i64(std::vector<int64_t> shape, std::vector<int64_t> v) { return Tensor::from_int64s(std::move(shape), v); }
inline Tensor i32(std::vector<int64_t> shape, std::vector<int32_t> v) { return Tensor::from_int32s(std::move(shape), v); }
inline Tensor b8(std::vector<int64_t> shape, std::vector<uint8_t> v) { return Tensor::from_bools(std::move(shape), v); }

inline std::vector<float> floats_of(const Tensor& t) {
  auto d = t.data<float>();
  return {d.begin(), d.end()};
}
inline std::vector<int64_t> int64s_of(const Tensor& t) {
  auto d = t.data<int64_t>();
  return {d.begin(), d.end()};
}
inline std::vector<int32_t> int32s_of(const Tensor& t) {
  auto d = t.data<int32_t>();
  return {d.begin(), d.end()};
}
inline std::vector<uint8_t> bools_of(const Tensor& t) {
  EXPECT_EQ(t.dtype(), DataType::boolean);
  auto d = t.data<uint8_t>();
  return {d.begin(), d.end()};
}

// Checks dtype float32, the shape, and every value within `tol` (absolute).
inline void expect_floats(const Tensor& t, const std::vector<int64_t>& shape, const std::vector<float>& expected,
                          float tol = 1e-6f) {
  ASSERT_EQ(t.dtype(), DataType::float32);
  ASSERT_EQ(t.shape(), shape);
  auto d = t.data<float>();
  ASSERT_EQ(d.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (std::isnan(expected[i])) {
      EXPECT_TRUE(std::isnan(d[i])) << "element " << i;
    } else if (std::isinf(expected[i])) {
      EXPECT_EQ(d[i], expected[i]) << "element " << i;
    } else {
      EXPECT_NEAR(d[i], expected[i], tol) << "element " << i;
    }
  }
}

// Runs `f` and checks it throws leanembed::Error with `code` and a message containing each of
// `fragments`.
template <typename F>
void expect_error(F&& f, ErrorCode code, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& s : fragments) EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << e.what();
  }
}

}  // namespace leanembed::interp::test
