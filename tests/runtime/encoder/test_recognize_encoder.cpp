// The recognizer on the shared models: accepts the torch exports (opset 14 and 17), extracts the
// configuration from the graph, and rejects altered graphs with a reason naming what differs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "onnx/reader.h"
#include "core/float16.h"
#include "runtime/encoder/recognize_encoder.h"
#include "test_support.h"

namespace leanembed::runtime::encoder {
namespace {

std::string model_path(const std::string& model, const std::string& file) {
  return test::shared_dir() + "/models/" + model + "/onnx/" + file;
}

const onnx::Node& node_named(const onnx::Model& m, const std::string& name) {
  for (const auto& n : m.graph.nodes)
    if (n.name == name) return n;
  throw std::runtime_error("test: no node " + name);
}
onnx::Node& node_named(onnx::Model& m, const std::string& name) {
  return const_cast<onnx::Node&>(node_named(static_cast<const onnx::Model&>(m), name));
}

// The data pointer of the initializer feeding input `input` of node `name`.
const void* initializer_data(const onnx::Model& m, const std::string& node, std::size_t input) {
  const onnx::Node& n = node_named(m, node);
  const onnx::TensorData* t = m.graph.initializer(n.inputs.at(input));
  if (!t) throw std::runtime_error("test: input " + std::to_string(input) + " of " + node + " is no initializer");
  return t->bytes.data();
}

struct Expected {
  const char* model;
  const char* file;
  int64_t hidden, layers, heads, ffn;
};

class RecognizeShared : public ::testing::TestWithParam<Expected> {};

TEST_P(RecognizeShared, ExtractsTheConfigurationAndTheRightWeights) {
  const Expected& e = GetParam();
  onnx::Model model = onnx::read_model(model_path(e.model, e.file));
  RecognizeResult r = recognize_encoder(model);
  ASSERT_TRUE(r.weights) << r.reason;
  const EncoderWeights& w = *r.weights;
  const EncoderConfig& c = w.config;
  EXPECT_EQ(c.hidden, e.hidden);
  EXPECT_EQ(c.layers, e.layers);
  EXPECT_EQ(c.heads, e.heads);
  EXPECT_EQ(c.head_size, e.hidden / e.heads);
  EXPECT_EQ(c.ffn, e.ffn);
  EXPECT_EQ(c.vocab, 30522);
  EXPECT_EQ(c.max_positions, 512);
  EXPECT_EQ(c.type_vocab, 2);
  EXPECT_EQ(c.position_ids, PositionIdsForm::sliced_buffer);
  EXPECT_TRUE(c.has_attention_mask);
  EXPECT_FLOAT_EQ(c.mask_fill, -3.4028234663852886e+38f);
  // torch divides the scores by sqrt(head_size).
  EXPECT_FLOAT_EQ(c.attention_scale_divisor, std::sqrt(static_cast<float>(e.hidden / e.heads)));
  EXPECT_FLOAT_EQ(c.attention_scale, 1.0f / std::sqrt(static_cast<float>(e.hidden / e.heads)));
  EXPECT_EQ(c.output_name, "last_hidden_state");
  EXPECT_EQ(c.token_type_ids_name, "token_type_ids");
  EXPECT_EQ(c.attention_mask_name, "attention_mask");
  ASSERT_EQ(static_cast<int64_t>(w.layers.size()), e.layers);
  EXPECT_FLOAT_EQ(w.embedding_norm.eps, 1e-12f);
  for (const auto& layer : w.layers) {
    EXPECT_FLOAT_EQ(layer.attention_norm.eps, 1e-12f);
    EXPECT_FLOAT_EQ(layer.output_norm.eps, 1e-12f);
    EXPECT_EQ(layer.ffn_in.out, e.ffn);
    EXPECT_EQ(layer.ffn_out.in, e.ffn);
  }

  // Zero-copy views of the right tensors, in the right places.
  EXPECT_EQ(w.bytes_copied, 0u);
  EXPECT_EQ(static_cast<const void*>(w.word_embeddings.bytes), model.graph.initializer("embeddings.word_embeddings.weight")->bytes.data());
  EXPECT_EQ(static_cast<const void*>(w.position_embeddings.bytes), model.graph.initializer("embeddings.position_embeddings.weight")->bytes.data());
  EXPECT_EQ(static_cast<const void*>(w.token_type_embeddings.bytes), model.graph.initializer("embeddings.token_type_embeddings.weight")->bytes.data());
  for (int64_t i = 0; i < e.layers; ++i) {
    const std::string p = "/encoder/layer." + std::to_string(i);
    const EncoderLayerWeights& l = w.layers[static_cast<std::size_t>(i)];
    EXPECT_EQ(static_cast<const void*>(l.query.weight.bytes), initializer_data(model, p + "/attention/self/query/MatMul", 1));
    EXPECT_EQ(static_cast<const void*>(l.key.weight.bytes), initializer_data(model, p + "/attention/self/key/MatMul", 1));
    EXPECT_EQ(static_cast<const void*>(l.value.weight.bytes), initializer_data(model, p + "/attention/self/value/MatMul", 1));
    EXPECT_EQ(static_cast<const void*>(l.attention_output.weight.bytes), initializer_data(model, p + "/attention/output/dense/MatMul", 1));
    EXPECT_EQ(static_cast<const void*>(l.ffn_in.weight.bytes), initializer_data(model, p + "/intermediate/dense/MatMul", 1));
    EXPECT_EQ(static_cast<const void*>(l.ffn_out.weight.bytes), initializer_data(model, p + "/output/dense/MatMul", 1));
    const std::string q = "encoder.layer." + std::to_string(i);
    EXPECT_EQ(static_cast<const void*>(l.query.bias.data), model.graph.initializer(q + ".attention.self.query.bias")->bytes.data());
    EXPECT_EQ(static_cast<const void*>(l.key.bias.data), model.graph.initializer(q + ".attention.self.key.bias")->bytes.data());
    EXPECT_EQ(static_cast<const void*>(l.value.bias.data), model.graph.initializer(q + ".attention.self.value.bias")->bytes.data());
    EXPECT_EQ(static_cast<const void*>(l.attention_norm.gamma.data), model.graph.initializer(q + ".attention.output.LayerNorm.weight")->bytes.data());
    EXPECT_EQ(static_cast<const void*>(l.output_norm.beta.data), model.graph.initializer(q + ".output.LayerNorm.bias")->bytes.data());
    EXPECT_EQ(static_cast<const void*>(l.ffn_out.bias.data), model.graph.initializer(q + ".output.dense.bias")->bytes.data());
  }
  // Every initializer of these graphs is a weight of the encoder, and all are accounted for.
  std::size_t initializer_bytes = 0;
  for (const auto& t : model.graph.initializers) initializer_bytes += t.bytes.size();
  EXPECT_EQ(w.weight_bytes, initializer_bytes);
}

INSTANTIATE_TEST_SUITE_P(
    SharedModels, RecognizeShared,
    ::testing::Values(Expected{"tiny-bert-synthetic", "model.onnx", 64, 2, 4, 128},
                      Expected{"tiny-bert-synthetic", "model_opset17.onnx", 64, 2, 4, 128},
                      Expected{"minilm-l6-synthetic", "model.onnx", 384, 6, 12, 1536}),
    [](const auto& info) {
      std::string s = std::string(info.param.model) + "_" + info.param.file;
      for (char& ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return s;
    });

TEST(RecognizeEncoder, ViewsOutliveTheModel) {
  RecognizeResult r = recognize_encoder(onnx::read_model(model_path("tiny-bert-synthetic", "model.onnx")));
  ASSERT_TRUE(r.weights) << r.reason;
  // The model is gone; the views must still read the weights (ASan would flag a dangling view).
  float sum = 0;
  for (int64_t i = 0; i < r.weights->word_embeddings.size; i += 997) sum += r.weights->word_embeddings.load(i);
  EXPECT_TRUE(std::isfinite(sum));
}

// Whether [p, p + n) lies inside one of the model's mappings (Model::storage holds the mapping of
// the file, whose bytes are Model::file_bytes).
bool inside_file(const onnx::Model& m, const void* p, std::size_t n) {
  const auto* b = static_cast<const std::byte*>(p);
  return b >= m.file_bytes.data() && b + n <= m.file_bytes.data() + m.file_bytes.size();
}

// With copy_misaligned = false (what the Embedder uses) the matrices stay views of the mapped file
// even where the exporter left them misaligned; only small vectors are copied, into aligned storage.
TEST(RecognizeEncoder, ZeroCopyKeepsMisalignedMatricesAsViews) {
  onnx::ReadOptions options;
  options.copy_misaligned = false;
  onnx::Model model = onnx::read_model(model_path("minilm-l6-synthetic", "model.onnx"), options);
  ASSERT_EQ(model.bytes_copied, 0u);
  RecognizeResult r = recognize_encoder(model);
  ASSERT_TRUE(r.weights) << r.reason;
  const EncoderWeights& w = *r.weights;
  ASSERT_EQ(w.layers.size(), 6u);

  struct Matrix {
    std::string name;
    const std::byte* bytes;
    int64_t size;  // fp32 values
  };
  std::vector<Matrix> matrices{{"word", w.word_embeddings.bytes, w.word_embeddings.size},
                               {"position", w.position_embeddings.bytes, w.position_embeddings.size},
                               {"token type", w.token_type_embeddings.bytes, w.token_type_embeddings.size}};
  EXPECT_EQ(w.word_embeddings.encoding, TableEncoding::fp32);
  for (std::size_t i = 0; i < w.layers.size(); ++i) {
    const EncoderLayerWeights& l = w.layers[i];
    const std::string p = "layer " + std::to_string(i) + " ";
    const std::pair<const char*, const LinearWeights*> linears[] = {
        {"query", &l.query}, {"key", &l.key}, {"value", &l.value}, {"attention output", &l.attention_output},
        {"ffn in", &l.ffn_in}, {"ffn out", &l.ffn_out}};
    for (const auto& [name, lin] : linears) {
      EXPECT_EQ(lin->encoding, LinearEncoding::fp32);
      matrices.push_back({p + name, lin->weight.bytes, lin->weight.size});
    }
  }
  std::size_t misaligned_matrix_bytes = 0, matrix_bytes = 0;
  for (const auto& [name, bytes, size] : matrices) {
    const std::size_t n = static_cast<std::size_t>(size) * sizeof(float);
    EXPECT_TRUE(inside_file(model, bytes, n)) << name << " is not a view of the mapped file";
    matrix_bytes += n;
    if (reinterpret_cast<std::uintptr_t>(bytes) % alignof(float) != 0) misaligned_matrix_bytes += n;
  }
  // The export leaves most of the weight bytes misaligned (the case this is about), the word table among them.
  EXPECT_NE(reinterpret_cast<std::uintptr_t>(w.word_embeddings.bytes) % alignof(float), 0u);
  EXPECT_GT(misaligned_matrix_bytes, matrix_bytes / 2);
  // The word table reads back the initializer's values (memcpy loads), e.g. its last value.
  const onnx::TensorData* we = model.graph.initializer("embeddings.word_embeddings.weight");
  float last;
  std::memcpy(&last, we->bytes.data() + we->bytes.size() - sizeof(float), sizeof last);
  EXPECT_EQ(w.word_embeddings.load(w.word_embeddings.size - 1), last);

  // Vectors: float-aligned, equal to the initializer's bytes; the copies are small.
  std::vector<std::pair<std::string, const AlignedFloatView*>> vectors{{"embedding gamma", &w.embedding_norm.gamma},
                                                                       {"embedding beta", &w.embedding_norm.beta}};
  for (std::size_t i = 0; i < w.layers.size(); ++i) {
    const EncoderLayerWeights& l = w.layers[i];
    const std::string p = "layer " + std::to_string(i) + " ";
    const std::pair<const char*, const LinearWeights*> linears[] = {
        {"query", &l.query}, {"key", &l.key}, {"value", &l.value}, {"attention output", &l.attention_output},
        {"ffn in", &l.ffn_in}, {"ffn out", &l.ffn_out}};
    for (const auto& [name, lin] : linears)
      vectors.push_back({p + name + " bias", &lin->bias});
    vectors.push_back({p + "attention gamma", &l.attention_norm.gamma});
    vectors.push_back({p + "attention beta", &l.attention_norm.beta});
    vectors.push_back({p + "output gamma", &l.output_norm.gamma});
    vectors.push_back({p + "output beta", &l.output_norm.beta});
  }
  std::size_t copied = 0;
  for (const auto& [name, v] : vectors) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v->data) % alignof(float), 0u) << name;
    if (!inside_file(model, v->data, static_cast<std::size_t>(v->size) * sizeof(float)))
      copied += static_cast<std::size_t>(v->size) * sizeof(float);
  }
  EXPECT_EQ(w.bytes_copied, copied);  // exactly the vectors that are not views
  EXPECT_GT(w.bytes_copied, 0u);      // this export has misaligned vectors too
  const std::size_t per_layer = w.bytes_copied / w.layers.size();
  std::cout << "minilm zero-copy: matrices " << matrix_bytes << " bytes (" << misaligned_matrix_bytes
            << " misaligned) viewed in place; vectors copied " << w.bytes_copied << " bytes (" << per_layer
            << " per layer)\n";
  EXPECT_LT(per_layer, 64u * 1024u);
  // Only vectors were copied: at most every bias and LayerNorm parameter.
  const std::size_t H = 384, F = 1536;
  EXPECT_LE(w.bytes_copied, sizeof(float) * (2 * H + 6 * (5 * H + F + 4 * H)));
  EXPECT_EQ(w.weight_bytes, [&] {
    std::size_t b = 0;
    for (const auto& t : model.graph.initializers) b += t.bytes.size();
    return b;
  }());
}

