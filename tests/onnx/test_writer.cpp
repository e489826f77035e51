// The ONNX writer: read -> write -> read keeps every graph element and tensor byte of the shared
// models; writing is a fixed point (write(read(write(m))) == write(m)); python-onnx's checker
// accepts what we write; failures leave no file behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "onnx/reader.h"
#include "onnx/writer.h"
#include "reader_test_util.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using namespace leanembed::onnx;

void expect_same_tensor(const TensorData& a, const TensorData& b, const std::string& where) {
  EXPECT_EQ(a.name, b.name) << where;
  EXPECT_EQ(a.dtype, b.dtype) << where << " " << a.name;
  EXPECT_EQ(a.dims, b.dims) << where << " " << a.name;
  ASSERT_EQ(a.bytes.size(), b.bytes.size()) << where << " " << a.name;
  EXPECT_TRUE(a.bytes.empty() || std::memcmp(a.bytes.data(), b.bytes.data(), a.bytes.size()) == 0)
      << where << " " << a.name << ": bytes differ";
}

void expect_same_value_infos(const std::vector<ValueInfo>& a, const std::vector<ValueInfo>& b, const std::string& where) {
  ASSERT_EQ(a.size(), b.size()) << where;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name) << where;
    EXPECT_EQ(a[i].elem_type, b[i].elem_type) << where << " " << a[i].name;
    EXPECT_EQ(a[i].has_shape, b[i].has_shape) << where << " " << a[i].name;
    ASSERT_EQ(a[i].shape.size(), b[i].shape.size()) << where << " " << a[i].name;
    for (std::size_t d = 0; d < a[i].shape.size(); ++d) {
      EXPECT_EQ(a[i].shape[d].value, b[i].shape[d].value) << where << " " << a[i].name << " dim " << d;
      EXPECT_EQ(a[i].shape[d].param, b[i].shape[d].param) << where << " " << a[i].name << " dim " << d;
    }
  }
}

void expect_same_graph(const Graph& a, const Graph& b, const std::string& where) {
  EXPECT_EQ(a.name, b.name);
  ASSERT_EQ(a.nodes.size(), b.nodes.size()) << where;
  for (std::size_t i = 0; i < a.nodes.size(); ++i) {
    const Node& x = a.nodes[i];
    const Node& y = b.nodes[i];
    const std::string at = where + " node " + std::to_string(i) + " '" + x.name + "'";
    EXPECT_EQ(x.name, y.name) << at;
    EXPECT_EQ(x.op_type, y.op_type) << at;
    EXPECT_EQ(x.domain, y.domain) << at;
    EXPECT_EQ(x.inputs, y.inputs) << at;
    EXPECT_EQ(x.outputs, y.outputs) << at;
    ASSERT_EQ(x.attributes.size(), y.attributes.size()) << at;
    for (std::size_t k = 0; k < x.attributes.size(); ++k) {
      const Attribute& p = x.attributes[k];
      const Attribute& q = y.attributes[k];
      EXPECT_EQ(p.name, q.name) << at;
      EXPECT_EQ(p.type, q.type) << at << " " << p.name;
      EXPECT_EQ(std::memcmp(&p.f, &q.f, sizeof p.f), 0) << at << " " << p.name;
      EXPECT_EQ(p.i, q.i) << at << " " << p.name;
      EXPECT_EQ(p.s, q.s) << at << " " << p.name;
      EXPECT_EQ(p.floats, q.floats) << at << " " << p.name;
      EXPECT_EQ(p.ints, q.ints) << at << " " << p.name;
      EXPECT_EQ(p.strings, q.strings) << at << " " << p.name;
      if (p.type == AttributeType::tensor) expect_same_tensor(p.t, q.t, at);
      ASSERT_EQ(p.tensors.size(), q.tensors.size()) << at;
      for (std::size_t t = 0; t < p.tensors.size(); ++t) expect_same_tensor(p.tensors[t], q.tensors[t], at);
      ASSERT_EQ(static_cast<bool>(p.g), static_cast<bool>(q.g)) << at;
      if (p.g) expect_same_graph(*p.g, *q.g, at + " " + p.name);
      ASSERT_EQ(p.graphs.size(), q.graphs.size()) << at;
      for (std::size_t s = 0; s < p.graphs.size(); ++s) expect_same_graph(*p.graphs[s], *q.graphs[s], at);
    }
  }
  ASSERT_EQ(a.initializers.size(), b.initializers.size()) << where;
  for (std::size_t i = 0; i < a.initializers.size(); ++i) expect_same_tensor(a.initializers[i], b.initializers[i], where);
  expect_same_value_infos(a.inputs, b.inputs, where + " inputs");
  expect_same_value_infos(a.outputs, b.outputs, where + " outputs");
  expect_same_value_infos(a.value_info, b.value_info, where + " value_info");
}

