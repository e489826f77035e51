// Model-folder metadata that is wrong or unusual (issue 16): every numeric field range-checked
// before it is converted, every error naming file, field, value and what was expected;
// sentence-transformers modules we cannot honour refused, never silently ignored.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <cmath>
#include <tuple>

#include "embed/model_folder.h"
#include "leanembed/embedder.h"
#include "leanembed/error.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace leanembed;

namespace {

std::string minilm() { return test::shared_dir() + "/models/minilm-l6-synthetic"; }

fs::path scratch(const std::string& name) { return test::fresh_dir("test_model_folder_values", name); }

// A folder with the shared MiniLM's files linked in; config.json copied (tests rewrite it).
fs::path folder(const std::string& name) {
  fs::path f = scratch(name);
  fs::create_directories(f / "onnx");
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "config.json"})
    fs::copy_file(fs::path(minilm()) / file, f / file);
  fs::create_symlink(fs::path(minilm()) / "onnx" / "model.onnx", f / "onnx" / "model.onnx");
  return f;
}

struct Failure {
  ErrorCode code = ErrorCode::runtime;
  std::string message;
};

Failure failure_of(const fs::path& f) {
  try {
    resolve_model_folder({.model = f.string()});
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  ADD_FAILURE() << "expected an error for " << f;
  return {};
}

void expect_names(const Failure& e, std::initializer_list<const char*> parts) {
  for (const char* p : parts) EXPECT_NE(e.message.find(p), std::string::npos) << "missing '" << p << "' in: " << e.message;
}

}  // namespace

TEST(ModelFolderValues, MaxSeqLengthOutOfRangeOrFractionalIsAnErrorNamingFileFieldValue) {
  fs::path f = folder("max_seq_length");
  test::write_text(f / "sentence_bert_config.json", R"({"max_seq_length": 1e30})");
  Failure e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  expect_names(e, {"sentence_bert_config.json", "max_seq_length", "1e+30", "expected"});
  EXPECT_EQ(e.message.find("-9223372036854775808"), std::string::npos) << e.message;

  test::write_text(f / "sentence_bert_config.json", R"({"max_seq_length": 2.9})");
  e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  expect_names(e, {"sentence_bert_config.json", "max_seq_length", "2.9", "whole number"});

  test::write_text(f / "sentence_bert_config.json", R"({"max_seq_length": -5})");
  e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  expect_names(e, {"sentence_bert_config.json", "max_seq_length", "-5"});

  test::write_text(f / "sentence_bert_config.json", R"({"max_seq_length": 128.0})");  // a whole number written as a float
  EXPECT_EQ(resolve_model_folder({.model = f.string()}).max_length, 128);
}

TEST(ModelFolderValues, ConfigJsonFiguresAreRangeChecked) {
  fs::path f = folder("config");
  test::write_text(f / "config.json", R"({"model_type":"bert","hidden_size":1e300,"max_position_embeddings":512})");
  Failure e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  expect_names(e, {"config.json", "hidden_size", "1e+300"});
  test::write_text(f / "config.json", R"({"model_type":"bert","hidden_size":384,"max_position_embeddings":-1})");
  e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  expect_names(e, {"config.json", "max_position_embeddings", "-1"});
  test::write_text(f / "config.json", R"({"model_type":"bert","hidden_size":384.5,"max_position_embeddings":512})");
  e = failure_of(f);
  expect_names(e, {"config.json", "hidden_size", "384.5"});
}

TEST(ModelFolderValues, TokenizerConfigModelMaxLength) {
  fs::path f = folder("model_max_length");
  // The "unbounded" sentinel tokenizers write (int(1e30)) is ignored, as before: the next file in
  // the order (embed/max_length.h) decides — here tokenizer.json's truncation (128).
  test::write_text(f / "tokenizer_config.json", R"({"model_max_length": 1000000000000000019884624838656})");
  EXPECT_EQ(resolve_model_folder({.model = f.string()}).max_length_source, "tokenizer.json truncation.max_length");
  test::write_text(f / "tokenizer_config.json", R"({"model_max_length": 300.5})");
  Failure e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  expect_names(e, {"tokenizer_config.json", "model_max_length", "300.5"});
  test::write_text(f / "tokenizer_config.json", R"({"model_max_length": 0})");
  e = failure_of(f);
  expect_names(e, {"tokenizer_config.json", "model_max_length"});
}