// The views of a zero-copy model keep the mapping alive after the Model is gone.
TEST(RecognizeEncoder, ZeroCopyViewsOutliveTheModel) {
  onnx::ReadOptions options;
  options.copy_misaligned = false;
  RecognizeResult r = recognize_encoder(onnx::read_model(model_path("tiny-bert-synthetic", "model.onnx"), options));
  ASSERT_TRUE(r.weights) << r.reason;
  float sum = 0;
  for (int64_t i = 0; i < r.weights->word_embeddings.size; i += 997) sum += r.weights->word_embeddings.load(i);
  for (int64_t i = 0; i < r.weights->layers[0].query.bias.size; ++i) sum += r.weights->layers[0].query.bias.data[i];
  EXPECT_TRUE(std::isfinite(sum));
}

TEST(RecognizeEncoder, RejectsOrtOptimizedGraphsNamingTheFusedOperator) {
  RecognizeResult r = recognize_encoder(onnx::read_model(model_path("tiny-bert-synthetic", "model_ort_optimized.onnx")));
  EXPECT_FALSE(r.weights);
  EXPECT_NE(r.reason.find("com.microsoft"), std::string::npos) << r.reason;
}

// ---- quantized and half-precision forms ----------------------------------------------------------

struct EncodedExpected {
  const char* model;
  const char* file;
  const char* form;          // EncoderWeights::weight_form
  LinearEncoding encoding;   // of every linear layer
  TableEncoding word_table;  // of the word embeddings
  int64_t hidden, layers, heads, ffn;
};