void expect_same_model(const Model& a, const Model& b) {
  EXPECT_EQ(a.ir_version, b.ir_version);
  EXPECT_EQ(a.producer_name, b.producer_name);
  EXPECT_EQ(a.producer_version, b.producer_version);
  EXPECT_EQ(a.opset_imports, b.opset_imports);
  expect_same_graph(a.graph, b.graph, "graph");
}

Model parse_bytes(const std::vector<std::byte>& bytes) {
  auto buf = std::make_shared<const std::vector<std::byte>>(bytes);
  return parse_model(std::span<const std::byte>(*buf), buf, "", "written.onnx");
}

std::string temp_path(const std::string& name) {
  fs::path dir = fs::path(leanembed::test::binary_dir()) / ("onnx_writer_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

// Runs python3-onnx's checker on a file; returns its first line of complaint ("" = accepted).
std::string python_check(const std::string& path) {
  const std::string out = path + ".check.txt";
  const std::string cmd = "/usr/bin/python3 -c \"import onnx,sys; onnx.checker.check_model(sys.argv[1])\" '" + path +
                          "' > '" + out + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  std::string text = rc == 0 ? std::string() : leanembed::test::read_file(out);
  fs::remove(out);
  if (rc != 0 && text.empty()) text = "python3 exited with " + std::to_string(rc);
  return text;
}

struct Case {
  std::string folder, file;
};

class RoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(RoundTrip, ReadWriteReadKeepsEverything) {
  const Case c = GetParam();
  const std::string path = leanembed::test::shared_dir() + "/models/" + c.folder + "/onnx/" + c.file;
  Model original = read_model(path);
  std::vector<std::byte> bytes = serialize_model(original);
  Model again = parse_bytes(bytes);
  expect_same_model(original, again);
  // A fixed point: what we write from what we read back is byte for byte what we wrote.
  EXPECT_TRUE(serialize_model(again) == bytes);
  // The file form is the same bytes.
  const std::string out = temp_path(c.folder + "_" + c.file);
  EXPECT_EQ(write_model(original, out), bytes.size());
  const std::string text = leanembed::test::read_file(out);
  ASSERT_EQ(text.size(), bytes.size());
  EXPECT_EQ(std::memcmp(text.data(), bytes.data(), bytes.size()), 0);
  // python-onnx 1.12's checker knows no com.microsoft ops; check the default-domain files.
  bool microsoft = false;
  for (const Node& n : original.graph.nodes) microsoft |= n.domain == "com.microsoft";
  if (!microsoft) {
    EXPECT_EQ(python_check(out), "") << out;
  }
  fs::remove(out);
}

INSTANTIATE_TEST_SUITE_P(
    SharedModels, RoundTrip,
    ::testing::Values(Case{"tiny-bert-synthetic", "model.onnx"}, Case{"tiny-bert-synthetic", "model_opset17.onnx"},
                      Case{"tiny-bert-synthetic", "model_quantized.onnx"}, Case{"tiny-bert-synthetic", "model_int8.onnx"},
                      Case{"tiny-bert-synthetic", "model_fp16.onnx"}, Case{"tiny-bert-synthetic", "model_q4.onnx"},
                      Case{"tiny-bert-synthetic", "model_ort_optimized.onnx"},
                      Case{"minilm-l6-synthetic", "model.onnx"}, Case{"minilm-l6-synthetic", "model_quantized.onnx"}),
    [](const ::testing::TestParamInfo<Case>& i) {
      std::string n = i.param.folder.substr(0, i.param.folder.find('-')) + "_" + i.param.file;
      for (char& ch : n) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return n;
    });

// The python-made seeds use typed fields, subgraphs (If) and every attribute kind; after a round
// trip their values survive (now as raw_data).
TEST(Writer, PythonMadeSeedsRoundTrip) {
  for (const char* name : {"typed_fields.onnx", "if_subgraph.onnx"}) {
    Model m = read_model(leanembed::test::source_dir() + "/fuzz/corpus/fuzz_onnx_reader/" + name);
    std::vector<std::byte> bytes = serialize_model(m);
    Model again = parse_bytes(bytes);
    expect_same_model(m, again);
    const std::string out = temp_path(name);
    write_model(m, out);
    EXPECT_EQ(python_check(out), "") << name;
    fs::remove(out);
  }
}

// Hand-made values at the edges of the encoding: negative ints (ten-byte varints), symbolic and
// unknown dims, empty names, a scalar tensor, an empty tensor, every attribute list type.
TEST(Writer, EdgeValues) {
  Model m;
  m.ir_version = 8;
  m.producer_name = "test";
  m.opset_imports = {{"", 17}, {"com.microsoft", 1}};
  auto scalar = std::make_shared<std::vector<float>>(1, -2.5f);
  TensorData s;
  s.name = "s";
  s.dtype = DataType::float32;
  s.bytes = std::as_bytes(std::span<const float>(*scalar));
  s.owner = scalar;
  TensorData empty;
  empty.name = "e";
  empty.dtype = DataType::int64;
  empty.dims = {0, 3};
  m.graph.initializers = {s, empty};
  Node n;
  n.op_type = "Custom";
  n.domain = "com.microsoft";
  n.inputs = {"x", "", "s"};
  n.outputs = {"y"};
  Attribute a;
  a.name = "i";
  a.type = AttributeType::integer;
  a.i = -9'000'000'000'000LL;
  Attribute f;
  f.name = "fs";
  f.type = AttributeType::floats;
  f.floats = {1.0f, -0.0f, 3.5e-38f};
  Attribute is;
  is.name = "is";
  is.type = AttributeType::integers;
  is.ints = {-1, 0, INT64_MAX, INT64_MIN};
  Attribute ss;
  ss.name = "ss";
  ss.type = AttributeType::strings;
  ss.strings = {"", std::string("a\0b", 3), "ü"};
  Attribute t;
  t.name = "t";
  t.type = AttributeType::tensor;
  t.t = s;
  n.attributes = {a, f, is, ss, t};
  m.graph.nodes = {n};
  ValueInfo x;
  x.name = "x";
  x.elem_type = DataType::float32;
  x.has_shape = true;
  x.shape = {Dim{-1, "batch"}, Dim{-1, ""}, Dim{7, ""}};
  ValueInfo y;
  y.name = "y";
  y.elem_type = DataType::float16;
  y.has_shape = true;  // a scalar: a shape with no dims
  m.graph.inputs = {x};
  m.graph.outputs = {y};
  Model again = parse_bytes(serialize_model(m));
  expect_same_model(m, again);
}

TEST(Writer, RefusesTensorsWhoseBytesDoNotMatchTheirShape) {
  Model m = read_model(leanembed::test::shared_dir() + "/models/tiny-bert-synthetic/onnx/model.onnx");
  TensorData& t = m.graph.initializers.at(0);
  t.dims.back() += 1;
  leanembed::test::expect_error([&] { serialize_model(m); }, leanembed::ErrorCode::invalid_argument,
                                {t.name, "bytes for"});
  const std::string out = temp_path("bad.onnx");
  leanembed::test::expect_error([&] { write_model(m, out); }, leanembed::ErrorCode::invalid_argument, {t.name});
  EXPECT_FALSE(fs::exists(out));
}

TEST(Writer, UnwritablePathIsAnIoErrorAndLeavesNoFile) {
  Model m = read_model(leanembed::test::shared_dir() + "/models/tiny-bert-synthetic/onnx/model.onnx");
  leanembed::test::expect_error([&] { write_model(m, "/nonexistent-folder/x.onnx"); }, leanembed::ErrorCode::io,
                                {"/nonexistent-folder/x.onnx"});
  // /dev/full accepts the open and fails the writes: the error is reported, the temporary removed.
  const std::string dir = fs::path(temp_path("x")).parent_path().string();
  ASSERT_EQ(::symlink("/dev/full", (dir + "/full.onnx.tmp-" + std::to_string(::getpid())).c_str()), 0);
  leanembed::test::expect_error([&] { write_model(m, dir + "/full.onnx"); }, leanembed::ErrorCode::io, {"full.onnx"});
  EXPECT_FALSE(fs::exists(dir + "/full.onnx"));
  EXPECT_FALSE(fs::is_symlink(dir + "/full.onnx.tmp-" + std::to_string(::getpid())));
}

}  // namespace
