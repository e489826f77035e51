// Malformed and unsupported models built by hand: wire-format errors, graph errors, subgraphs.
#include <gtest/gtest.h>

#include "reader_test_util.h"

namespace {

using namespace leanembed::onnx;
using leanembed::ErrorCode;
using leanembed::test::expect_error;
using leanembed::test::le_bytes;
using leanembed::test::model;
using leanembed::test::node;
using leanembed::test::parse;
using leanembed::test::Proto;
using leanembed::test::raw_tensor;
using leanembed::test::small_graph;
using leanembed::test::value_info;

TEST(ModelParse, SmallModelReadsBack) {
  Model m = parse(model(small_graph(), 13, 8));
  EXPECT_EQ(m.ir_version, 8);
  EXPECT_EQ(m.opset(), 13);
  EXPECT_EQ(m.opset("com.microsoft"), 0);
  EXPECT_EQ(m.producer_name, "proto_writer");
  EXPECT_EQ(m.path, "test.onnx");
  EXPECT_EQ(m.graph.name, "small");
  ASSERT_EQ(m.graph.nodes.size(), 2u);
  EXPECT_EQ(m.graph.nodes[0].op_type, "Add");
  EXPECT_EQ(m.graph.nodes[0].name, "add");
  EXPECT_EQ(m.graph.nodes[0].inputs, (std::vector<std::string>{"x", "w"}));
  EXPECT_EQ(m.graph.nodes[0].outputs, (std::vector<std::string>{"s"}));
  EXPECT_EQ(m.graph.nodes[1].op_type, "Relu");
  ASSERT_EQ(m.graph.inputs.size(), 1u);
  EXPECT_EQ(m.graph.inputs[0].name, "x");
  EXPECT_EQ(m.graph.inputs[0].elem_type, DataType::float32);
  ASSERT_EQ(m.graph.inputs[0].shape.size(), 2u);
  EXPECT_EQ(m.graph.inputs[0].shape[0].param, "N");
  EXPECT_EQ(m.graph.inputs[0].shape[0].value, -1);
  EXPECT_EQ(m.graph.inputs[0].shape[1].value, 2);
  ASSERT_NE(m.graph.initializer("w"), nullptr);
  EXPECT_EQ(m.graph.initializer("w")->numel(), 2);
  EXPECT_EQ(m.storage.size(), 1u);
}

TEST(ModelParse, AttributesOfEveryKind) {
  Proto n = node("Op", {"x"}, {"y"}, "n");
  n.bytes(7, "com.example");
  n.message(5, Proto().bytes(1, "f").varint(20, 1).float32(2, 0.25f));
  n.message(5, Proto().bytes(1, "i").varint(20, 2).int64(3, -9));
  n.message(5, Proto().bytes(1, "s").varint(20, 3).bytes(4, "text"));
  n.message(5, Proto().bytes(1, "fs").varint(20, 6).packed_floats(7, {1.5f, 2.5f}).float32(7, 3.5f));
  n.message(5, Proto().bytes(1, "is").varint(20, 7).packed_varints(8, {1, -2}).int64(8, 3));
  n.message(5, Proto().bytes(1, "ss").varint(20, 8).bytes(9, "a").bytes(9, "b"));
  Proto g;
  g.message(1, n).message(11, value_info("x", 1, {1})).message(12, value_info("y", 1, {1}));
  Model m = parse(model(g));
  const Node& r = m.graph.nodes.at(0);
  EXPECT_EQ(r.domain, "com.example");
  EXPECT_EQ(r.attribute("f")->type, AttributeType::floating);
  EXPECT_EQ(r.attribute("f")->f, 0.25f);
  EXPECT_EQ(r.attribute("i")->i, -9);
  EXPECT_EQ(r.attribute("s")->s, "text");
  EXPECT_EQ(r.attribute("fs")->floats, (std::vector<float>{1.5f, 2.5f, 3.5f}));
  EXPECT_EQ(r.attribute("is")->ints, (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(r.attribute("ss")->strings, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.attribute("nope"), nullptr);
}

TEST(ModelParse, AttributeErrors) {
  auto with_attr = [](const Proto& a) {
    Proto n = node("Op", {"x"}, {"y"}, "n");
    n.message(5, a);
    Proto g;
    g.message(1, n).message(11, value_info("x", 1, {1})).message(12, value_info("y", 1, {1}));
    return model(g);
  };
  expect_error([&] { parse(with_attr(Proto().bytes(1, "a").bytes(21, "outer"))); }, ErrorCode::unsupported,
               {"ref_attr_name", "outer"});
  expect_error([&] { parse(with_attr(Proto().bytes(1, "a").int64(3, 1))); }, ErrorCode::model_format, {"'a'", "no type"});
  expect_error([&] { parse(with_attr(Proto().bytes(1, "a").varint(20, 77))); }, ErrorCode::model_format,
               {"unknown attribute type 77"});
  expect_error([&] { parse(with_attr(Proto().bytes(1, "a").varint(20, 11))); }, ErrorCode::unsupported, {"sparse"});
  expect_error([&] { parse(with_attr(Proto().bytes(1, "a").varint(20, 4))); }, ErrorCode::model_format,
               {"TENSOR attribute without t"});
  expect_error([&] { parse(with_attr(Proto().bytes(1, "a").varint(20, 1).varint(2, 5))); }, ErrorCode::model_format,
               {"attribute[0]", "f: expected wire type fixed32, found varint"});
  expect_error([&] { parse(with_attr(Proto().varint(20, 2).int64(3, 5))); }, ErrorCode::model_format, {"no name"});
  Proto n = node("Op", {"x"}, {"y"}, "n");
  n.message(5, leanembed::test::int_attribute("k", 1)).message(5, leanembed::test::int_attribute("k", 2));
  Proto g;
  g.message(1, n).message(11, value_info("x", 1, {1})).message(12, value_info("y", 1, {1}));
  expect_error([&] { parse(model(g)); }, ErrorCode::model_format, {"'n'", "attribute 'k' appears twice"});
}

TEST(ModelParse, UnknownFieldsOfEveryWireTypeAreSkipped) {
  auto noise = [](Proto& p) { p.varint(1000, 5).fixed64(1001, 7).bytes(1002, "junk").fixed32(1003, 9); };
  Proto n1 = node("Add", {"x", "w"}, {"s"}, "add");
  noise(n1);
  Proto w = raw_tensor("w", 1, {2}, le_bytes<float>({1.5f, -2.0f}));
  noise(w);
  Proto g;
  g.message(1, n1).message(1, node("Relu", {"s"}, {"y"}, "relu"));
  g.message(5, w).message(11, value_info("x", 1, {-1, 2})).message(12, value_info("y", 1, {-1, 2}));
  g.bytes(10, "doc").message(14, Proto().bytes(1, "annotation"));
  noise(g);
  Proto m = model(g);
  noise(m);
  m.message(14, Proto().bytes(1, "key").bytes(2, "value"));  // metadata_props
  Model r = parse(m);
  EXPECT_EQ(r.graph.nodes.size(), 2u);
  EXPECT_EQ(r.graph.initializer("w")->numel(), 2);
}

TEST(ModelParse, WireFormatErrors) {
  const std::string good = model(small_graph()).str();
  auto raw = [](const std::string& bytes) {
    auto buf = std::make_shared<const std::string>(bytes);
    return parse_model(std::as_bytes(std::span(buf->data(), buf->size())), buf, "", "bad.onnx");
  };
  expect_error([&] { raw(""); }, ErrorCode::model_format, {"bad.onnx", "no graph"});
  expect_error([&] { raw(good.substr(0, good.size() - 1)); }, ErrorCode::model_format, {"bad.onnx", "truncated"});
  expect_error([&] { raw(std::string("\x08", 1)); }, ErrorCode::model_format, {"truncated or over-long varint"});
  expect_error([&] { raw("\x08" + std::string(10, '\xff') + "\x01"); }, ErrorCode::model_format,
               {"over-long varint"});  // 11 bytes
  expect_error([&] { raw("\x08" + std::string(9, '\xff') + "\x7f"); }, ErrorCode::model_format,
               {"over-long varint"});  // 10th byte carries more than the 64th bit
  EXPECT_THROW(raw("\x08" + std::string(9, '\xff') + "\x01"), leanembed::Error);  // 2^64-1 is fine: no graph
  expect_error([&] { raw(std::string("\x0b", 1)); }, ErrorCode::model_format, {"groups"});
  expect_error([&] { raw(std::string("\x0c", 1)); }, ErrorCode::model_format, {"groups"});
  expect_error([&] { raw(std::string("\x0e", 1)); }, ErrorCode::model_format, {"invalid wire type 6"});
  expect_error([&] { raw(std::string("\x0f", 1)); }, ErrorCode::model_format, {"invalid wire type 7"});
  expect_error([&] { raw(std::string("\x00\x01", 2)); }, ErrorCode::model_format, {"invalid field number 0"});
  expect_error([&] { raw(std::string("\x3a\x05" "ab", 4)); }, ErrorCode::model_format, {"5 bytes", "2 remain"});
  expect_error([&] { raw(std::string("\x0d" "ab", 3)); }, ErrorCode::model_format, {"truncated fixed32"});
  expect_error([&] { raw("This is not a protobuf at all"); }, ErrorCode::model_format, {"bad.onnx"});
  // Known fields with the wrong wire type.
  expect_error([&] { raw(Proto().bytes(1, "7").str()); }, ErrorCode::model_format,
               {"ModelProto", "ir_version: expected wire type varint, found length-delimited"});
  expect_error([&] { raw(Proto().varint(7, 1).str()); }, ErrorCode::model_format, {"graph", "length-delimited", "varint"});
  expect_error([&] { raw(Proto().fixed32(2, 1).str()); }, ErrorCode::model_format, {"producer_name"});
  Proto g = small_graph();
  g.varint(1, 3);  // node as a varint
  expect_error([&] { raw(model(g).str()); }, ErrorCode::model_format, {"graph", "node", "found varint"});
  Proto two;
  two.message(7, small_graph()).message(7, small_graph());
  expect_error([&] { raw(two.str()); }, ErrorCode::model_format, {"graph appears twice"});
  Proto opsets = model(small_graph());
  opsets.message(8, Proto().bytes(1, "ai.onnx").int64(2, 13));
  expect_error([&] { raw(opsets.str()); }, ErrorCode::model_format, {"opset_import", "twice"});
  Proto noop;
  noop.message(1, Proto().bytes(1, "x").bytes(2, "y")).message(11, value_info("x", 1, {1})).message(12, value_info("y", 1, {1}));
  expect_error([&] { raw(model(noop).str()); }, ErrorCode::model_format, {"graph.node[0]", "no op_type"});
  Proto neg;
  neg.message(1, node("Relu", {"x"}, {"y"})).message(11, value_info("x", 1, {-1}));
  Proto vi;
  Proto dim;
  dim.int64(1, -3);
  Proto shape;
  shape.message(1, dim);
  Proto tensor_type;
  tensor_type.varint(1, 1).message(2, shape);
  vi.bytes(1, "y").message(2, Proto().message(1, tensor_type));
  neg.message(12, vi);
  expect_error([&] { raw(model(neg).str()); }, ErrorCode::model_format, {"dim_value -3"});
  Proto sparse = small_graph();
  sparse.message(15, Proto());
  expect_error([&] { raw(model(sparse).str()); }, ErrorCode::unsupported, {"sparse initializers"});
}

Proto graph_of(std::initializer_list<Proto> nodes, std::initializer_list<std::string> inputs,
               std::initializer_list<std::string> outputs) {
  Proto g;
  for (const Proto& n : nodes) g.message(1, n);
  for (const auto& i : inputs) g.message(11, value_info(i, 1, {1}));
  for (const auto& o : outputs) g.message(12, value_info(o, 1, {1}));
  return g;
}

TEST(GraphChecks, UndefinedInputsAndOutputs) {
  expect_error([&] { parse(model(graph_of({node("Add", {"x", "missing_w"}, {"y"}, "add")}, {"x"}, {"y"}))); },
               ErrorCode::model_format,
               {"node 0 'add' (Add)", "'missing_w'", "neither a graph input, an initializer, nor the output of any node"});
  expect_error([&] { parse(model(graph_of({node("Relu", {"x"}, {"y"})}, {"x"}, {"z"}))); }, ErrorCode::model_format,
               {"graph output 'z'"});
  // Optional inputs left out ("") are fine.
  Model m = parse(model(graph_of({node("Clip", {"x", "", ""}, {"y"})}, {"x"}, {"y"})));
  EXPECT_EQ(m.graph.nodes[0].inputs.size(), 3u);
}

TEST(GraphChecks, ValuesProducedTwice) {
  expect_error([&] { parse(model(graph_of({node("Relu", {"x"}, {"y"}, "a"), node("Neg", {"x"}, {"y"}, "b")}, {"x"}, {"y"}))); },
               ErrorCode::model_format, {"value 'y' is produced twice", "'b'", "'a'"});
  expect_error([&] { parse(model(graph_of({node("Relu", {"x"}, {"x"}, "a")}, {"x"}, {"x"}))); }, ErrorCode::model_format,
               {"'x' is produced twice", "graph input or initializer"});
  Proto g = graph_of({node("Relu", {"x"}, {"y"})}, {"x"}, {"y"});
  g.message(5, raw_tensor("w", 1, {1}, le_bytes<float>({1}))).message(5, raw_tensor("w", 1, {1}, le_bytes<float>({2})));
  expect_error([&] { parse(model(g)); }, ErrorCode::model_format, {"initializer 'w' appears twice"});
  expect_error([&] { parse(model(graph_of({node("Relu", {"x"}, {"y"})}, {"x", "x"}, {"y"}))); }, ErrorCode::model_format,
               {"graph input 'x' appears twice"});
}

TEST(GraphChecks, CyclesAreRefusedNamingTheNodes) {
  expect_error([&] {
    parse(model(graph_of({node("Add", {"x", "c"}, {"a"}, "first"), node("Relu", {"a"}, {"b"}, "second"),
                          node("Neg", {"b"}, {"c"}, "third")},
                         {"x"}, {"c"})));
  }, ErrorCode::model_format, {"cycle", "'first'", "'second'", "'third'"});
  expect_error([&] { parse(model(graph_of({node("Relu", {"y"}, {"y"}, "self")}, {}, {"y"}))); }, ErrorCode::model_format,
               {"cycle", "'self'"});
}

TEST(GraphChecks, NodesOutOfOrderAreSortedStably) {
  // File order: c = Neg(b); b = Relu(a); a = Abs(x); d = Sin(x)
  Model m = parse(model(graph_of({node("Neg", {"b"}, {"c"}, "n2"), node("Relu", {"a"}, {"b"}, "n1"),
                                  node("Abs", {"x"}, {"a"}, "n0"), node("Sin", {"x"}, {"d"}, "n3")},
                                 {"x"}, {"c", "d"})));
  std::vector<std::string> names;
  for (const Node& n : m.graph.nodes) names.push_back(n.name);
  EXPECT_EQ(names, (std::vector<std::string>{"n0", "n1", "n2", "n3"}));
  auto order = topological_order(m.graph);
  EXPECT_EQ(order, (std::vector<std::size_t>{0, 1, 2, 3}));

  // topological_order on a graph built in memory, not sorted.
  Graph g;
  g.inputs.push_back(ValueInfo{"x", DataType::float32, {}, false});
  g.nodes.push_back(Node{"late", "Neg", "", {"a"}, {"b"}, {}});
  g.nodes.push_back(Node{"early", "Abs", "", {"x"}, {"a"}, {}});
  EXPECT_EQ(topological_order(g), (std::vector<std::size_t>{1, 0}));
  g.nodes[1].inputs = {"b"};
  expect_error([&] { topological_order(g); }, ErrorCode::model_format, {"cycle", "'late'", "'early'"});
  g.nodes[1].inputs = {"nowhere"};
  expect_error([&] { topological_order(g); }, ErrorCode::model_format, {"'early'", "'nowhere'"});
}

Proto graph_attribute(const std::string& name, const Proto& sub) {
  Proto a;
  a.bytes(1, name).varint(20, 5).message(6, sub);
  return a;
}

TEST(GraphChecks, SubgraphsMayUseOuterValuesAndOrderTheirNode) {
  // then_branch uses outer value "a" (produced by the Abs node that comes later in the file).
  Proto then_branch = graph_of({node("Neg", {"a"}, {"t"}, "inner")}, {}, {"t"});
  Proto if_node = node("If", {"cond"}, {"y"}, "if");
  if_node.message(5, graph_attribute("then_branch", then_branch));
  Proto g = graph_of({if_node, node("Abs", {"x"}, {"a"}, "abs")}, {"x", "cond"}, {"y"});
  Model m = parse(model(g));
  ASSERT_EQ(m.graph.nodes.size(), 2u);
  EXPECT_EQ(m.graph.nodes[0].name, "abs");  // moved before the If, whose subgraph reads "a"
  const Attribute* tb = m.graph.nodes[1].attribute("then_branch");
  ASSERT_NE(tb, nullptr);
  ASSERT_TRUE(tb->g);
  EXPECT_EQ(tb->g->nodes.at(0).name, "inner");

  Proto bad_branch = graph_of({node("Neg", {"nowhere"}, {"t"}, "inner")}, {}, {"t"});
  Proto bad_if = node("If", {"cond"}, {"y"}, "if");
  bad_if.message(5, graph_attribute("then_branch", bad_branch));
  expect_error([&] { parse(model(graph_of({bad_if}, {"cond"}, {"y"}))); }, ErrorCode::model_format,
               {"'if'", "'nowhere'"});
  Proto empty_g;
  empty_g.bytes(1, "g").varint(20, 5);
  Proto n = node("If", {"cond"}, {"y"}, "if");
  n.message(5, empty_g);
  expect_error([&] { parse(model(graph_of({n}, {"cond"}, {"y"}))); }, ErrorCode::model_format, {"GRAPH attribute without g"});
}

// A chain of If nodes, each holding the next in its then_branch, `depth` deep.
Proto nested(int depth) {
  Proto inner = graph_of({node("Identity", {"c"}, {"o0"})}, {}, {"o0"});
  for (int d = 1; d <= depth; ++d) {
    std::string out = std::to_string(d);
    out.insert(0, 1, 'o');  // (not "o" + ...: GCC 12 warns falsely, -Wrestrict)
    Proto n = node("If", {"c"}, {out});
    n.message(5, graph_attribute("then_branch", inner));
    inner = graph_of({n}, {}, {out});
  }
  return inner;
}

TEST(GraphChecks, NestingDepthIsLimited) {
  Proto ok = nested(8);  // the outermost is the main graph: 8 levels of subgraphs below it
  Proto g8 = ok;
  g8.message(11, value_info("c", 9, {}));
  EXPECT_NO_THROW(parse(model(g8)));
  Proto g9 = nested(9);
  g9.message(11, value_info("c", 9, {}));
  expect_error([&] { parse(model(g9)); }, ErrorCode::unsupported, {"nested deeper than 8"});
  ReadOptions deep;
  deep.max_graph_depth = 20;
  EXPECT_NO_THROW(parse(model(g9), deep));
}

TEST(GraphChecks, AdversarialDeepNestingIsAnErrorNotAStackOverflow) {
  // 3000 nested GraphProto -> NodeProto -> AttributeProto levels: the reader must stop at the depth
  // limit before recursing further. Built inside-out.
  std::string bytes;
  for (int d = 0; d < 3000; ++d) {
    Proto a;
    a.bytes(1, "g").varint(20, 5).bytes(6, bytes);
    Proto n;
    n.bytes(4, "If").message(5, a);
    Proto g;
    g.message(1, n);
    bytes = g.str();
  }
  Proto m;
  m.bytes(7, bytes);
  expect_error([&] { parse(m); }, ErrorCode::unsupported, {"nested deeper"});
}

}  // namespace
