// Reads the shared synthetic models and compares what the reader finds with what an independent
// implementation reports. Every expected figure below was obtained once with Debian's python3-onnx
// 1.12 + numpy 1.24 (onnx.load, collections.Counter over (domain, op_type), numpy_helper.to_array;
// sums taken in float64), and the misaligned byte counts by locating each initializer's raw_data
// in the file with bytes.find (each pattern occurs exactly once) and testing offset % element size.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <numeric>

#include "leanembed/error.h"
#include "onnx/reader.h"
#include "test_support.h"

namespace {

using namespace leanembed::onnx;

std::string model_path(const std::string& model, const std::string& file) {
  return leanembed::test::shared_dir() + "/models/" + model + "/onnx/" + file;
}

std::map<std::string, int> op_counts(const Graph& g) {
  std::map<std::string, int> counts;
  for (const Node& n : g.nodes) counts[(n.domain.empty() ? "" : n.domain + ":") + n.op_type]++;
  return counts;
}

bool inside(const Model& m, const TensorData& t) {
  auto* b = m.file_bytes.data();
  return t.bytes.data() >= b && t.bytes.data() + t.bytes.size() <= b + m.file_bytes.size();
}

// Element i of a float32 tensor, read without assuming alignment.
float float_at(const TensorData& t, std::size_t i) {
  float v;
  std::memcpy(&v, t.bytes.data() + 4 * i, 4);
  return v;
}

double float_sum(const TensorData& t) {
  double s = 0;
  for (std::size_t i = 0; i < static_cast<std::size_t>(t.numel()); ++i) s += float_at(t, i);
  return s;
}

const Node& node(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes) if (n.name == name) return n;
  throw std::runtime_error("no node " + name);
}

const TensorData& init(const Model& m, const std::string& name) {
  const TensorData* t = m.graph.initializer(name);
  if (t == nullptr) throw std::runtime_error("no initializer " + name);
  return *t;
}

void expect_bert_io(const Model& m, int64_t hidden) {
  ASSERT_EQ(m.graph.inputs.size(), 3u);
  const char* names[] = {"input_ids", "attention_mask", "token_type_ids"};
  for (int i = 0; i < 3; ++i) {
    const ValueInfo& in = m.graph.inputs[i];
    EXPECT_EQ(in.name, names[i]);
    EXPECT_EQ(in.elem_type, DataType::int64);
    ASSERT_TRUE(in.has_shape);
    ASSERT_EQ(in.shape.size(), 2u);
    EXPECT_EQ(in.shape[0].param, "batch_size");
    EXPECT_EQ(in.shape[0].value, -1);
    EXPECT_EQ(in.shape[1].param, "sequence_length");
  }
  ASSERT_EQ(m.graph.outputs.size(), 1u);
  const ValueInfo& out = m.graph.outputs[0];
  EXPECT_EQ(out.name, "last_hidden_state");
  EXPECT_EQ(out.elem_type, DataType::float32);
  ASSERT_EQ(out.shape.size(), 3u);
  EXPECT_EQ(out.shape[0].param, "batch_size");
  EXPECT_EQ(out.shape[1].param, "sequence_length");
  EXPECT_EQ(out.shape[2].value, hidden);
  EXPECT_TRUE(out.shape[2].param.empty());
}

