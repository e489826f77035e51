// BERT encoders from safetensors files (runtime/encoder/bert_safetensors.h through
// runtime::load_engine): the shared model.safetensors files give what their ONNX files give on the
// fast path (pooled cosine >= 0.999999) and what PyTorch gives (>= 0.99999); variants written here —
// a "bert." prefix, gamma/beta LayerNorm names, F16 and BF16 copies, an I64 position_ids — load and
// agree; the transposed linear weights are the same bytes whichever transpose table runs (ref or the
// fastest, kernels/transpose.h); a missing or mis-shaped tensor and a config.json the loader cannot
// run are named.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "core/float16.h"
#include "encoder_test_data.h"
#include "kernels/kernels.h"
#include "leanembed/error.h"
#include "runtime/encoder/bert_safetensors.h"
#include "runtime/load_engine.h"
#include "safetensors/safetensors.h"
#include "safetensors/safetensors_test_writer.h"

namespace leanembed::runtime {
namespace {

namespace fs = std::filesystem;
using encoder::test_data::Packed;
using encoder::test_data::Reference;

std::string model_dir(const std::string& model) { return test::shared_dir() + "/models/" + model; }

std::unique_ptr<Engine> safetensors_engine(const std::string& file, const std::string& config, EngineOptions eo = {}) {
  LoadOptions o;
  o.engine = eo;
  return load_engine({ModelFileFormat::safetensors, file, config}, o).engine;
}

std::unique_ptr<Engine> onnx_engine(const std::string& model) {
  return load_engine({ModelFileFormat::onnx, model_dir(model) + "/onnx/model.onnx", ""}, {}).engine;
}

// Pooled (mean, normalised) vectors of the reference sentences through `engine`.
std::vector<std::vector<double>> pooled(Engine& engine, const Packed& p) {
  const int64_t H = engine.description().hidden;
  std::vector<float> out(p.ids.size() * static_cast<std::size_t>(H));
  engine.run(p.ids, p.types, p.offsets, out);
  return encoder::test_data::pooled_all(out, p, H);
}

double min_cosine(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  double worst = 1.0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::min(worst, encoder::test_data::cosine(a[i], b[i]));
  return worst;
}

void expect_matches_onnx_and_torch(const std::string& model) {
  const Reference torch = encoder::test_data::load_reference(model, "torch_fp32");
  const Packed p = encoder::test_data::pack(torch, 0, torch.ids.size());
  auto st = safetensors_engine(model_dir(model) + "/model.safetensors", model_dir(model) + "/config.json");
  auto onnx = onnx_engine(model);
  EXPECT_EQ(st->description().path, "fast");
  EXPECT_EQ(st->description().weight_form, "fp32");
  EXPECT_GT(st->description().word_table_pread_bytes, 0u);  // the word table is read with pread, as on the ONNX path
  EXPECT_GT(st->description().released_file_bytes, 0u);
  EXPECT_EQ(st->description().ignored_tensors, (std::vector<std::string>{"pooler.dense.bias", "pooler.dense.weight"}));
  const auto from_st = pooled(*st, p);
  EXPECT_GE(min_cosine(from_st, pooled(*onnx, p)), 0.999999);
  EXPECT_GE(min_cosine(from_st, torch.embeddings), 0.99999);
}

TEST(BertSafetensors, TinyMatchesItsOnnxFileAndTorch) { expect_matches_onnx_and_torch("tiny-bert-synthetic"); }
TEST(BertSafetensors, MiniLMMatchesItsOnnxFileAndTorch) { expect_matches_onnx_and_torch("minilm-l6-synthetic"); }

// A copy of the tiny model's file with each tensor passed through `change` (which may rename,
// retype or drop it: return false) and `extra` tensors appended; written to a scratch folder with
// the model's config.json. Returns the .safetensors path.
using Change = std::function<bool(test::TestTensor&)>;
std::string variant(const std::string& name, const Change& change, std::vector<test::TestTensor> extra = {}) {
  const fs::path dir = fs::path(test::binary_dir()) / "safetensors_variants" / name;
  fs::create_directories(dir);
  auto source = safetensors::File::open(model_dir("tiny-bert-synthetic") + "/model.safetensors");
  std::vector<test::TestTensor> tensors;
  for (const safetensors::Tensor& t : source->tensors()) {
    test::TestTensor c{t.name, safetensors::dtype_name(t.dtype), t.shape,
                       std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(t.bytes.data()),
                                            reinterpret_cast<const uint8_t*>(t.bytes.data()) + t.bytes.size())};
    if (change(c)) tensors.push_back(std::move(c));
  }
  for (auto& e : extra) tensors.push_back(std::move(e));
  test::write_bytes((dir / "model.safetensors").string(), test::safetensors_bytes(tensors));
  fs::copy_file(model_dir("tiny-bert-synthetic") + "/config.json", dir / "config.json", fs::copy_options::overwrite_existing);
  return (dir / "model.safetensors").string();
}

// F32 tensor values narrowed to 16 bits by `narrow`.
void narrow_to(test::TestTensor& t, const char* dtype, uint16_t (*narrow)(float)) {
  if (t.dtype != "F32") return;
  std::vector<uint8_t> out(t.bytes.size() / 2);
  for (std::size_t i = 0; i < t.bytes.size() / 4; ++i) {
    float v;
    std::memcpy(&v, t.bytes.data() + 4 * i, 4);
    const uint16_t h = narrow(v);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  t.dtype = dtype;
  t.bytes = std::move(out);
}

void expect_variant_agrees(const std::string& file, double at_least, const std::string& form) {
  const Reference torch = encoder::test_data::load_reference("tiny-bert-synthetic", "torch_fp32");
  const Packed p = encoder::test_data::pack(torch, 0, torch.ids.size());
  auto base = safetensors_engine(model_dir("tiny-bert-synthetic") + "/model.safetensors",
                                 model_dir("tiny-bert-synthetic") + "/config.json");
  auto v = safetensors_engine(file, fs::path(file).parent_path().string() + "/config.json");
  EXPECT_EQ(v->description().weight_form, form);
  EXPECT_GE(min_cosine(pooled(*v, p), pooled(*base, p)), at_least) << file;
}

TEST(BertSafetensors, BertPrefixLoads) {
  const std::string f = variant("prefix", [](test::TestTensor& t) {
    t.name = "bert." + t.name;
    return true;
  });
  expect_variant_agrees(f, 0.999999, "fp32");
  auto e = safetensors_engine(f, fs::path(f).parent_path().string() + "/config.json");
  EXPECT_NE(e->description().reason.find("prefix 'bert.'"), std::string::npos) << e->description().reason;
}

TEST(BertSafetensors, GammaBetaLayerNormNamesLoad) {
  const std::string f = variant("gamma_beta", [](test::TestTensor& t) {
    for (auto [from, to] : {std::pair{"LayerNorm.weight", "LayerNorm.gamma"}, std::pair{"LayerNorm.bias", "LayerNorm.beta"}})
      if (auto at = t.name.find(from); at != std::string::npos) t.name.replace(at, std::strlen(from), to);
    return true;
  });
  expect_variant_agrees(f, 0.999999, "fp32");
}

TEST(BertSafetensors, BF16CopyLoadsExactly) {
  // The fixture's floats are all bf16-representable, so the BF16 copy holds the same values.
  const std::string f = variant("bf16", [](test::TestTensor& t) {
    narrow_to(t, "BF16", float_to_bfloat16);
    return true;
  });
  expect_variant_agrees(f, 0.999999, "bf16 (linear layers widened to fp32 at load)");
}

TEST(BertSafetensors, F16CopyLoadsAndAgrees) {
  const std::string f = variant("f16", [](test::TestTensor& t) {
    narrow_to(t, "F16", float_to_half);
    return true;
  });
  expect_variant_agrees(f, 0.99999, "fp16");
  auto e = safetensors_engine(f, fs::path(f).parent_path().string() + "/config.json");
  EXPECT_NE(e->description().linear_kernels.find("f16"), std::string::npos) << e->description().linear_kernels;
}

// Every linear weight of `file` loaded with the transpose table of ISA level `isa` (kernels_force_isa).
encoder::BertSafetensors weights_under(const char* isa, const std::string& file) {
  EXPECT_TRUE(kernels::kernels_force_isa(isa)) << isa;
  auto w = encoder::bert_weights_from_safetensors(safetensors::File::open(file),
                                                  encoder::read_bert_config(fs::path(file).parent_path().string() + "/config.json"));
  kernels::kernels_force_isa("auto");
  return w;
}

// The linear weights hold the same bytes under LEANEMBED_ISA=ref's plain loops and the fastest table
// this CPU runs, and they are the file's [out, in] values at [in, out] (BF16 widened: bits << 16).
void expect_linear_weights_same_under_every_isa(const std::string& file) {
  const encoder::BertSafetensors ref = weights_under("ref", file), fast = weights_under("auto", file);
  auto st = safetensors::File::open(file);
  const char* names[] = {"attention.self.query", "attention.self.key", "attention.self.value",
                         "attention.output.dense", "intermediate.dense", "output.dense"};
  using L = encoder::LinearWeights encoder::EncoderLayerWeights::*;
  const L members[] = {&encoder::EncoderLayerWeights::query, &encoder::EncoderLayerWeights::key,
                       &encoder::EncoderLayerWeights::value, &encoder::EncoderLayerWeights::attention_output,
                       &encoder::EncoderLayerWeights::ffn_in, &encoder::EncoderLayerWeights::ffn_out};
  ASSERT_EQ(ref.weights.layers.size(), fast.weights.layers.size());
  for (std::size_t i = 0; i < ref.weights.layers.size(); ++i)
    for (int m = 0; m < 6; ++m) {
      const encoder::LinearWeights& a = ref.weights.layers[i].*members[m];
      const encoder::LinearWeights& b = fast.weights.layers[i].*members[m];
      const safetensors::Tensor* t = st->find(ref.prefix + "encoder.layer." + std::to_string(i) + "." + names[m] + ".weight");
      ASSERT_NE(t, nullptr);
      const bool f16 = a.encoding == encoder::LinearEncoding::fp16;
      const auto* pa = static_cast<const std::byte*>(f16 ? a.f16.data : static_cast<const void*>(a.weight.bytes));
      const auto* pb = static_cast<const std::byte*>(f16 ? b.f16.data : static_cast<const void*>(b.weight.bytes));
      const std::size_t size = f16 ? 2 : 4, n = static_cast<std::size_t>(a.in * a.out);
      ASSERT_EQ(std::memcmp(pa, pb, n * size), 0) << "layer " << i << " " << names[m] << ": ref and fast tables differ";
      const std::size_t in_size = t->dtype == safetensors::Dtype::F32 ? 4 : 2;
      for (int64_t o = 0; o < a.out; ++o)
        for (int64_t c = 0; c < a.in; ++c) {
          uint32_t want = 0, got = 0;
          std::memcpy(&want, t->bytes.data() + in_size * static_cast<std::size_t>(o * a.in + c), in_size);
          if (t->dtype == safetensors::Dtype::BF16) want <<= 16;
          std::memcpy(&got, pa + size * static_cast<std::size_t>(c * a.out + o), size);
          ASSERT_EQ(got, want) << "layer " << i << " " << names[m] << " [" << o << ", " << c << "]";
        }
    }
}

TEST(BertSafetensors, LinearWeightsAreTheSameBytesUnderEveryIsa) {
  expect_linear_weights_same_under_every_isa(model_dir("minilm-l6-synthetic") + "/model.safetensors");  // 384 x 384, 1536 x 384, 384 x 1536
  expect_linear_weights_same_under_every_isa(variant("bf16_isa", [](test::TestTensor& t) {
    narrow_to(t, "BF16", float_to_bfloat16);
    return true;
  }));
  expect_linear_weights_same_under_every_isa(variant("f16_isa", [](test::TestTensor& t) {
    narrow_to(t, "F16", float_to_half);
    return true;
  }));
}

TEST(BertSafetensors, I64PositionIdsAreIgnoredAndListed) {
  std::vector<int64_t> positions(512);
  for (int64_t i = 0; i < 512; ++i) positions[static_cast<std::size_t>(i)] = i;
  const std::string f = variant("position_ids", [](test::TestTensor&) { return true; },
                                {{"embeddings.position_ids", "I64", {1, 512}, test::bytes_of(positions)}});
  expect_variant_agrees(f, 0.999999, "fp32");
  auto e = safetensors_engine(f, fs::path(f).parent_path().string() + "/config.json");
  const auto& ignored = e->description().ignored_tensors;
  EXPECT_NE(std::find(ignored.begin(), ignored.end(), "embeddings.position_ids"), ignored.end());
}

std::string load_error(const std::string& file, const std::string& config, ErrorCode expected) {
  try {
    safetensors_engine(file, config);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), expected) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "loaded";
  return "";
}

TEST(BertSafetensors, MissingOrMisShapedTensorIsNamed) {
  const std::string missing = variant("missing", [](test::TestTensor& t) {
    return t.name != "encoder.layer.1.intermediate.dense.bias";
  });
  const std::string config = fs::path(missing).parent_path().string() + "/config.json";
  EXPECT_NE(load_error(missing, config, ErrorCode::model_format).find("'encoder.layer.1.intermediate.dense.bias'"),
            std::string::npos);
  const std::string shaped = variant("misshaped", [](test::TestTensor& t) {
    if (t.name == "encoder.layer.0.attention.self.key.weight") t.shape = {32, 128};
    return true;
  });
  const std::string msg = load_error(shaped, fs::path(shaped).parent_path().string() + "/config.json", ErrorCode::model_format);
  EXPECT_NE(msg.find("'encoder.layer.0.attention.self.key.weight' has shape [32, 128], expected [64, 64]"), std::string::npos) << msg;
  const std::string typed = variant("i32_weight", [](test::TestTensor& t) {
    if (t.name == "embeddings.LayerNorm.bias") t.dtype = "I32";
    return true;
  });
  EXPECT_NE(load_error(typed, fs::path(typed).parent_path().string() + "/config.json", ErrorCode::model_format)
                .find("'embeddings.LayerNorm.bias' is I32"),
            std::string::npos);
}

TEST(BertSafetensors, ConfigJsonIsChecked) {
  const std::string file = model_dir("tiny-bert-synthetic") + "/model.safetensors";
  const fs::path dir = fs::path(test::binary_dir()) / "safetensors_variants" / "configs";
  fs::create_directories(dir);
  const auto config = nlohmann::json::parse(test::read_file(model_dir("tiny-bert-synthetic") + "/config.json"));
  auto with = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json c = config;
    edit(c);
    const std::string path = (dir / (name + ".json")).string();
    test::write_bytes(path, c.dump());
    return path;
  };
  EXPECT_NE(load_error(file, with("roberta", [](auto& c) { c["model_type"] = "roberta"; }), ErrorCode::unsupported)
                .find("model_type \"roberta\""),
            std::string::npos);
  EXPECT_NE(load_error(file, with("tanh", [](auto& c) { c["hidden_act"] = "gelu_new"; }), ErrorCode::unsupported)
                .find("hidden_act \"gelu_new\""),
            std::string::npos);
  EXPECT_NE(load_error(file, with("no_hidden", [](auto& c) { c.erase("hidden_size"); }), ErrorCode::model_format)
                .find("\"hidden_size\""),
            std::string::npos);
  EXPECT_NE(load_error(file, with("heads", [](auto& c) { c["num_attention_heads"] = 5; }), ErrorCode::model_format)
                .find("not a multiple of num_attention_heads"),
            std::string::npos);
  EXPECT_NE(load_error(file, with("one_layer", [](auto& c) { c["num_hidden_layers"] = 1; }), ErrorCode::model_format)
                .find("config.json says 1 layers"),
            std::string::npos);
  EXPECT_NE(load_error(file, with("wide", [](auto& c) { c["hidden_size"] = 128; }), ErrorCode::model_format)
                .find("expected [30522, 128]"),
            std::string::npos);
  EXPECT_EQ(load_error(file, (dir / "absent.json").string(), ErrorCode::io).empty(), false);
}

TEST(BertSafetensors, InterpreterIsRefused) {
  EngineOptions eo;
  eo.path = ExecutionPath::interpreter;
  try {
    safetensors_engine(model_dir("tiny-bert-synthetic") + "/model.safetensors", model_dir("tiny-bert-synthetic") + "/config.json", eo);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("fast path only"), std::string::npos) << e.what();
  }
}

TEST(BertSafetensors, WithoutPreadTheTableIsAView) {
  EngineOptions eo;
  eo.table_rows_by_pread = false;
  auto e = safetensors_engine(model_dir("tiny-bert-synthetic") + "/model.safetensors", model_dir("tiny-bert-synthetic") + "/config.json", eo);
  EXPECT_EQ(e->description().word_table_pread_bytes, 0u);
}

}  // namespace
}  // namespace leanembed::runtime
