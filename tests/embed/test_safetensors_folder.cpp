// Model folders with model.safetensors: which file loads and why (ModelLocation::format), the
// Brainy 7 layout (config.json, model.safetensors, tokenizer.json only) giving PyTorch's vectors at
// tokenizer.json's truncation (128), the maximum-length order, and the refusals a user can act on.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "embed/max_length.h"
#include "embed/model_folder.h"
#include "embed_test_support.h"
#include "leanembed/embedder.h"
#include "leanembed/error.h"

namespace fs = std::filesystem;
using namespace leanembed;

namespace {

std::string minilm() { return test::model_dir("minilm-l6-synthetic"); }
std::string tiny() { return test::model_dir("tiny-bert-synthetic"); }

fs::path scratch(const std::string& name) { return test::fresh_dir("test_safetensors_folder", name); }

// What Brainy 7 ships: config.json, model.safetensors, tokenizer.json; nothing else.
fs::path brainy_folder(const std::string& model) {
  fs::path f = scratch("brainy-" + model);
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json"})
    fs::create_symlink(fs::path(test::model_dir(model)) / file, f / file);
  return f;
}

std::string error_of(const ModelLocation& where, ErrorCode expected) {
  try {
    resolve_model_folder(where);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), expected) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

TEST(SafetensorsFolder, FormatNames) {
  EXPECT_EQ(model_format_from_name("auto"), ModelFormat::automatic);
  EXPECT_EQ(model_format_from_name("onnx"), ModelFormat::onnx);
  EXPECT_EQ(model_format_from_name("safetensors"), ModelFormat::safetensors);
  EXPECT_STREQ(model_format_name(ModelFormat::safetensors), "safetensors");
  EXPECT_THROW(model_format_from_name("gguf"), Error);
}

TEST(SafetensorsFolder, WithBothFilesFp32TakesOnnxUnlessAsked) {
  ModelFolder m = resolve_model_folder({.model = minilm()});
  EXPECT_EQ(m.format, ModelFormat::onnx);
  EXPECT_EQ(m.model_path(), minilm() + "/onnx/model.onnx");
  EXPECT_NE(m.format_reason.find("format safetensors loads model.safetensors instead"), std::string::npos) << m.format_reason;
  ModelFolder s = resolve_model_folder({.model = minilm(), .format = ModelFormat::safetensors});
  EXPECT_EQ(s.format, ModelFormat::safetensors);
  EXPECT_EQ(s.model_path(), minilm() + "/model.safetensors");
  EXPECT_EQ(s.onnx_path, "");
  EXPECT_EQ(s.config_json, minilm() + "/config.json");
  EXPECT_EQ(s.format_reason, "format safetensors asked for");
  // A quantized dtype with its ONNX file there: that file.
  EXPECT_EQ(resolve_model_folder({.model = minilm(), .dtype = Dtype::q8}).model_path(), minilm() + "/onnx/model_quantized.onnx");
  // model_file naming a .safetensors file loads it as safetensors.
  ModelFolder named = resolve_model_folder({.model = minilm(), .model_file = "model.safetensors"});
  EXPECT_EQ(named.format, ModelFormat::safetensors);
  EXPECT_EQ(named.format_reason, "model_file names a safetensors file");
}

TEST(SafetensorsFolder, OnlySafetensorsLoadsIt) {
  const fs::path f = brainy_folder("minilm-l6-synthetic");
  ModelFolder m = resolve_model_folder({.model = f.string()});
  EXPECT_EQ(m.format, ModelFormat::safetensors);
  EXPECT_EQ(m.model_path(), (f / "model.safetensors").string());
  EXPECT_NE(m.format_reason.find("no onnx/model.onnx"), std::string::npos) << m.format_reason;
  EXPECT_FALSE(m.quantize_at_load);
  // format onnx there: the ONNX file is missing, and the message says what to fetch.
  EXPECT_NE(error_of({.model = f.string(), .format = ModelFormat::onnx}, ErrorCode::io).find("onnx/model.onnx"), std::string::npos);
}

TEST(SafetensorsFolder, QuantizedDtypeWithOnlySafetensorsIsRefusedSayingWhatToFetch) {
  const fs::path f = brainy_folder("tiny-bert-synthetic");
  for (Dtype d : {Dtype::q8, Dtype::int8, Dtype::q4, Dtype::fp16}) {
    const std::string msg = error_of({.model = f.string(), .dtype = d}, ErrorCode::unsupported);
    EXPECT_NE(msg.find(dtype_file(d)), std::string::npos) << msg;
    EXPECT_NE(msg.find("does not take bare weights"), std::string::npos) << msg;
    EXPECT_NE(msg.find("dtype fp32"), std::string::npos) << msg;
  }
}

TEST(SafetensorsFolder, MissingFilesAreNamed) {
  fs::path f = scratch("no-config");
  fs::create_symlink(fs::path(tiny()) / "model.safetensors", f / "model.safetensors");
  fs::create_symlink(fs::path(tiny()) / "tokenizer.json", f / "tokenizer.json");
  EXPECT_NE(error_of({.model = f.string()}, ErrorCode::io).find("needs the model's config.json"), std::string::npos);
  fs::path g = scratch("no-weights");
  fs::create_symlink(fs::path(tiny()) / "tokenizer.json", g / "tokenizer.json");
  fs::create_symlink(fs::path(tiny()) / "config.json", g / "config.json");
  EXPECT_NE(error_of({.model = g.string(), .format = ModelFormat::safetensors}, ErrorCode::io).find("model.safetensors' not found"),
            std::string::npos);
  // Neither format: the message mentions both.
  EXPECT_NE(error_of({.model = g.string()}, ErrorCode::io).find("model.safetensors with config.json loads too"), std::string::npos);
}

// Brainy's folder: truncation at tokenizer.json's 128, vectors as PyTorch's over those tokens.
void expect_brainy_vectors(const std::string& model) {
  const fs::path f = brainy_folder(model);
  EmbedderOptions o = test::options_for(model);
  o.location.model = f.string();
  Embedder e(o);
  const EmbedderInfo info = e.info();
  EXPECT_EQ(info.model_format, "safetensors");
  EXPECT_EQ(info.path, "fast");
  EXPECT_EQ(info.max_length, 128);
  EXPECT_EQ(info.max_length_source, "tokenizer.json truncation.max_length");
  EXPECT_EQ(info.ignored_tensors, (std::vector<std::string>{"pooler.dense.bias", "pooler.dense.weight"}));
  const auto j = nlohmann::json::parse(test::read_file(test::shared_dir() + "/models/expected/" + model + "/torch_fp32_trunc128.json"));
  const auto texts = j.at("sentences").get<std::vector<std::string>>();
  const auto expected = j.at("embeddings").get<std::vector<std::vector<float>>>();
  const auto ids = j.at("input_ids").get<std::vector<std::vector<int64_t>>>();
  ASSERT_EQ(texts.size(), 80u);
  const auto got = e.embed(texts);
  double worst = 1.0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(e.tokenize(texts[i]).ids, ids[i]) << i;  // the same tokens, truncated at 128
    worst = std::min(worst, test::cosine(got[i], expected[i]));
  }
  EXPECT_GE(worst, 0.99999);
}