TEST(SharedModels, MiniLmFp32StructureMatchesPythonOnnx) {
  Model m = read_model(model_path("minilm-l6-synthetic", "model.onnx"));
  EXPECT_EQ(m.ir_version, 7);
  EXPECT_EQ(m.opset(), 14);
  EXPECT_EQ(m.opset_imports.size(), 1u);
  EXPECT_EQ(m.producer_name, "pytorch");
  EXPECT_EQ(m.producer_version, "1.13.0");
  expect_bert_io(m, 384);
  EXPECT_EQ(m.graph.nodes.size(), 689u);
  EXPECT_EQ(m.graph.initializers.size(), 101u);
  std::map<std::string, int> expected = {
      {"Add", 88},       {"Cast", 1},   {"Concat", 24},    {"Constant", 198}, {"Div", 25},
      {"Erf", 6},        {"Gather", 52}, {"MatMul", 48},    {"Mul", 26},       {"Pow", 13},
      {"ReduceMean", 26}, {"Reshape", 24}, {"Shape", 49},    {"Slice", 1},      {"Softmax", 6},
      {"Sqrt", 13},      {"Sub", 14},   {"Transpose", 24}, {"Unsqueeze", 51}};
  EXPECT_EQ(op_counts(m.graph), expected);
  // File order is already topological: kept as is.
  EXPECT_EQ(m.graph.nodes[0].name, "/Constant");
  EXPECT_EQ(m.graph.nodes[1].name, "/Unsqueeze");
  EXPECT_EQ(m.graph.nodes.back().name, "/encoder/layer.5/output/LayerNorm/Add_1");

  // Attributes.
  const Node& c2 = node(m.graph, "/Constant_2");  // a float scalar 1.0
  const Attribute* v = c2.attribute("value");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->type, AttributeType::tensor);
  EXPECT_EQ(v->t.dtype, DataType::float32);
  EXPECT_TRUE(v->t.dims.empty());
  EXPECT_EQ(float_at(v->t, 0), 1.0f);
  const Node& c1 = m.graph.nodes[2];  // /Constant_1: int64 [1] = {2}, third in the file
  ASSERT_EQ(c1.name, "/Constant_1");
  EXPECT_EQ(c1.attribute("value")->t.dtype, DataType::int64);
  EXPECT_EQ(c1.attribute("value")->t.as<int64_t>()[0], 2);
  int n_softmax = 0, n_perm = 0;
  for (const Node& n : m.graph.nodes) {
    if (n.op_type == "Softmax") {
      ++n_softmax;
      ASSERT_NE(n.attribute("axis"), nullptr);
      EXPECT_EQ(n.attribute("axis")->type, AttributeType::integer);
      EXPECT_EQ(n.attribute("axis")->i, -1);
    }
    if (n.name == "/encoder/layer.0/attention/self/Transpose_2") {
      ++n_perm;
      EXPECT_EQ(n.attribute("perm")->type, AttributeType::integers);
      EXPECT_EQ(n.attribute("perm")->ints, (std::vector<int64_t>{0, 2, 3, 1}));
    }
  }
  EXPECT_EQ(n_softmax, 6);
  EXPECT_EQ(n_perm, 1);

  // Initializer values (numpy: first, middle, last element and float64 sum).
  const TensorData& we = init(m, "embeddings.word_embeddings.weight");
  EXPECT_EQ(we.dtype, DataType::float32);
  EXPECT_EQ(we.dims, (std::vector<int64_t>{30522, 384}));
  EXPECT_EQ(we.bytes.size(), 30522u * 384u * 4u);
  EXPECT_EQ(float_at(we, 0), 0.0f);
  EXPECT_EQ(float_at(we, 30522 * 384 / 2), -0.0002193451f);
  EXPECT_EQ(float_at(we, 30522 * 384 - 1), -0.049804688f);
  EXPECT_NEAR(float_sum(we), 16.331581492326222, 1e-6);
  const TensorData& w957 = init(m, "onnx::MatMul_957");
  EXPECT_EQ(w957.dims, (std::vector<int64_t>{1536, 384}));
  EXPECT_EQ(float_at(w957, 0), -0.016357422f);
  EXPECT_EQ(float_at(w957, 1536 * 384 / 2), -0.02319336f);
  EXPECT_NEAR(float_sum(w957), -30.622607205994427, 1e-6);
  EXPECT_NEAR(float_sum(init(m, "embeddings.position_embeddings.weight")), -8.191976219415665, 1e-6);
}

