// Small models written by an independent protobuf writer: onnx.helper from Debian's python3-onnx
// 1.12 (the script that made them is in fuzz/corpus/fuzz_onnx_reader/README.md; they double as fuzz
// seeds). Unlike the exporters' files these use the typed *_data fields, subgraphs and external data.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "reader_test_util.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using namespace leanembed::onnx;

std::string seed(const std::string& name) {
  return leanembed::test::source_dir() + "/fuzz/corpus/fuzz_onnx_reader/" + name;
}

template <typename T>
std::vector<T> values(const TensorData& t) {
  std::vector<T> v(t.bytes.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}

TEST(PythonMade, TypedDataFields) {
  Model m = read_model(seed("typed_fields.onnx"));
  EXPECT_EQ(m.opset(), 17);
  EXPECT_EQ(m.opset("com.microsoft"), 1);
  const Graph& g = m.graph;
  ASSERT_EQ(g.initializers.size(), 5u);
  // make_tensor(..., [-1, 300, 5]) etc. store values in int64_data / float_data / int32_data.
  EXPECT_EQ(g.initializer("i")->dtype, DataType::int64);
  EXPECT_EQ(values<int64_t>(*g.initializer("i")), (std::vector<int64_t>{-1, 300, 5}));
  EXPECT_EQ(values<float>(*g.initializer("f")), (std::vector<float>{3.0f, 4.0f}));
  EXPECT_EQ(values<uint8_t>(*g.initializer("b")), (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(values<int8_t>(*g.initializer("q")), (std::vector<int8_t>{-3, 7}));
  EXPECT_EQ(values<uint16_t>(*g.initializer("h")), (std::vector<uint16_t>{0x3c00}));
  EXPECT_GT(m.bytes_decoded, 0u);
  ASSERT_EQ(g.nodes.size(), 3u);
  EXPECT_EQ(values<int64_t>(g.nodes[0].attribute("value")->t), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(g.nodes[1].attribute("perm")->ints, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(g.nodes[2].attribute("epsilon")->f, 1e-5f);
  EXPECT_EQ(g.nodes[2].attribute("axis")->i, -1);
}

TEST(PythonMade, IfWithSubgraphs) {
  Model m = read_model(seed("if_subgraph.onnx"));
  ASSERT_EQ(m.graph.nodes.size(), 1u);
  const Node& n = m.graph.nodes[0];
  EXPECT_EQ(n.op_type, "If");
  ASSERT_TRUE(n.attribute("then_branch")->g);
  ASSERT_TRUE(n.attribute("else_branch")->g);
  EXPECT_EQ(n.attribute("then_branch")->g->nodes.at(0).op_type, "Neg");
  EXPECT_EQ(n.attribute("else_branch")->g->outputs.at(0).name, "e");
  EXPECT_EQ(m.graph.inputs.at(1).elem_type, DataType::boolean);
  EXPECT_TRUE(m.graph.inputs.at(1).has_shape);
  EXPECT_TRUE(m.graph.inputs.at(1).shape.empty());
}

TEST(PythonMade, ExternalDataNextToTheModel) {
  fs::path dir = fs::path(leanembed::test::binary_dir()) / ("onnx_python_external_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(seed("external.onnx"), dir / "model.onnx");
  float w[2] = {0.25f, -8.0f};
  std::ofstream(dir / "weights.bin", std::ios::binary).write(reinterpret_cast<const char*>(w), sizeof w);
  Model m = read_model((dir / "model.onnx").string());
  EXPECT_EQ(values<float>(*m.graph.initializer("w")), (std::vector<float>{0.25f, -8.0f}));
  EXPECT_EQ(m.storage.size(), 2u);
  fs::remove_all(dir);
  // Without the folder (as the fuzzer parses it), external data is refused.
  leanembed::test::expect_error([&] { read_model(seed("external.onnx")); }, leanembed::ErrorCode::io,
                                {"weights.bin", "not found"});
}

}  // namespace