TEST(SafetensorsFolder, BrainyLayoutGivesTorchVectorsTruncatedAt128Tiny) { expect_brainy_vectors("tiny-bert-synthetic"); }
TEST(SafetensorsFolder, BrainyLayoutGivesTorchVectorsTruncatedAt128MiniLM) { expect_brainy_vectors("minilm-l6-synthetic"); }

TEST(SafetensorsFolder, EmbedderWithFormatSafetensorsMatchesTheOnnxFile) {
  EmbedderOptions o = test::options_for("minilm-l6-synthetic");
  Embedder onnx(o);
  o.location.format = ModelFormat::safetensors;
  Embedder st(o);
  EXPECT_EQ(onnx.info().model_format, "onnx");
  EXPECT_EQ(st.info().model_format, "safetensors");
  EXPECT_EQ(st.info().model_path, minilm() + "/model.safetensors");
  const std::vector<std::string> texts{"A sentence to embed.", "", "Another, longer sentence about safetensors files."};
  const auto a = onnx.embed(texts), b = st.embed(texts);
  for (std::size_t i = 0; i < texts.size(); ++i) EXPECT_GE(test::cosine(a[i], b[i]), 0.999999) << i;
  // The interpreter cannot run weights without a graph.
  o.path = ExecutionPath::interpreter;
  try {
    Embedder refused(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
  }
}

TEST(SafetensorsFolder, BudgetChargesTheTransposedWeightsOnce) {
  // The linear weights are copied out of the file and its pages released: a budget that fits the
  // ONNX file fits the safetensors file (the same weights, held once).
  EmbedderOptions o = test::options_for("minilm-l6-synthetic");
  o.max_memory_bytes = std::size_t{70} << 20;
  Embedder onnx(o);
  o.location.format = ModelFormat::safetensors;
  Embedder st(o);
  EXPECT_EQ(st.embed_one("fits").size(), 384u);
}

// ---- Maximum length order (max_length.h) ---------------------------------------------------------

struct LengthFiles {
  fs::path dir;
  std::string sbert, tcfg, tjson;
};

LengthFiles length_files(const std::string& name, const char* sbert, const char* tcfg, const char* truncation) {
  LengthFiles f{scratch("length-" + name), "", "", ""};
  if (sbert) test::write_text(f.dir / "sentence_bert_config.json", sbert), f.sbert = (f.dir / "sentence_bert_config.json").string();
  if (tcfg) test::write_text(f.dir / "tokenizer_config.json", tcfg), f.tcfg = (f.dir / "tokenizer_config.json").string();
  if (truncation) {
    test::write_text(f.dir / "tokenizer.json", std::string(R"({"version": "1.0", "truncation": )") + truncation +
                                        R"(, "padding": {"strategy": {"Fixed": 77}}, "model": {"vocab": {"max_length": 3}}})");
    f.tjson = (f.dir / "tokenizer.json").string();
  }
  return f;
}

TEST(MaxLengthOrder, FirstFileThatSaysWinsThenCapped) {
  const char* trunc = R"({"direction": "Right", "max_length": 128, "strategy": "LongestFirst", "stride": 0})";
  auto all = length_files("all", R"({"max_seq_length": 256})", R"({"model_max_length": 512})", trunc);
  MaxLength m = decide_max_length(all.sbert, all.tcfg, all.tjson, 512);
  EXPECT_EQ(m.tokens, 256);
  EXPECT_EQ(m.source, "sentence_bert_config.json max_seq_length");
  auto two = length_files("two", nullptr, R"({"model_max_length": 512})", trunc);
  m = decide_max_length(two.sbert, two.tcfg, two.tjson, 512);
  EXPECT_EQ(m.tokens, 512);
  EXPECT_EQ(m.source, "tokenizer_config.json model_max_length");
  // The "unbounded" sentinel is skipped, so tokenizer.json's truncation decides.
  auto sentinel = length_files("sentinel", nullptr, R"({"model_max_length": 1000000000000000019884624838656})", trunc);
  m = decide_max_length(sentinel.sbert, sentinel.tcfg, sentinel.tjson, 512);
  EXPECT_EQ(m.tokens, 128);
  EXPECT_EQ(m.source, "tokenizer.json truncation.max_length");
  // tokenizer.json's padding and nested "max_length" keys are not read.
  auto none = length_files("none", nullptr, nullptr, "null");
  m = decide_max_length(none.sbert, none.tcfg, none.tjson, 512);
  EXPECT_EQ(m.tokens, 512);
  EXPECT_EQ(m.source, "default");
  auto capped = length_files("capped", R"({"max_seq_length": 4096})", nullptr, nullptr);
  m = decide_max_length(capped.sbert, capped.tcfg, capped.tjson, 512);
  EXPECT_EQ(m.tokens, 512);
  EXPECT_EQ(m.source, "sentence_bert_config.json max_seq_length, capped by config.json max_position_embeddings");
  auto small = length_files("small-model", nullptr, nullptr, trunc);
  m = decide_max_length(small.sbert, small.tcfg, small.tjson, 64);
  EXPECT_EQ(m.tokens, 64);
  EXPECT_EQ(m.source, "tokenizer.json truncation.max_length, capped by config.json max_position_embeddings");
}

TEST(MaxLengthOrder, MalformedTruncationIsNamed) {
  auto bad = length_files("bad", nullptr, nullptr, R"({"max_length": "long"})");
  try {
    decide_max_length(bad.sbert, bad.tcfg, bad.tjson, 512);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::model_format);
    EXPECT_NE(std::string(e.what()).find("truncation.max_length"), std::string::npos) << e.what();
  }
  test::write_text(bad.dir / "tokenizer.json", "{\"truncation\": ");
  EXPECT_THROW(decide_max_length("", "", bad.tjson, 512), Error);
}

TEST(MaxLengthOrder, SharedFoldersStillUseSentenceBertConfig) {
  // The shared folders carry all three: sentence_bert_config.json (256) decides, as before.
  ModelFolder m = resolve_model_folder({.model = minilm()});
  EXPECT_EQ(m.max_length, 256);
  EXPECT_EQ(m.max_length_source, "sentence_bert_config.json max_seq_length");
}

}  // namespace