TEST(SharedModels, MiniLmZeroCopyKeepsEveryWeightAViewOfTheMapping) {
  ReadOptions opt;
  opt.copy_misaligned = false;
  Model m = read_model(model_path("minilm-l6-synthetic", "model.onnx"), opt);
  EXPECT_EQ(m.bytes_copied, 0u);
  EXPECT_EQ(m.tensors_copied, 0u);
  EXPECT_EQ(m.bytes_decoded, 0u);  // everything is raw_data
  EXPECT_EQ(m.file_bytes.size(), 90389481u);
  std::size_t misaligned_bytes = 0, misaligned = 0, total = 0;
  for (const TensorData& t : m.graph.initializers) {
    EXPECT_TRUE(t.mapped) << t.name;
    EXPECT_TRUE(inside(m, t)) << t.name;
    total += t.bytes.size();
    // The mapping starts on a page boundary, so address % 4 == file offset % 4.
    if (reinterpret_cast<std::uintptr_t>(t.bytes.data()) % 4 != 0) {
      misaligned_bytes += t.bytes.size();
      ++misaligned;
      EXPECT_FALSE(t.aligned());
      EXPECT_THROW(t.as<float>(), leanembed::Error);
    }
  }
  EXPECT_EQ(total, 90261504u);
  EXPECT_EQ(misaligned, 57u);            // python: 57 of 101 initializers start at offset % 4 != 0
  EXPECT_EQ(misaligned_bytes, 83119104u);
}

TEST(SharedModels, MiniLmDefaultCopiesOnlyMisalignedWeights) {
  Model m = read_model(model_path("minilm-l6-synthetic", "model.onnx"));
  std::size_t views = 0, view_bytes = 0;
  for (const TensorData& t : m.graph.initializers) {
    EXPECT_TRUE(t.aligned()) << t.name;
    EXPECT_EQ(t.mapped, inside(m, t)) << t.name;
    if (t.mapped) {
      ++views;
      view_bytes += t.bytes.size();
    }
  }
  EXPECT_EQ(views, 101u - 57u);
  EXPECT_EQ(view_bytes, 90261504u - 83119104u);
  // Initializers plus the misaligned ones among the 198 Constant tensors (int64 needs 8 bytes).
  EXPECT_GE(m.bytes_copied, 83119104u);
  EXPECT_LT(m.bytes_copied, 83119104u + 198u * 64u);
  for (const Node& n : m.graph.nodes) {
    for (const Attribute& a : n.attributes) {
      if (a.type == AttributeType::tensor) {
        EXPECT_TRUE(a.t.aligned()) << n.name;
      }
    }
  }
  const TensorData& we = init(m, "embeddings.word_embeddings.weight");
  EXPECT_FALSE(we.mapped);  // it starts at file offset % 4 == 3
  EXPECT_EQ(we.as<float>()[30522 * 384 - 1], -0.049804688f);
}

// Loading is zero-copy: every aligned initializer is a view into the mapping, so read_model's time
// does not grow with the weights (the time is printed as a figure, never asserted).
TEST(SharedModels, MiniLmLoadsWithoutCopyingWeights) {
  std::string path = model_path("minilm-l6-synthetic", "model.onnx");
  ReadOptions opt;
  opt.copy_misaligned = false;
  read_model(path, opt);  // warm the page cache
  auto t0 = std::chrono::steady_clock::now();
  Model m = read_model(path, opt);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("read_model(minilm model.onnx, zero-copy): %.3f ms, %zu nodes\n", ms, m.graph.nodes.size());
  std::size_t mapped_bytes = 0, copied_bytes = 0;
  for (const TensorData& t : m.graph.initializers) (t.mapped ? mapped_bytes : copied_bytes) += t.bytes.size();
  std::printf("[ figure ] initializer bytes: %zu mapped, %zu copied\n", mapped_bytes, copied_bytes);
  EXPECT_GT(mapped_bytes, 85u << 20);  // the matrices and tables of the 90 MB file
  EXPECT_EQ(copied_bytes, 0u);         // copy_misaligned = false: nothing is copied
}

