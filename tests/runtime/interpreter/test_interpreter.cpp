// The interpreter itself: validation up front, topological order, releasing values after their
// last use, input checks, error messages naming nodes.
#include <thread>

#include "op_test_support.h"

namespace leanembed::interp {
namespace {

using namespace test;

onnx::Node node(const std::string& name, const std::string& op, std::vector<std::string> in,
                std::vector<std::string> out, std::vector<onnx::Attribute> attrs = {}) {
  onnx::Node n;
  n.name = name;
  n.op_type = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.attributes = std::move(attrs);
  return n;
}

onnx::ValueInfo value(const std::string& name, DataType t, std::vector<int64_t> dims = {}, bool has_shape = false) {
  onnx::ValueInfo v;
  v.name = name;
  v.elem_type = t;
  v.has_shape = has_shape;
  for (int64_t d : dims) {
    onnx::Dim dim;
    dim.value = d;
    if (d < 0) dim.param = "n";
    v.shape.push_back(dim);
  }
  return v;
}

onnx::Model model_with(std::vector<onnx::Node> nodes, std::vector<onnx::ValueInfo> inputs,
                       std::vector<std::string> outputs, int64_t opset = 14) {
  onnx::Model m;
  m.path = "test.onnx";
  m.opset_imports[""] = opset;
  m.graph.nodes = std::move(nodes);
  m.graph.inputs = std::move(inputs);
  for (auto& o : outputs) m.graph.outputs.push_back(value(o, DataType::undefined));
  return m;
}

TEST(Interpreter, UnsupportedOpIsNamedWithDomainAndNode) {
  auto m = model_with({node("mystery", "Foo", {"x"}, {"y"})}, {value("x", DataType::float32)}, {"y"});
  expect_error([&] { Interpreter i(m); }, ErrorCode::unsupported, {"'Foo'", "ai.onnx", "opset 14", "node 'mystery'"});
  m.graph.nodes[0].op_type = "Relu";
  m.graph.nodes[0].domain = "com.example";
  expect_error([&] { Interpreter i(m); }, ErrorCode::unsupported, {"'Relu'", "com.example", "mystery"});
}

TEST(Interpreter, UnnamedNodesAreNamedByIndexAndSubgraphsAreRefused) {
  auto m = model_with({node("", "Relu", {"x"}, {"a"}), node("", "FancyOp", {"a"}, {"y"})},
                      {value("x", DataType::float32)}, {"y"});
  m.graph.nodes[1].domain = "com.microsoft";
  expect_error([&] { Interpreter i(m); }, ErrorCode::unsupported, {"'FancyOp'", "com.microsoft", "node #1"});
  auto sub = model_with({node("r", "Relu", {"x"}, {"y"})}, {value("x", DataType::float32)}, {"y"});
  onnx::Attribute body;
  body.name = "body";
  body.type = onnx::AttributeType::graph;
  body.g = std::make_shared<onnx::Graph>();
  sub.graph.nodes[0].attributes.push_back(body);
  expect_error([&] { Interpreter i(sub); }, ErrorCode::unsupported, {"node 'r'", "subgraph"});
}

TEST(Interpreter, DefaultOpsetOutsideTheRangeIsUnsupported) {
  auto m = model_with({node("r", "Relu", {"x"}, {"y"})}, {value("x", DataType::float32)}, {"y"}, 10);
  expect_error([&] { Interpreter i(m); }, ErrorCode::unsupported, {"opset 10", "test.onnx"});
  m.opset_imports[""] = 22;
  expect_error([&] { Interpreter i(m); }, ErrorCode::unsupported, {"opset 22"});
}

TEST(Interpreter, StructuralProblemsAreModelFormatErrors) {
  // An input nobody produces.
  auto dangling = model_with({node("r", "Relu", {"nowhere"}, {"y"})}, {value("x", DataType::float32)}, {"y"});
  expect_error([&] { Interpreter i(dangling); }, ErrorCode::model_format, {"node 'r'", "'nowhere'"});
  // A cycle a -> b -> a.
  auto cycle = model_with({node("a", "Relu", {"vb"}, {"va"}), node("b", "Relu", {"va"}, {"vb"})}, {}, {"va"});
  expect_error([&] { Interpreter i(cycle); }, ErrorCode::model_format, {"cycle"});
  // Wrong arity.
  auto arity = model_with({node("add3", "Add", {"x", "x", "x"}, {"y"})}, {value("x", DataType::float32)}, {"y"});
  expect_error([&] { Interpreter i(arity); }, ErrorCode::model_format, {"node 'add3'", "3 inputs"});
  // A value produced twice.
  auto twice = model_with({node("a", "Relu", {"x"}, {"y"}), node("b", "Relu", {"x"}, {"y"})},
                          {value("x", DataType::float32)}, {"y"});
  expect_error([&] { Interpreter i(twice); }, ErrorCode::model_format, {"node 'b'", "'y'"});
  // A graph output nobody produces.
  auto no_out = model_with({node("a", "Relu", {"x"}, {"y"})}, {value("x", DataType::float32)}, {"z"});
  expect_error([&] { Interpreter i(no_out); }, ErrorCode::model_format, {"'z'"});
}

TEST(Interpreter, RunsNodesInTopologicalOrderWhateverTheFileOrder) {
  // y = Relu(Sub(x, 1)) with the nodes stored backwards and a Constant in the middle.
  auto m = model_with({node("relu", "Relu", {"d"}, {"y"}), node("one", "Constant", {}, {"c"}, {attr_f("value_float", 1)}),
                       node("sub", "Sub", {"x", "c"}, {"d"})},
                      {value("x", DataType::float32)}, {"y"});
  Interpreter interpreter(m);
  EXPECT_EQ(interpreter.execution_order(), (std::vector<std::string>{"one", "sub", "relu"}));
  auto out = interpreter.run({{"x", f32({3}, {0, 1, 3})}});
  expect_floats(out.at("y"), {3}, {0, 0, 2});
}

TEST(Interpreter, ReleasesValuesAfterTheirLastUse) {
  // x -> a -> b -> c, each 1000 floats: at most two are alive at once (8000 bytes).
  auto chain = model_with({node("r1", "Relu", {"x"}, {"a"}), node("r2", "Relu", {"a"}, {"b"}),
                           node("r3", "Relu", {"b"}, {"c"})},
                          {value("x", DataType::float32)}, {"c"});
  Interpreter interpreter(chain);
  RunStats stats;
  auto out = interpreter.run({{"x", Tensor(DataType::float32, {1000})}}, &stats);
  EXPECT_EQ(stats.nodes_run, 3);
  EXPECT_EQ(stats.peak_bytes, 8000u);
  EXPECT_EQ(out.at("c").numel(), 1000);
}

TEST(Interpreter, KeepsAValueUntilItsLastReader) {
  // a is read by r2 and by add (later): it must survive r2. Peak: a, b and c alive = 12000 bytes.
  auto fan = model_with({node("r1", "Relu", {"x"}, {"a"}), node("r2", "Relu", {"a"}, {"b"}),
                         node("add", "Add", {"a", "b"}, {"c"})},
                        {value("x", DataType::float32)}, {"c"});
  Interpreter interpreter(fan);
  RunStats stats;
  Tensor x(DataType::float32, {1000});
  x.mutable_data<float>()[0] = 2.0f;
  auto out = interpreter.run({{"x", x}}, &stats);
  EXPECT_EQ(out.at("c").data<float>()[0], 4.0f);
  EXPECT_EQ(stats.peak_bytes, 12000u);
}

TEST(Interpreter, ReshapeViewsAreCountedOnce) {
  // b = Reshape(a) shares a's storage: a and b together are 4000 bytes, not 8000.
  onnx::Model m = model_with({node("r1", "Relu", {"x"}, {"a"}), node("shape", "Constant", {}, {"s"}, {attr_ints("value_ints", {10, 100})}),
                              node("reshape", "Reshape", {"a", "s"}, {"b"}), node("r2", "Relu", {"b"}, {"c"}),
                              node("add", "Add", {"a", "c"}, {"d"})},
                             {value("x", DataType::float32)}, {"d"});
  Interpreter interpreter(m);
  RunStats stats;
  auto out = interpreter.run({{"x", Tensor(DataType::float32, {10, 100})}}, &stats);
  EXPECT_EQ(out.at("d").shape(), (std::vector<int64_t>{10, 100}));
  // x is released after r1, the 16-byte shape constant after reshape, b after r2; the largest
  // moment is after add: a (= b's storage) + c + d = 12000.
  EXPECT_EQ(stats.peak_bytes, 12000u);
}

TEST(Interpreter, ChecksInputs) {
  auto m = model_with({node("r", "Relu", {"x"}, {"y"})}, {value("x", DataType::float32, {-1, 4}, true)}, {"y"});
  Interpreter interpreter(m);
  EXPECT_EQ(interpreter.inputs().size(), 1u);
  expect_error([&] { interpreter.run({}); }, ErrorCode::invalid_argument, {"'x'", "missing"});
  expect_error([&] { interpreter.run({{"x", i64({1, 4}, {1, 2, 3, 4})}}); }, ErrorCode::invalid_argument,
               {"'x'", "float32", "int64"});
  expect_error([&] { interpreter.run({{"x", f32({1, 3}, {1, 2, 3})}}); }, ErrorCode::invalid_argument,
               {"'x'", "[1, 3]", "[n, 4]"});
  expect_error([&] { interpreter.run({{"x", f32({1, 4}, {1, 2, 3, 4})}, {"extra", f32({1}, {1})}}); },
               ErrorCode::invalid_argument, {"'extra'", "inputs: x"});
  expect_floats(interpreter.run({{"x", f32({2, 4}, {1, -2, 3, -4, -5, 6, -7, 8})}}).at("y"), {2, 4},
                {1, 0, 3, 0, 0, 6, 0, 8});
}

TEST(Interpreter, InitializersAreWeightsAndMayBeOverridden) {
  // y = x @ W with W an initializer; W is also listed as a graph input, so a caller may replace it.
  auto m = model_with({node("mm", "MatMul", {"x", "W"}, {"y"})}, {value("x", DataType::float32)}, {"y"});
  m.graph.initializers.push_back(tensor_data("W", f32({2, 2}, {1, 2, 3, 4})));
  m.graph.inputs.push_back(value("W", DataType::float32));
  Interpreter interpreter(m);
  EXPECT_EQ(interpreter.inputs().size(), 1u);  // only x must be given
  expect_floats(interpreter.run({{"x", f32({1, 2}, {1, 1})}}).at("y"), {1, 2}, {4, 6});
  expect_floats(interpreter.run({{"x", f32({1, 2}, {1, 1})}, {"W", f32({2, 2}, {1, 0, 0, 1})}}).at("y"), {1, 2}, {1, 1});
}

TEST(Interpreter, InitializerOfTheWrongSizeIsRefused) {
  auto m = model_with({node("r", "Relu", {"W"}, {"y"})}, {}, {"y"});
  onnx::TensorData bad = tensor_data("W", f32({3}, {1, 2, 3}));
  bad.dims = {4};
  m.graph.initializers.push_back(bad);
  expect_error([&] { Interpreter i(m); }, ErrorCode::model_format, {"'W'"});
}

TEST(Interpreter, RuntimeErrorsNameTheFailingNode) {
  auto m = model_with({node("fine", "Relu", {"x"}, {"a"}), node("broken", "Add", {"a", "z"}, {"y"})},
                      {value("x", DataType::float32), value("z", DataType::float32)}, {"y"});
  Interpreter interpreter(m);
  expect_error([&] { interpreter.run({{"x", f32({2}, {1, 2})}, {"z", f32({3}, {1, 2, 3})}}); }, ErrorCode::runtime,
               {"node 'broken' (Add)", "[2]", "[3]"});
}

TEST(Interpreter, OmittedOptionalInputsAndOutputs) {
  // Slice without axes/steps given as "" and LayerNormalization with only its Mean output kept.
  auto m = model_with({node("ln", "LayerNormalization", {"x", "s", ""}, {"", "mean"})},
                      {value("x", DataType::float32), value("s", DataType::float32)}, {"mean"}, 17);
  Interpreter interpreter(m);
  expect_floats(interpreter.run({{"x", f32({2, 2}, {1, 3, 4, 4})}, {"s", f32({2}, {1, 1})}}).at("mean"), {2, 1}, {2, 4});
}

TEST(Interpreter, ConcurrentRunsAreIndependent) {
  auto m = model_with({node("mm", "MatMul", {"x", "x2"}, {"y"})},
                      {value("x", DataType::float32), value("x2", DataType::float32)}, {"y"});
  Interpreter interpreter(m);
  std::vector<float> results(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 20; ++r) {
        float v = static_cast<float>(t + 1);
        auto out = interpreter.run({{"x", f32({1, 1}, {v})}, {"x2", f32({1, 1}, {v})}});
        results[static_cast<std::size_t>(t)] = out.at("y").data<float>()[0];
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(results, (std::vector<float>{1, 4, 9, 16}));
}

}  // namespace
}  // namespace leanembed::interp