std::string file_of(const EncodedExpected& e) {
  if (std::string(e.model) == "minilm-l6-synthetic" && std::string(e.file) != "model_quantized.onnx")
    return test::minilm_variants_dir() + "/onnx/" + e.file;
  return model_path(e.model, e.file);
}

class RecognizeEncodedForms : public ::testing::TestWithParam<EncodedExpected> {};

// The node computing linear layer `name` ("query", "intermediate/dense" ...) of layer i: its product.
const onnx::Node& product_node(const onnx::Model& m, int64_t i, const std::string& name, LinearEncoding e) {
  const std::string p = "/encoder/layer." + std::to_string(i) + "/" + name;
  switch (e) {
    case LinearEncoding::int8: return node_named(m, p + "/MatMul_quant");
    case LinearEncoding::q4: return node_named(m, p + "/MatMul_Q4");
    default: return node_named(m, p + "/MatMul");
  }
}

TEST_P(RecognizeEncodedForms, ViewsTheEncodedWeightsInPlace) {
  const EncodedExpected& e = GetParam();
  onnx::ReadOptions options;
  options.copy_misaligned = false;  // as the Embedder reads
  onnx::Model model = onnx::read_model(file_of(e), options);
  RecognizeResult r = recognize_encoder(model);
  ASSERT_TRUE(r.weights) << r.reason;
  const EncoderWeights& w = *r.weights;
  const EncoderConfig& c = w.config;
  std::cout << e.model << "/" << e.file << ": " << w.weight_form << ", " << w.bytes_copied << " bytes copied\n";
  EXPECT_EQ(w.weight_form, e.form);
  EXPECT_EQ(c.hidden, e.hidden);
  EXPECT_EQ(c.layers, e.layers);
  EXPECT_EQ(c.heads, e.heads);
  EXPECT_EQ(c.ffn, e.ffn);
  EXPECT_EQ(c.vocab, 30522);
  EXPECT_EQ(c.max_positions, 512);
  EXPECT_EQ(c.type_vocab, 2);
  EXPECT_TRUE(c.has_attention_mask);
  EXPECT_EQ(c.output_name, "last_hidden_state");
  const bool half = e.encoding == LinearEncoding::fp16;
  // fp16 graphs hold their constants as fp16: sqrt(head_size), the mask fill -10000, eps 2^-23.
  const float d = std::sqrt(static_cast<float>(e.hidden / e.heads));
  EXPECT_FLOAT_EQ(c.attention_scale_divisor, half ? round_to_half(d) : d);
  EXPECT_FLOAT_EQ(c.mask_fill, half ? -10000.0f : -3.4028234663852886e+38f);
  // (1e-12 is below fp16's range; the converter wrote 2^-23 instead.)
  EXPECT_FLOAT_EQ(w.embedding_norm.eps, half ? 1.1920928955078125e-07f : 1e-12f);

  // The word table: its encoding, and for 8-bit the DequantizeLinear's scale and zero point.
  EXPECT_EQ(w.word_embeddings.encoding, e.word_table);
  if (e.word_table == TableEncoding::uint8) {
    const onnx::Node& dq = node_named(model, "/embeddings/word_embeddings/Gather_output_DequantizeLinear");
    float scale;
    std::memcpy(&scale, model.graph.initializer(dq.inputs[1])->bytes.data(), sizeof scale);
    EXPECT_EQ(w.word_embeddings.scale, scale);
    EXPECT_EQ(w.word_embeddings.zero_point, static_cast<int32_t>(static_cast<uint8_t>(model.graph.initializer(dq.inputs[2])->bytes[0])));
    EXPECT_EQ(static_cast<const void*>(w.word_embeddings.bytes), initializer_data(model, "/embeddings/word_embeddings/Gather_quant", 0));
    // A row decodes as (q - zp) * scale.
    const uint8_t q0 = static_cast<uint8_t>(w.word_embeddings.bytes[5]);
    EXPECT_EQ(w.word_embeddings.load(5), static_cast<float>(static_cast<int32_t>(q0) - w.word_embeddings.zero_point) * scale);
  } else {
    EXPECT_EQ(static_cast<const void*>(w.word_embeddings.bytes), initializer_data(model, "/embeddings/word_embeddings/Gather", 0));
  }

  const char* names[6] = {"attention/self/query", "attention/self/key", "attention/self/value", "attention/output/dense",
                          "intermediate/dense", "output/dense"};
  for (int64_t i = 0; i < e.layers; ++i) {
    const EncoderLayerWeights& l = w.layers[static_cast<std::size_t>(i)];
    const LinearWeights* lin[6] = {&l.query, &l.key, &l.value, &l.attention_output, &l.ffn_in, &l.ffn_out};
    for (int j = 0; j < 6; ++j) {
      const LinearWeights& x = *lin[j];
      const onnx::Node& n = product_node(model, i, names[j], e.encoding);
      ASSERT_EQ(x.encoding, e.encoding) << names[j];
      const int64_t in = j == 5 ? e.ffn : e.hidden, out = j == 4 ? e.ffn : e.hidden;
      EXPECT_EQ(x.in, in);
      EXPECT_EQ(x.out, out);
      switch (e.encoding) {
        case LinearEncoding::int8: {
          EXPECT_EQ(x.int8.data, initializer_data(model, n.name, 1));  // the file's bytes, not a copy
          EXPECT_EQ(x.int8.zero_points, initializer_data(model, n.name, 3));
          EXPECT_EQ(x.int8.k, in);
          EXPECT_EQ(x.int8.n, out);
          EXPECT_EQ(x.int8.is_signed, std::string(e.form).find("(int8 weights") != std::string::npos);
          EXPECT_EQ(x.int8.scale_count, 1);
          const std::string p = "/encoder/layer." + std::to_string(i) + "/" + names[j];
          const onnx::Node& scales = node_named(model, p + "/MatMul_quant_scales_mul");
          EXPECT_EQ(x.int8.scales, model.graph.initializer(scales.inputs[1])->bytes.data());
          break;
        }
        case LinearEncoding::q4:
          EXPECT_EQ(static_cast<const void*>(x.q4.packed), initializer_data(model, n.name, 1));
          EXPECT_EQ(x.q4.scales, initializer_data(model, n.name, 2));
          EXPECT_EQ(x.q4.zero_points, nullptr);
          EXPECT_EQ(x.q4.block_size, 32);
          EXPECT_EQ(x.q4.k, in);
          EXPECT_EQ(x.q4.n, out);
          break;
        case LinearEncoding::fp16:
          EXPECT_EQ(x.f16.data, initializer_data(model, n.name, 1));
          EXPECT_EQ(x.f16.k, in);
          EXPECT_EQ(x.f16.n, out);
          break;
        case LinearEncoding::fp32: ADD_FAILURE() << "fp32 expected nowhere here"; break;
      }
      // The bias: the Add's initializer, read as fp32 (widened for fp16 files).
      const onnx::Node& add = node_named(model, "/encoder/layer." + std::to_string(i) + "/" + names[j] + "/Add");
      const onnx::TensorData* b = model.graph.initializer(add.inputs[0]);
      ASSERT_TRUE(b);
      const float first = half ? load_half(b->bytes.data()) : [&] {
        float f;
        std::memcpy(&f, b->bytes.data(), sizeof f);
        return f;
      }();
      EXPECT_EQ(x.bias.data[0], first);
    }
  }
  // Every initializer is accounted for once; fp16 vectors (and only vectors) were widened.
  std::size_t initializer_bytes = 0, half_vector_bytes = 0;
  for (const auto& t : model.graph.initializers) {
    initializer_bytes += t.bytes.size();
    if (t.dtype == onnx::DataType::float16 && t.dims.size() == 1) half_vector_bytes += 2 * t.bytes.size();
  }
  EXPECT_EQ(w.weight_bytes, initializer_bytes);
  if (half) EXPECT_EQ(w.bytes_copied, half_vector_bytes);
  else EXPECT_LE(w.bytes_copied, sizeof(float) * static_cast<std::size_t>(2 * e.hidden + e.layers * (9 * e.hidden + e.ffn)));
}