TEST(SharedModels, TinyBertFp32) {
  Model m = read_model(model_path("tiny-bert-synthetic", "model.onnx"));
  EXPECT_EQ(m.ir_version, 7);
  EXPECT_EQ(m.opset(), 14);
  expect_bert_io(m, 64);
  EXPECT_EQ(m.graph.nodes.size(), 253u);
  EXPECT_EQ(m.graph.initializers.size(), 37u);
  std::map<std::string, int> expected = {
      {"Add", 32},        {"Cast", 1},    {"Concat", 8},    {"Constant", 74}, {"Div", 9},
      {"Erf", 2},         {"Gather", 20}, {"MatMul", 16},   {"Mul", 10},      {"Pow", 5},
      {"ReduceMean", 10}, {"Reshape", 8}, {"Shape", 17},    {"Slice", 1},     {"Softmax", 2},
      {"Sqrt", 5},        {"Sub", 6},     {"Transpose", 8}, {"Unsqueeze", 19}};
  EXPECT_EQ(op_counts(m.graph), expected);
  const TensorData& we = init(m, "embeddings.word_embeddings.weight");
  EXPECT_EQ(we.dims, (std::vector<int64_t>{30522, 64}));
  EXPECT_EQ(float_at(we, 30522 * 64 / 2), -0.07128906f);
  EXPECT_NEAR(float_sum(we), -30.238318841904402, 1e-6);
  EXPECT_NEAR(float_sum(init(m, "onnx::MatMul_352")), -2.762242779135704, 1e-7);
  EXPECT_EQ(float_at(init(m, "onnx::MatMul_353"), 0), 0.084472656f);

  ReadOptions opt;
  opt.copy_misaligned = false;
  Model z = read_model(model_path("tiny-bert-synthetic", "model.onnx"), opt);
  std::size_t mis = 0;
  for (const auto& t : z.graph.initializers) {
    EXPECT_TRUE(t.mapped && inside(z, t)) << t.name;
    if (!t.aligned()) mis += t.bytes.size();
  }
  EXPECT_EQ(mis, 364288u);  // python: 25 initializers, 364288 bytes at offset % 4 != 0
}

TEST(SharedModels, TinyBertOpset17HasLayerNormalization) {
  Model m = read_model(model_path("tiny-bert-synthetic", "model_opset17.onnx"));
  EXPECT_EQ(m.ir_version, 8);
  EXPECT_EQ(m.opset(), 17);
  EXPECT_EQ(m.graph.nodes.size(), 203u);
  EXPECT_EQ(op_counts(m.graph)["LayerNormalization"], 5);
  EXPECT_EQ(op_counts(m.graph)["Constant"], 64);
  const Node* ln = nullptr;
  for (const Node& n : m.graph.nodes) {
    if (n.op_type == "LayerNormalization") {
      ln = &n;
      break;
    }
  }
  ASSERT_NE(ln, nullptr);
  EXPECT_EQ(ln->name, "/embeddings/LayerNorm/LayerNormalization");
  EXPECT_EQ(ln->inputs, (std::vector<std::string>{"/embeddings/Add_1_output_0", "embeddings.LayerNorm.weight",
                                                  "embeddings.LayerNorm.bias"}));
  EXPECT_EQ(ln->attribute("axis")->i, -1);
  EXPECT_EQ(ln->attribute("epsilon")->type, AttributeType::floating);
  EXPECT_EQ(ln->attribute("epsilon")->f, 9.999999960041972e-13f);
}

TEST(SharedModels, TinyBertFp16WeightsAreFloat16Bits) {
  Model m = read_model(model_path("tiny-bert-synthetic", "model_fp16.onnx"));
  EXPECT_EQ(m.graph.nodes.size(), 254u);
  EXPECT_EQ(op_counts(m.graph)["Cast"], 2);
  const TensorData& we = init(m, "embeddings.word_embeddings.weight");
  EXPECT_EQ(we.dtype, DataType::float16);
  EXPECT_EQ(we.bytes.size(), 30522u * 64u * 2u);
  auto bits = we.as<uint16_t>();
  EXPECT_EQ(bits[bits.size() / 2], 44176);
  EXPECT_EQ(bits.back(), 43040);
  EXPECT_EQ(std::accumulate(bits.begin(), bits.end(), uint64_t{0}), 51428624782u);
}