// ---- sentence-transformers modules (issue 16, item 9) ---------------------------------------------

namespace {

std::string tiny() { return test::shared_dir() + "/models/tiny-bert-synthetic"; }

// The tiny model (hidden 64) with the given modules.json and module files.
fs::path tiny_folder(const std::string& name, const std::string& modules) {
  fs::path f = scratch(name);
  fs::create_directories(f / "onnx");
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "config.json"})
    fs::create_symlink(fs::path(tiny()) / file, f / file);
  fs::create_symlink(fs::path(tiny()) / "onnx" / "model.onnx", f / "onnx" / "model.onnx");
  test::write_text(f / "modules.json", modules);
  test::write_text(f / "1_Pooling" / "config.json", R"({"word_embedding_dimension": 64, "pooling_mode_mean_tokens": true})");
  return f;
}

const char* kTransformerPooling =
    R"({"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
       {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"})";

// A safetensors file holding F32 tensors (name, shape, values), as sentence-transformers writes one.
void write_safetensors(const fs::path& p, const std::vector<std::tuple<std::string, std::vector<int64_t>, std::vector<float>>>& tensors) {
  std::string header = "{";
  std::size_t offset = 0;
  for (const auto& [name, shape, values] : tensors) {
    std::string dims;
    for (int64_t d : shape) {  // appended piecewise: GCC 12 warns (-Wrestrict, falsely) on "," + std::to_string(d)
      if (!dims.empty()) dims += ',';
      dims += std::to_string(d);
    }
    if (header.size() > 1) header += ",";
    header += "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[" + dims + "],\"data_offsets\":[" + std::to_string(offset) +
              "," + std::to_string(offset + values.size() * 4) + "]}";
    offset += values.size() * 4;
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  std::string bytes(8, '\0');
  for (int k = 0; k < 8; ++k) bytes[k] = static_cast<char>((header.size() >> (8 * k)) & 0xff);
  bytes += header;
  for (const auto& t : tensors) bytes.append(reinterpret_cast<const char*>(std::get<2>(t).data()), std::get<2>(t).size() * 4);
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

std::vector<float> seeded(std::size_t n, unsigned seed) {
  std::vector<float> v(n);
  unsigned x = seed;
  for (auto& f : v) {
    x = x * 1664525u + 1013904223u;
    f = static_cast<float>((x >> 8) % 2001) / 1000.0f - 1.0f;  // [-1, 1]
  }
  return v;
}

EmbedderOptions options_for_folder(const fs::path& f) {
  EmbedderOptions o;
  o.location.model = f.string();
  o.threads = 1;
  o.idle_unload_seconds = 0;
  return o;
}

}  // namespace

TEST(ModelFolderValues, DenseModuleIsAppliedAfterPooling) {
  const int64_t in = 64, out = 24;
  const std::vector<float> w = seeded(out * in, 7), b = seeded(out, 11);
  fs::path dense = tiny_folder("dense", std::string("[") + kTransformerPooling +
                                            R"(,{"idx":2,"name":"2","path":"2_Dense","type":"sentence_transformers.models.Dense"},
                                               {"idx":3,"name":"3","path":"3_Normalize","type":"sentence_transformers.models.Normalize"}])");
  test::write_text(dense / "2_Dense" / "config.json",
        R"({"in_features": 64, "out_features": 24, "bias": true, "activation_function": "torch.nn.modules.activation.Tanh"})");
  write_safetensors(dense / "2_Dense" / "model.safetensors", {{"linear.bias", {out}, b}, {"linear.weight", {out, in}, w}});
  fs::path plain = tiny_folder("dense-reference", std::string("[") + kTransformerPooling + "]");

  const std::string text = "A Dense module maps the pooled vector.";
  EmbedderOptions po = options_for_folder(plain);
  po.normalize = false;
  const std::vector<float> pooled = Embedder(po).embed_one(text);
  ASSERT_EQ(pooled.size(), static_cast<size_t>(in));
  std::vector<double> want(out);
  double norm = 0;
  for (int64_t o = 0; o < out; ++o) {
    double s = b[o];
    for (int64_t i = 0; i < in; ++i) s += double(w[o * in + i]) * pooled[i];
    want[o] = std::tanh(s);
    norm += want[o] * want[o];
  }
  Embedder e(options_for_folder(dense));
  ASSERT_EQ(e.dims(), out);
  const std::vector<float> got = e.embed_one(text);
  for (int64_t o = 0; o < out; ++o) EXPECT_NEAR(got[o], want[o] / std::sqrt(norm), 1e-5) << o;

  // Matryoshka dims apply after the Dense module.
  EmbedderOptions mo = options_for_folder(dense);
  mo.dims = 8;
  const std::vector<float> first8 = Embedder(mo).embed_one(text);
  double n8 = 0;
  for (int o = 0; o < 8; ++o) n8 += want[o] * want[o];
  for (int o = 0; o < 8; ++o) EXPECT_NEAR(first8[o], want[o] / std::sqrt(n8), 1e-5) << o;
}

TEST(ModelFolderValues, ModulesWeCannotHonourAreRefusedNamingWhat) {
  const std::string dense_module = R"(,{"idx":2,"name":"2","path":"2_Dense","type":"sentence_transformers.models.Dense"}])";
  // Dense weights only as a PyTorch pickle.
  fs::path f = tiny_folder("dense-bin", std::string("[") + kTransformerPooling + dense_module);
  test::write_text(f / "2_Dense" / "config.json", R"({"in_features": 64, "out_features": 24})");
  test::write_text(f / "2_Dense" / "pytorch_model.bin", "pickle");
  Failure e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::unsupported);
  expect_names(e, {"2_Dense/pytorch_model.bin", "model.safetensors"});
  // An activation we do not have.
  fs::remove(f / "2_Dense" / "pytorch_model.bin");
  test::write_text(f / "2_Dense" / "config.json", R"({"in_features": 64, "out_features": 24, "activation_function": "torch.nn.modules.activation.Softplus"})");
  write_safetensors(f / "2_Dense" / "model.safetensors", {{"linear.bias", {24}, seeded(24, 1)}, {"linear.weight", {24, 64}, seeded(24 * 64, 2)}});
  e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::unsupported);
  expect_names(e, {"2_Dense/config.json", "Softplus"});
  // A module type we do not implement.
  f = tiny_folder("unknown-module", std::string("[") + kTransformerPooling +
                                        R"(,{"idx":2,"name":"2","path":"2_LayerNorm","type":"sentence_transformers.models.LayerNorm"}])");
  e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::unsupported);
  expect_names(e, {"modules.json", "sentence_transformers.models.LayerNorm"});
  // Pooling: none set, an unknown mode set.
  f = tiny_folder("no-pooling-mode", std::string("[") + kTransformerPooling + "]");
  test::write_text(f / "1_Pooling" / "config.json", R"({"word_embedding_dimension": 64, "pooling_mode_mean_tokens": false, "pooling_mode_cls_token": false})");
  e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  expect_names(e, {"1_Pooling/config.json", "no pooling mode"});
  test::write_text(f / "1_Pooling" / "config.json", R"({"pooling_mode_mean_tokens": false, "pooling_mode_weird_tokens": true})");
  e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::unsupported);
  expect_names(e, {"1_Pooling/config.json", "pooling_mode_weird_tokens"});
  // do_lower_case: true.
  f = tiny_folder("lower-case", std::string("[") + kTransformerPooling + "]");
  test::write_text(f / "sentence_bert_config.json", R"({"max_seq_length": 128, "do_lower_case": true})");
  e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::unsupported);
  expect_names(e, {"sentence_bert_config.json", "do_lower_case"});
  test::write_text(f / "sentence_bert_config.json", R"({"max_seq_length": 128, "do_lower_case": false})");
  EXPECT_EQ(resolve_model_folder({.model = f.string()}).max_length, 128);
}