INSTANTIATE_TEST_SUITE_P(
    SharedModels, RecognizeEncodedForms,
    ::testing::Values(
        EncodedExpected{"tiny-bert-synthetic", "model_quantized.onnx", "int8 (uint8 weights, per-tensor scales)",
                        LinearEncoding::int8, TableEncoding::uint8, 64, 2, 4, 128},
        EncodedExpected{"tiny-bert-synthetic", "model_int8.onnx", "int8 (int8 weights, per-tensor scales)",
                        LinearEncoding::int8, TableEncoding::uint8, 64, 2, 4, 128},
        EncodedExpected{"tiny-bert-synthetic", "model_q4.onnx", "q4 (block 32)", LinearEncoding::q4, TableEncoding::fp32, 64, 2, 4, 128},
        EncodedExpected{"tiny-bert-synthetic", "model_fp16.onnx", "fp16", LinearEncoding::fp16, TableEncoding::fp16, 64, 2, 4, 128},
        EncodedExpected{"minilm-l6-synthetic", "model_quantized.onnx", "int8 (uint8 weights, per-tensor scales)",
                        LinearEncoding::int8, TableEncoding::uint8, 384, 6, 12, 1536},
        EncodedExpected{"minilm-l6-synthetic", "model_int8.onnx", "int8 (int8 weights, per-tensor scales)",
                        LinearEncoding::int8, TableEncoding::uint8, 384, 6, 12, 1536},
        EncodedExpected{"minilm-l6-synthetic", "model_q4.onnx", "q4 (block 32)", LinearEncoding::q4, TableEncoding::fp32, 384, 6, 12, 1536},
        EncodedExpected{"minilm-l6-synthetic", "model_fp16.onnx", "fp16", LinearEncoding::fp16, TableEncoding::fp16, 384, 6, 12, 1536}),
    [](const auto& info) {
      std::string s = std::string(info.param.model) + "_" + info.param.file;
      for (char& ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return s;
    });

// Altered quantized / 4-bit graphs: not recognised, with the node named.
class MutilatedEncoded : public ::testing::Test {
 protected:
  onnx::Model load(const char* file) { return onnx::read_model(model_path("tiny-bert-synthetic", file)); }
  static std::string reason(const onnx::Model& m) {
    RecognizeResult r = recognize_encoder(m);
    EXPECT_FALSE(r.weights) << "the altered graph was recognised";
    std::cout << "reason: " << r.reason << "\n";
    return r.reason;
  }
};

TEST_F(MutilatedEncoded, UnmodifiedAreRecognised) {
  for (const char* f : {"model_quantized.onnx", "model_int8.onnx", "model_q4.onnx", "model_fp16.onnx"})
    EXPECT_TRUE(recognize_encoder(load(f)).weights) << f;
}

TEST_F(MutilatedEncoded, MatMulIntegerScaleThatIsNotAConstant) {
  onnx::Model m = load("model_quantized.onnx");
  node_named(m, "/encoder/layer.1/attention/self/key/MatMul_quant_scales_mul").inputs[1] = "attention_mask";
  std::string why = reason(m);
  EXPECT_NE(why.find("weight scale"), std::string::npos) << why;
  EXPECT_NE(why.find("not a constant"), std::string::npos) << why;
  EXPECT_NE(why.find("layer.1/attention/self/key/MatMul_quant"), std::string::npos) << why;
}

TEST_F(MutilatedEncoded, MatMulIntegerZeroPointFromAnotherQuantization) {
  onnx::Model m = load("model_quantized.onnx");
  // The value projection takes its activation zero point from the FFN input's quantization.
  node_named(m, "/encoder/layer.0/attention/self/value/MatMul_quant").inputs[2] =
      "/encoder/layer.0/attention/output/LayerNorm/Add_1_output_0_zero_point";
  std::string why = reason(m);
  EXPECT_NE(why.find("zero point"), std::string::npos) << why;
  EXPECT_NE(why.find("value/MatMul_quant"), std::string::npos) << why;
}

TEST_F(MutilatedEncoded, QuantizedWordTableWithoutAConstantScale) {
  onnx::Model m = load("model_int8.onnx");
  node_named(m, "/embeddings/word_embeddings/Gather_output_DequantizeLinear").inputs[1] = "/embeddings/Gather_output_0";
  std::string why = reason(m);
  EXPECT_NE(why.find("word table"), std::string::npos) << why;
  EXPECT_NE(why.find("DequantizeLinear"), std::string::npos) << why;
}

TEST_F(MutilatedEncoded, MatMulNBitsWith8Bits) {
  onnx::Model m = load("model_q4.onnx");
  for (auto& a : node_named(m, "/encoder/layer.0/intermediate/dense/MatMul_Q4").attributes)
    if (a.name == "bits") a.i = 8;
  std::string why = reason(m);
  EXPECT_NE(why.find("bits 8"), std::string::npos) << why;
  EXPECT_NE(why.find("intermediate/dense/MatMul_Q4"), std::string::npos) << why;
}

TEST_F(MutilatedEncoded, MatMulNBitsWithGIdx) {
  onnx::Model m = load("model_q4.onnx");
  onnx::Node& n = node_named(m, "/encoder/layer.1/output/dense/MatMul_Q4");
  n.inputs.resize(5);
  n.inputs[4] = n.inputs[2];  // any constant: an act-order block index
  std::string why = reason(m);
  EXPECT_NE(why.find("g_idx"), std::string::npos) << why;
  EXPECT_NE(why.find("output/dense/MatMul_Q4"), std::string::npos) << why;
}

TEST_F(MutilatedEncoded, MatMulNBitsWithANonFiniteScale) {
  onnx::Model m = load("model_q4.onnx");
  const std::string scales = node_named(m, "/encoder/layer.0/output/dense/MatMul_Q4").inputs.at(2);
  onnx::TensorData& t = const_cast<onnx::TensorData&>(*m.graph.initializer(scales));
  auto copy = std::make_shared<std::vector<std::byte>>(t.bytes.begin(), t.bytes.end());
  const float inf = std::numeric_limits<float>::infinity();
  std::memcpy(copy->data() + 4, &inf, sizeof inf);  // the second block scale
  t.bytes = std::span<const std::byte>(copy->data(), copy->size());
  t.owner = copy;
  std::string why = reason(m);
  EXPECT_NE(why.find("not finite"), std::string::npos) << why;
  EXPECT_NE(why.find(scales), std::string::npos) << why;
}

TEST_F(MutilatedEncoded, Fp16GeluConstantThatIsNotSqrt2) {
  onnx::Model m = load("model_fp16.onnx");
  // Replace GELU's divisor by the attention scale's constant (4.0, fp16).
  node_named(m, "/encoder/layer.0/intermediate/Div").inputs[1] = node_named(m, "/encoder/layer.0/attention/self/Div").inputs[1];
  std::string why = reason(m);
  EXPECT_NE(why.find("sqrt(2)"), std::string::npos) << why;
}

// ---- altered graphs ------------------------------------------------------------------------------

class Mutilated : public ::testing::Test {
 protected:
  void SetUp() override { model = onnx::read_model(model_path("tiny-bert-synthetic", "model.onnx")); }
  std::string reason() {
    RecognizeResult r = recognize_encoder(model);
    EXPECT_FALSE(r.weights) << "the altered graph was recognised";
    std::cout << "reason: " << r.reason << "\n";
    return r.reason;
  }
  // Replaces the `value` tensor of Constant node `name` by an int64 vector or a float scalar.
  void set_constant(const std::string& name, onnx::DataType dtype, const void* data, std::size_t bytes,
                    std::vector<int64_t> dims) {
    onnx::Node& n = node_named(model, name);
    auto storage = std::make_shared<std::vector<std::byte>>(bytes);
    std::memcpy(storage->data(), data, bytes);
    for (auto& a : n.attributes)
      if (a.name == "value") {
        a.t.dtype = dtype;
        a.t.dims = std::move(dims);
        a.t.bytes = {storage->data(), storage->size()};
        a.t.owner = storage;
        a.t.mapped = false;
        return;
      }
    throw std::runtime_error("test: constant " + name + " has no value");
  }
  onnx::Model model;
};

TEST_F(Mutilated, UnmodifiedIsRecognised) { EXPECT_TRUE(recognize_encoder(model).weights); }

TEST_F(Mutilated, TanhInsteadOfErf) {
  node_named(model, "/encoder/layer.1/intermediate/Erf").op_type = "Tanh";
  std::string r = reason();
  EXPECT_NE(r.find("GELU"), std::string::npos);
  EXPECT_NE(r.find("/encoder/layer.1/intermediate/Erf"), std::string::npos);
}

TEST_F(Mutilated, MissingSqrtInALayerNorm) {
  auto& nodes = model.graph.nodes;
  nodes.erase(std::find_if(nodes.begin(), nodes.end(),
                           [](const onnx::Node& n) { return n.name == "/encoder/layer.0/attention/output/LayerNorm/Sqrt"; }));
  std::string r = reason();
  EXPECT_NE(r.find("Sqrt"), std::string::npos);
  EXPECT_NE(r.find("/encoder/layer.0/attention/output/LayerNorm/Sqrt_output_0"), std::string::npos);
}

TEST_F(Mutilated, SoftmaxOverTheWrongAxis) {
  for (auto& a : node_named(model, "/encoder/layer.0/attention/self/Softmax").attributes)
    if (a.name == "axis") a.i = 2;
  std::string r = reason();
  EXPECT_NE(r.find("Softmax"), std::string::npos);
}

TEST_F(Mutilated, KeyNotTransposedForQKt) {
  for (auto& a : node_named(model, "/encoder/layer.1/attention/self/Transpose_2").attributes)
    if (a.name == "perm") a.ints = {0, 2, 1, 3};
  std::string r = reason();
  EXPECT_NE(r.find("perm"), std::string::npos);
  EXPECT_NE(r.find("Transpose_2"), std::string::npos);
}

TEST_F(Mutilated, HeadSplitThatDoesNotMatchTheHiddenSize) {
  int64_t eight = 8;
  set_constant("/encoder/layer.0/attention/self/Constant_2", onnx::DataType::int64, &eight, 8, {1});
  std::string r = reason();
  EXPECT_NE(r.find("/encoder/layer.0/attention/self/Reshape"), std::string::npos);
}

TEST_F(Mutilated, PositionBufferNotStartingAtZero) {
  std::vector<int64_t> shifted(512);
  for (int64_t i = 0; i < 512; ++i) shifted[static_cast<std::size_t>(i)] = i + 1;
  const onnx::Node& slice = node_named(model, "/embeddings/Slice");
  for (auto& n : model.graph.nodes)
    if (!n.outputs.empty() && n.outputs[0] == slice.inputs[0])
      set_constant(n.name, onnx::DataType::int64, shifted.data(), shifted.size() * 8, {1, 512});
  std::string r = reason();
  EXPECT_NE(r.find("position ids"), std::string::npos);
}

TEST_F(Mutilated, MaskFillThatDoesNotHide) {
  float small = -1.0f;
  set_constant("/Constant_3", onnx::DataType::float32, &small, 4, {});
  std::string r = reason();
  EXPECT_NE(r.find("mask"), std::string::npos);
}

TEST_F(Mutilated, WeightOfTheWrongShape) {
  // Point layer 0's FFN-out MatMul at the [64, 128] FFN-in weight.
  onnx::Node& ffn_out = node_named(model, "/encoder/layer.0/output/dense/MatMul");
  ffn_out.inputs[1] = node_named(model, "/encoder/layer.0/intermediate/dense/MatMul").inputs[1];
  std::string r = reason();
  EXPECT_NE(r.find("has shape [64, 128]"), std::string::npos);
}

TEST_F(Mutilated, ASecondOutput) {
  model.graph.outputs.push_back(model.graph.outputs[0]);
  model.graph.outputs.back().name = "/embeddings/LayerNorm/Add_1_output_0";
  std::string r = reason();
  EXPECT_NE(r.find("2 outputs"), std::string::npos);
}

TEST_F(Mutilated, ResidualFromTheWrongPlace) {
  // Layer 1's attention residual reads the embeddings instead of layer 0's output.
  onnx::Node& add = node_named(model, "/encoder/layer.1/attention/output/Add");
  add.inputs[1] = "/embeddings/LayerNorm/Add_1_output_0";
  std::string r = reason();
  EXPECT_NE(r.find("residual"), std::string::npos);
}

// The other form of the attention scale, Mul by 1/sqrt(d), is recognised with the same multiplier.
TEST_F(Mutilated, ScaleAsMultiplication) {
  for (int layer = 0; layer < 2; ++layer) {
    const std::string p = "/encoder/layer." + std::to_string(layer) + "/attention/self/";
    node_named(model, p + "Div").op_type = "Mul";
    float quarter = 0.25f;
    set_constant(p + "Constant_12", onnx::DataType::float32, &quarter, 4, {});
  }
  RecognizeResult r = recognize_encoder(model);
  ASSERT_TRUE(r.weights) << r.reason;
  EXPECT_EQ(r.weights->config.attention_scale, 0.25f);
  EXPECT_EQ(r.weights->config.attention_scale_divisor, 0.0f);
  // Layers that scale differently are refused.
  float third = 1.0f / 3.0f;
  set_constant("/encoder/layer.1/attention/self/Constant_12", onnx::DataType::float32, &third, 4, {});
  EXPECT_NE(reason().find("scales differently"), std::string::npos);
}

// Position ids from Range(0, L, 1) instead of a sliced buffer.
TEST_F(Mutilated, PositionIdsFromRange) {
  auto add_scalar = [&](const std::string& name, int64_t value) {
    onnx::Node c;
    c.name = name;
    c.op_type = "Constant";
    c.outputs = {name + "_output"};
    onnx::Attribute a;
    a.name = "value";
    a.type = onnx::AttributeType::tensor;
    c.attributes.push_back(a);
    model.graph.nodes.insert(model.graph.nodes.begin(), c);
    set_constant(name, onnx::DataType::int64, &value, 8, {});
    return name + "_output";
  };
  const std::string zero = add_scalar("test_zero", 0), one = add_scalar("test_one", 1);
  onnx::Node& slice = node_named(model, "/embeddings/Slice");
  slice.op_type = "Range";
  slice.inputs = {zero, "/embeddings/Gather_output_0", one};
  RecognizeResult r = recognize_encoder(model);
  ASSERT_TRUE(r.weights) << r.reason;
  EXPECT_EQ(r.weights->config.position_ids, PositionIdsForm::range);
  EXPECT_EQ(r.weights->config.max_positions, 512);  // the table's rows
  // Range(1, L, 1) does not give 0..L-1.
  const std::string also_one = add_scalar("test_one_again", 1);
  node_named(model, "/embeddings/Slice").inputs[0] = also_one;
  EXPECT_NE(reason().find("Range(0, L, 1)"), std::string::npos);
}

TEST_F(Mutilated, NodeWithoutInputs) {
  node_named(model, "/encoder/layer.1/attention/self/query/MatMul").inputs.resize(1);
  std::string r = reason();
  EXPECT_NE(r.find("/encoder/layer.1/attention/self/query/MatMul' (output"), std::string::npos);
  EXPECT_NE(r.find("has 1 inputs, expected 2"), std::string::npos);
  node_named(model, "/encoder/layer.0/attention/self/Softmax").inputs.clear();
  EXPECT_FALSE(reason().empty());
}

}  // namespace
}  // namespace leanembed::runtime::encoder