TEST(SharedModels, TinyBertQuantizedUint8Weights) {
  Model m = read_model(model_path("tiny-bert-synthetic", "model_quantized.onnx"));
  EXPECT_EQ(m.graph.nodes.size(), 298u);
  EXPECT_EQ(m.graph.initializers.size(), 63u);
  auto ops = op_counts(m.graph);
  EXPECT_EQ(ops["MatMulInteger"], 12);
  EXPECT_EQ(ops["DynamicQuantizeLinear"], 8);
  EXPECT_EQ(ops["DequantizeLinear"], 1);
  const TensorData& q = init(m, "embeddings.word_embeddings.weight_quantized");
  EXPECT_EQ(q.dtype, DataType::uint8);
  EXPECT_TRUE(q.mapped);  // bytes never need copying
  auto v = q.as<uint8_t>();
  ASSERT_EQ(v.size(), 30522u * 64u);
  EXPECT_EQ(v[0], 131);
  EXPECT_EQ(v[v.size() / 2], 93);
  EXPECT_EQ(v.back(), 114);
  EXPECT_EQ(std::accumulate(v.begin(), v.end(), int64_t{0}), 255879661);
  const TensorData& zp = init(m, "onnx::MatMul_353_zero_point");
  EXPECT_EQ(zp.dtype, DataType::uint8);
  EXPECT_TRUE(zp.dims.empty());
  EXPECT_EQ(zp.as<uint8_t>()[0], 127);
  EXPECT_EQ(init(m, "onnx::MatMul_353_scale").as<float>()[0], 0.004074755f);
}

TEST(SharedModels, TinyBertQ4AndOrtOptimizedUseMicrosoftDomain) {
  Model q4 = read_model(model_path("tiny-bert-synthetic", "model_q4.onnx"));
  EXPECT_EQ(q4.opset("com.microsoft"), 1);
  EXPECT_EQ(op_counts(q4.graph)["com.microsoft:MatMulNBits"], 12);
  for (const Node& n : q4.graph.nodes) {
    if (n.op_type != "MatMulNBits") continue;
    EXPECT_EQ(n.attribute("bits")->i, 4);
    EXPECT_EQ(n.attribute("block_size")->i, 32);
  }
  Model opt = read_model(model_path("tiny-bert-synthetic", "model_ort_optimized.onnx"));
  EXPECT_EQ(opt.graph.nodes.size(), 71u);
  EXPECT_EQ(opt.graph.initializers.size(), 52u);
  EXPECT_EQ(opt.opset_imports.size(), 9u);
  EXPECT_EQ(opt.opset("ai.onnx.ml"), 5);
  EXPECT_EQ(opt.opset("com.microsoft.nchwc"), 1);
  auto ops = op_counts(opt.graph);
  EXPECT_EQ(ops["com.microsoft:BiasGelu"], 2);
  EXPECT_EQ(ops["com.microsoft:FusedMatMul"], 2);
  EXPECT_EQ(ops["LayerNormalization"], 5);
  EXPECT_EQ(ops["MatMul"], 14);
}

TEST(SharedModels, EveryVariantHasATopologicalOrderInFileOrder) {
  for (const char* f : {"model.onnx", "model_opset17.onnx", "model_quantized.onnx", "model_int8.onnx",
                        "model_fp16.onnx", "model_q4.onnx", "model_ort_optimized.onnx"}) {
    Model m = read_model(model_path("tiny-bert-synthetic", f));
    auto order = topological_order(m.graph);
    ASSERT_EQ(order.size(), m.graph.nodes.size()) << f;
    for (std::size_t i = 0; i < order.size(); ++i) ASSERT_EQ(order[i], i) << f;
  }
}

}  // namespace
