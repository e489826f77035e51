// quantize_model on the tiny fixture: the graph each dtype produces (ops, initializer types and
// shapes), its accuracy through our interpreter against fp32 and against ONNX Runtime's own
// per-tensor files, and ONNX Runtime (onnxruntime-node) loading and running every written file with
// outputs matching our interpreter on the same file.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/float16.h"
#include "leanembed/error.h"
#include "onnx/reader.h"
#include "onnx/writer.h"
#include "leanembed/tokenizer.h"
#include "quantize/calibration.h"
#include "quantize/quantize.h"
#include "runtime/engine.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using leanembed::Dtype;
using namespace leanembed::onnx;
using leanembed::quantize::quantize_model;
using leanembed::quantize::QuantizeOptions;
using leanembed::quantize::QuantizeSummary;

std::string tiny_file(const std::string& name) {
  return leanembed::test::shared_dir() + "/models/tiny-bert-synthetic/onnx/" + name;
}

const Model& tiny_fp32() {
  static const Model m = read_model(tiny_file("model.onnx"));
  return m;
}

// What the CLI and the embedder pass: the built-in sentences in the model's tokenizer.
const QuantizeOptions& calibrated() {
  static const QuantizeOptions o = [] {
    QuantizeOptions q;
    q.calibration = leanembed::quantize::calibration_ids(
        leanembed::Tokenizer::load(leanembed::test::shared_dir() + "/models/tiny-bert-synthetic"));
    return q;
  }();
  return o;
}

// Every MatMul and table quantized (no mixed precision): the pure forms the structure tests check.
QuantizeOptions uniform(QuantizeOptions o = {}) {
  o.fp16_tables = false;
  o.fp16_leading_matmuls = 0;
  return o;
}

std::map<std::string, int> op_counts(const Model& m) {
  std::map<std::string, int> c;
  for (const Node& n : m.graph.nodes) ++c[(n.domain.empty() ? "" : n.domain + ".") + n.op_type];
  return c;
}

const Node* producer(const Model& m, const std::string& value) {
  for (const Node& n : m.graph.nodes)
    for (const auto& o : n.outputs)
      if (o == value) return &n;
  return nullptr;
}

// tiny: 2 layers x (Q, K, V, attention output, FFN in, FFN out) = 12 MatMuls on weights, plus the
// two attention MatMuls (activations x activations) that stay float.
constexpr int kWeightMatmuls = 12;

TEST(QuantizeModel, Q8IsOrtsDynamicPatternWithPerColumnScales) {
  QuantizeSummary s;
  const Model q = quantize_model(tiny_fp32(), Dtype::q8, uniform(), &s);
  EXPECT_EQ(s.matmuls, kWeightMatmuls);
  EXPECT_EQ(s.gathers, 1);
  EXPECT_EQ(s.kept_fp16, 0);
  auto ops = op_counts(q);
  EXPECT_EQ(ops["MatMulInteger"], kWeightMatmuls);
  EXPECT_EQ(ops["MatMul"], 4);                  // the attention products
  EXPECT_EQ(ops["DynamicQuantizeLinear"], 8);   // per layer: LN out (Q/K/V share), context, LN out, GELU out
  EXPECT_EQ(ops["DequantizeLinear"], 1);
  for (const Node& n : q.graph.nodes) {
    if (n.op_type == "MatMulInteger") {
      const TensorData* w = q.graph.initializer(n.inputs[1]);
      const TensorData* zp = q.graph.initializer(n.inputs[3]);
      ASSERT_TRUE(w && zp) << n.name;
      EXPECT_EQ(w->dtype, DataType::uint8);
      ASSERT_EQ(w->dims.size(), 2u);
      EXPECT_EQ(zp->dtype, DataType::uint8);
      EXPECT_EQ(zp->dims, (std::vector<int64_t>{w->dims[1]}));  // one zero point per column
      EXPECT_EQ(producer(q, n.inputs[0])->op_type, "DynamicQuantizeLinear");
    }
    if (n.op_type == "Mul" && q.graph.initializer(n.inputs[1]) && producer(q, n.inputs[0]) &&
        producer(q, n.inputs[0])->op_type == "DynamicQuantizeLinear") {
      const TensorData* scale = q.graph.initializer(n.inputs[1]);
      EXPECT_EQ(scale->dtype, DataType::float32);
      EXPECT_EQ(scale->dims.size(), 1u);  // [N]
    }
    if (n.op_type == "DequantizeLinear") {
      ASSERT_NE(n.attribute("axis"), nullptr);
      EXPECT_EQ(n.attribute("axis")->i, -1);
      EXPECT_EQ(q.graph.initializer(n.inputs[1])->dims, (std::vector<int64_t>{64}));  // per hidden column
      EXPECT_EQ(producer(q, n.inputs[0])->op_type, "Gather");
    }
  }
  // The fp32 weights are gone; the output owns its tensors (no view of the source's mapping).
  EXPECT_EQ(q.graph.initializer("onnx::MatMul_328"), nullptr);
  EXPECT_EQ(q.graph.initializer("embeddings.word_embeddings.weight"), nullptr);
  EXPECT_TRUE(q.storage.empty());
  for (const TensorData& t : q.graph.initializers) EXPECT_FALSE(t.mapped) << t.name;
  EXPECT_LT(s.weight_bytes_after * 3, s.weight_bytes_before);
}

TEST(QuantizeModel, CalibrationSmoothsEachQuantizedActivationExactly) {
  QuantizeSummary s;
  const Model q = quantize_model(tiny_fp32(), Dtype::q8, uniform(calibrated()), &s);
  EXPECT_GT(s.calibration_tokens, 200);
  EXPECT_EQ(s.smoothed, 8);
  int smoothing = 0;
  for (const Node& n : q.graph.nodes) {
    if (n.op_type != "DynamicQuantizeLinear") continue;
    const Node* p = producer(q, n.inputs[0]);
    ASSERT_TRUE(p && p->op_type == "Mul") << n.name;
    const TensorData* inv = q.graph.initializer(p->inputs[1]);
    ASSERT_TRUE(inv) << p->name;
    ASSERT_EQ(inv->dims.size(), 1u);
    std::vector<float> v(static_cast<std::size_t>(inv->numel()));
    std::memcpy(v.data(), inv->bytes.data(), inv->bytes.size());
    for (float x : v) EXPECT_TRUE(std::isfinite(x) && x > 0) << p->name;
    ++smoothing;
  }
  EXPECT_EQ(smoothing, 8);
  // q4: the same Mul(X, 1/s) in front of MatMulNBits (activation-aware scaling); fp16: nothing.
  QuantizeSummary s4;
  const Model q4 = quantize_model(tiny_fp32(), Dtype::q4, uniform(calibrated()), &s4);
  EXPECT_EQ(s4.smoothed, 8);
  EXPECT_GT(s4.calibration_tokens, 0);
  for (const Node& n : q4.graph.nodes) {
    if (n.op_type == "MatMulNBits") {
      EXPECT_EQ(producer(q4, n.inputs[0])->op_type, "Mul") << n.name;
    }
  }
  QuantizeSummary s16;
  quantize_model(tiny_fp32(), Dtype::fp16, calibrated(), &s16);
  EXPECT_EQ(s16.smoothed, 0);
  EXPECT_EQ(s16.calibration_tokens, 0);
}

TEST(Calibration, ChannelStatsOfTheLayerNormOutput) {
  const auto stats = leanembed::quantize::activation_stats(tiny_fp32(), {"/embeddings/LayerNorm/Add_1_output_0"},
                                                           calibrated().calibration);
  const auto& s = stats.at("/embeddings/LayerNorm/Add_1_output_0");
  ASSERT_EQ(s.mean_square.size(), 64u);
  ASSERT_EQ(s.max_abs.size(), 64u);
  for (std::size_t c = 0; c < 64; ++c) {
    EXPECT_GT(s.mean_square[c], 0.0f);
    EXPECT_GE(s.max_abs[c] * s.max_abs[c] * 1.0001f, s.mean_square[c]);  // max^2 >= mean of squares
  }
  EXPECT_THROW(leanembed::quantize::activation_stats(tiny_fp32(), {}, {}), leanembed::Error);
}

TEST(QuantizeModel, Int8HasSymmetricInt8Weights) {
  const Model q = quantize_model(tiny_fp32(), Dtype::int8, uniform());
  int seen = 0;
  for (const Node& n : q.graph.nodes) {
    if (n.op_type != "MatMulInteger") continue;
    ++seen;
    EXPECT_EQ(q.graph.initializer(n.inputs[1])->dtype, DataType::int8);
    const TensorData* zp = q.graph.initializer(n.inputs[3]);
    EXPECT_EQ(zp->dtype, DataType::int8);
    for (std::byte b : zp->bytes) EXPECT_EQ(b, std::byte{0});
  }
  EXPECT_EQ(seen, kWeightMatmuls);
}

// q4: the non-square weights are 4-bit MatMulNBits with zero points; the square ones (attention
// projections) take the form QuantizeOptions::q4_square asks for.
TEST(QuantizeModel, Q4IsMatMulNBitsWithZeroPoints) {
  int square = 0;  // square weight MatMuls of the fp32 model
  for (const Node& n : tiny_fp32().graph.nodes) {
    if (n.op_type != "MatMul") continue;
    const TensorData* w = tiny_fp32().graph.initializer(n.inputs[1]);
    if (w && w->dims.size() == 2 && w->dims[0] == w->dims[1]) ++square;
  }
  ASSERT_GT(square, 0);
  ASSERT_LT(square, kWeightMatmuls);
  using leanembed::quantize::Q4Square;
  for (Q4Square form : {Q4Square::four_bit, Q4Square::dynamic_8bit, Q4Square::nbits_8bit}) {
    QuantizeOptions o = uniform();
    o.q4_square = form;
    QuantizeSummary summary;
    const Model q = quantize_model(tiny_fp32(), Dtype::q4, o, &summary);
    SCOPED_TRACE(summary.scheme);
    EXPECT_EQ(q.opset("com.microsoft"), 1);
    auto ops = op_counts(q);
    const int eight = form == Q4Square::four_bit ? 0 : square;
    EXPECT_EQ(summary.eight_bit, eight);
    const bool dynamic = form == Q4Square::dynamic_8bit;
    EXPECT_EQ(ops["com.microsoft.MatMulNBits"], kWeightMatmuls - (dynamic ? square : 0));
    EXPECT_EQ(ops["MatMulInteger"], dynamic ? square : 0);
    EXPECT_EQ(ops["DynamicQuantizeLinear"] > 0, dynamic);
    int eight_bit_nbits = 0;
    for (const Node& n : q.graph.nodes) {
      if (n.op_type == "MatMulInteger") {
        EXPECT_EQ(q.graph.initializer(n.inputs[1])->dtype, DataType::uint8);
        EXPECT_EQ(q.graph.initializer(n.inputs[1])->dims[0], q.graph.initializer(n.inputs[1])->dims[1]);
      }
      if (n.op_type != "MatMulNBits") continue;
      const int64_t K = n.attribute("K")->i, N = n.attribute("N")->i;
      const int64_t bits = n.attribute("bits")->i;
      EXPECT_EQ(bits, K == N && form == Q4Square::nbits_8bit ? 8 : 4) << n.name;
      EXPECT_EQ(n.attribute("block_size")->i, 32);
      const int64_t nb = K / 32;
      ASSERT_EQ(n.inputs.size(), 4u);
      EXPECT_EQ(q.graph.initializer(n.inputs[1])->dims, (std::vector<int64_t>{N, nb, 32 * bits / 8}));
      EXPECT_EQ(q.graph.initializer(n.inputs[2])->dims, (std::vector<int64_t>{N * nb}));
      EXPECT_EQ(q.graph.initializer(n.inputs[3])->dims, (std::vector<int64_t>{bits == 8 ? N * nb : N * ((nb + 1) / 2)}));
      EXPECT_EQ(q.graph.initializer(n.inputs[3])->dtype, DataType::uint8);
      if (bits == 8) ++eight_bit_nbits;
    }
    EXPECT_EQ(eight_bit_nbits, form == Q4Square::nbits_8bit ? square : 0);
  }
}

TEST(QuantizeModel, Fp16StoresHalfWeightsAndComputesInFloat) {
  QuantizeSummary s;
  const Model q = quantize_model(tiny_fp32(), Dtype::fp16, {}, &s);
  EXPECT_EQ(s.matmuls, kWeightMatmuls);
  EXPECT_EQ(s.gathers, 1);
  EXPECT_EQ(s.weight_bytes_after * 2, s.weight_bytes_before);
  int casts = 0;
  for (const Node& n : q.graph.nodes) {
    if (n.op_type != "Cast" || n.attribute("to")->i != 1) continue;
    const TensorData* w = q.graph.initializer(n.inputs[0]);
    const Node* p = producer(q, n.inputs[0]);
    if ((w && w->dtype == DataType::float16) || (p && p->op_type == "Gather")) ++casts;
  }
  EXPECT_EQ(casts, kWeightMatmuls + 1);
  EXPECT_EQ(q.graph.outputs.at(0).elem_type, DataType::float32);
}

// Mixed precision (the default): the word table and the first 4 weight MatMuls in graph order (the
// first layer's Q, K, V and attention output) keep float16 weights behind Cast<float> -- exactly the
// fp16 values of the fp32 weights -- and everything else takes the dtype's form.
TEST(QuantizeModel, MixedPrecisionKeepsTheTableAndTheFirstAttentionInFloat16) {
  for (Dtype dtype : {Dtype::q8, Dtype::int8, Dtype::q4}) {
    QuantizeSummary s;
    const Model q = quantize_model(tiny_fp32(), dtype, calibrated(), &s);
    SCOPED_TRACE(s.scheme);
    EXPECT_EQ(s.matmuls, kWeightMatmuls);
    EXPECT_EQ(s.kept_fp16, 4 + 1);
    auto ops = op_counts(q);
    EXPECT_EQ(ops["DequantizeLinear"], 0);
    const int quantized = ops["MatMulInteger"] + ops["com.microsoft.MatMulNBits"];
    EXPECT_EQ(quantized, kWeightMatmuls - 4);
    std::vector<std::string> fp16_matmuls;
    bool table_fp16 = false;
    for (const Node& n : q.graph.nodes) {
      if (n.op_type == "Gather" && q.graph.initializer(n.inputs[0]) &&
          q.graph.initializer(n.inputs[0])->dims.at(0) >= 1000) {
        EXPECT_EQ(q.graph.initializer(n.inputs[0])->dtype, DataType::float16);
        table_fp16 = true;
      }
      if (n.op_type != "MatMul") continue;
      const Node* cast = producer(q, n.inputs[1]);
      if (!cast || cast->op_type != "Cast") continue;
      const TensorData* w16 = q.graph.initializer(cast->inputs[0]);
      ASSERT_TRUE(w16 && w16->dtype == DataType::float16) << n.name;
      // The very fp32 weight the source MatMul of the same name reads, rounded to half.
      const Node* source = nullptr;
      for (const Node& m : tiny_fp32().graph.nodes)
        if (m.name == n.name) source = &m;
      ASSERT_TRUE(source) << n.name;
      const TensorData* w = tiny_fp32().graph.initializer(source->inputs[1]);
      ASSERT_TRUE(w && w->numel() == w16->numel()) << n.name;
      std::vector<float> f(static_cast<std::size_t>(w->numel()));
      std::memcpy(f.data(), w->bytes.data(), w->bytes.size());
      std::vector<uint16_t> h(f.size());
      std::memcpy(h.data(), w16->bytes.data(), w16->bytes.size());
      for (std::size_t i = 0; i < f.size(); ++i)
        ASSERT_EQ(h[i], leanembed::float_to_half(f[i])) << n.name << " value " << i;
      fp16_matmuls.push_back(n.name);
    }
    EXPECT_TRUE(table_fp16);
    ASSERT_EQ(fp16_matmuls.size(), 4u);
    for (const std::string& name : fp16_matmuls) EXPECT_NE(name.find("layer.0/attention"), std::string::npos) << name;
  }
}

TEST(QuantizeModel, RefusesWhatItCannotDo) {
  EXPECT_THROW(quantize_model(tiny_fp32(), Dtype::fp32), leanembed::Error);
  EXPECT_THROW(quantize_model(tiny_fp32(), Dtype::bnb4), leanembed::Error);
  // An already quantized file has no float MatMul weight left.
  try {
    quantize_model(read_model(tiny_file("model_quantized.onnx")), Dtype::q8);
    ADD_FAILURE() << "expected Error(unsupported)";
  } catch (const leanembed::Error& e) {
    EXPECT_EQ(e.code(), leanembed::ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("no MatMul"), std::string::npos) << e.what();
  }
}

TEST(QuantizeModel, RefusesNonFiniteWeightsNamingTheTensor) {
  Model m = tiny_fp32();  // a copy: views of the same mapping
  leanembed::onnx::TensorData* target = nullptr;
  for (leanembed::onnx::TensorData& t : m.graph.initializers)
    if (t.dtype == leanembed::onnx::DataType::float32 && t.dims.size() == 2 && t.dims[0] == 64 && t.dims[1] == 64) {
      target = &t;
      break;
    }
  ASSERT_NE(target, nullptr);
  auto copy = std::make_shared<std::vector<std::byte>>(target->bytes.begin(), target->bytes.end());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(copy->data() + 4 * 7, &nan, sizeof nan);
  target->bytes = std::span<const std::byte>(copy->data(), copy->size());
  target->owner = copy;
  for (Dtype d : {Dtype::q8, Dtype::q4}) {
    try {
      quantize_model(m, d);
      ADD_FAILURE() << "expected Error(model_format) for dtype " << static_cast<int>(d);
    } catch (const leanembed::Error& e) {
      EXPECT_EQ(e.code(), leanembed::ErrorCode::model_format);
      EXPECT_NE(std::string(e.what()).find("not finite"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(target->name), std::string::npos) << e.what();
    }
  }
}

// ---- Accuracy through our interpreter ---------------------------------------------------------

struct Batch {
  std::vector<int64_t> ids, offsets;
  std::vector<std::vector<int64_t>> sequences;
};

Batch reference_batch() {
  const nlohmann::json j = nlohmann::json::parse(leanembed::test::read_file(
      leanembed::test::shared_dir() + "/models/expected/tiny-bert-synthetic/model.json"));
  Batch b;
  b.offsets.push_back(0);
  for (const auto& s : j.at("input_ids")) {
    b.sequences.push_back(s.get<std::vector<int64_t>>());
    b.ids.insert(b.ids.end(), b.sequences.back().begin(), b.sequences.back().end());
    b.offsets.push_back(static_cast<int64_t>(b.ids.size()));
  }
  return b;
}

// Runs the model through the interpreter in batches of 16 (as the references were made); returns
// the packed hidden states [T, hidden].
std::vector<float> interpret(const Model& m, const Batch& b, std::size_t first = 0, std::size_t count = SIZE_MAX) {
  leanembed::runtime::Engine engine(m, {.path = leanembed::ExecutionPath::interpreter});
  const std::size_t n = std::min(count, b.sequences.size() - first);
  std::vector<float> out;
  for (std::size_t s = first; s < first + n; s += 16) {
    const std::size_t e = std::min(first + n, s + 16);
    std::span<const int64_t> ids(b.ids.data() + b.offsets[s], static_cast<std::size_t>(b.offsets[e] - b.offsets[s]));
    std::vector<int64_t> offsets;
    for (std::size_t k = s; k <= e; ++k) offsets.push_back(b.offsets[k] - b.offsets[s]);
    std::vector<float> h(ids.size() * 64);
    engine.run(ids, {}, offsets, h);
    out.insert(out.end(), h.begin(), h.end());
  }
  return out;
}

// Mean-pooled, cosine per sentence between two packed outputs.
std::vector<double> pooled_cosines(const std::vector<float>& a, const std::vector<float>& b, const Batch& batch,
                                   std::size_t count) {
  std::vector<double> c;
  for (std::size_t s = 0; s < count; ++s) {
    std::vector<double> x(64, 0), y(64, 0);
    for (int64_t t = batch.offsets[s]; t < batch.offsets[s + 1]; ++t)
      for (int d = 0; d < 64; ++d) x[d] += a[t * 64 + d], y[d] += b[t * 64 + d];
    double dot = 0, nx = 0, ny = 0;
    for (int d = 0; d < 64; ++d) dot += x[d] * y[d], nx += x[d] * x[d], ny += y[d] * y[d];
    c.push_back(dot / std::sqrt(nx * ny));
  }
  return c;
}

struct Stats {
  double min = 1, mean = 0;
};
Stats stats(const std::vector<double>& c) {
  Stats s;
  for (double x : c) s.min = std::min(s.min, x), s.mean += x / static_cast<double>(c.size());
  return s;
}

class Accuracy : public ::testing::TestWithParam<std::pair<Dtype, std::string>> {};

// Ours must be at least as close to fp32 as ONNX Runtime's per-tensor file of the same dtype (min
// and mean over the 64 reference sentences, same interpreter, same batches of 16). fp16 keeps
// fp32 compute: >= 0.99999.
TEST_P(Accuracy, AtLeastAsCloseToFp32AsOrtsFile) {
  const auto [dtype, ort_file] = GetParam();
  static const Batch batch = reference_batch();
  static const std::vector<float> fp32 = interpret(tiny_fp32(), batch);
  const std::size_t n = batch.sequences.size();
  const Stats plain = stats(pooled_cosines(fp32, interpret(quantize_model(tiny_fp32(), dtype), batch), batch, n));
  const Stats ours = stats(pooled_cosines(fp32, interpret(quantize_model(tiny_fp32(), dtype, calibrated()), batch), batch, n));
  const Stats ort = stats(pooled_cosines(fp32, interpret(read_model(tiny_file(ort_file)), batch), batch, n));
  std::printf("  ours calibrated: min %.6f mean %.6f, without calibration: min %.6f mean %.6f   ORT-style %s: min %.6f mean %.6f\n",
              ours.min, ours.mean, plain.min, plain.mean, ort_file.c_str(), ort.min, ort.mean);
  if (dtype == Dtype::fp16) {
    EXPECT_GE(ours.min, 0.99999);
  } else {
    EXPECT_GE(ours.min, ort.min);
    EXPECT_GE(ours.mean, ort.mean);
    EXPECT_GE(plain.min, ort.min);
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, Accuracy,
                         ::testing::Values(std::make_pair(Dtype::q8, std::string("model_quantized.onnx")),
                                           std::make_pair(Dtype::int8, std::string("model_int8.onnx")),
                                           std::make_pair(Dtype::q4, std::string("model_q4.onnx")),
                                           std::make_pair(Dtype::fp16, std::string("model_fp16.onnx"))),
                         [](const auto& i) { return i.param.second.substr(6, i.param.second.size() - 11); });

// ---- ONNX Runtime loads and runs what we write ---------------------------------------------------

class OrtRuns : public ::testing::TestWithParam<Dtype> {};

// Each written file is run by onnxruntime-node (peers/ort_run.js) on one padded batch of 16
// reference sentences and by our interpreter on the same batch; per token row cosine >= 0.99999
// (fp16, q4 with 8-bit MatMulNBits: same math, float rounding only) or >= 0.9999 (q8, int8, q4 with
// its square weights in the dynamic form: DynamicQuantizeLinear turns 1-ulp differences into a
// changed integer here and there).
TEST_P(OrtRuns, OnnxRuntimeLoadsTheFileAndAgreesWithOurInterpreter) {
  const Dtype dtype = GetParam();
  const fs::path dir = fs::path(leanembed::test::binary_dir()) / ("quantize_ort_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  // q4: also the form with 8-bit MatMulNBits for the square weights.
  std::vector<QuantizeOptions> forms{calibrated()};  // smoothing Muls included
  if (dtype == Dtype::q4) {
    forms.push_back(calibrated());
    forms.back().q4_square = leanembed::quantize::Q4Square::nbits_8bit;
  }
  for (const QuantizeOptions& options : forms) {
  SCOPED_TRACE(static_cast<int>(options.q4_square));
  const Model q = quantize_model(tiny_fp32(), dtype, options);
  const std::string file = (dir / ("model_" + std::to_string(static_cast<int>(dtype)) + ".onnx")).string();
  write_model(q, file);
  const Model written = read_model(file);
  static const Batch batch = reference_batch();
  const std::size_t first = 16, count = 16;
  nlohmann::json ids;
  ids["sequences"] = std::vector<std::vector<int64_t>>(batch.sequences.begin() + first, batch.sequences.begin() + first + count);
  std::ofstream(dir / "ids.json") << ids.dump();
  const std::string out = (dir / "ort.f32").string();
  const std::string cmd = "cd '" + leanembed::test::peers_dir() + "' && node ort_run.js '" + file + "' '" +
                          (dir / "ids.json").string() + "' '" + out + "' > '" + (dir / "ort.log").string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "onnxruntime-node failed on " << file << ":\n" << leanembed::test::read_file((dir / "ort.log").string());
  const std::string bytes = leanembed::test::read_file(out);
  const std::vector<float> ours = interpret(written, batch, first, count);
  ASSERT_EQ(bytes.size(), ours.size() * sizeof(float));
  std::vector<float> theirs(ours.size());
  std::memcpy(theirs.data(), bytes.data(), bytes.size());
  double worst = 1;
  for (std::size_t r = 0; r < ours.size() / 64; ++r) {
    double dot = 0, na = 0, nb = 0;
    for (std::size_t d = 0; d < 64; ++d) {
      dot += double(ours[r * 64 + d]) * theirs[r * 64 + d];
      na += double(ours[r * 64 + d]) * ours[r * 64 + d];
      nb += double(theirs[r * 64 + d]) * theirs[r * 64 + d];
    }
    worst = std::min(worst, dot / std::sqrt(na * nb));
  }
  std::printf("  worst token-row cosine ORT vs our interpreter: %.8f\n", worst);
  const bool dynamic = dtype == Dtype::q8 || dtype == Dtype::int8 || dtype == Dtype::uint8 ||
                       (dtype == Dtype::q4 && options.q4_square == leanembed::quantize::Q4Square::dynamic_8bit);
  EXPECT_GE(worst, dynamic ? 0.9999 : 0.99999);
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Tiny, OrtRuns, ::testing::Values(Dtype::q8, Dtype::uint8, Dtype::int8, Dtype::q4, Dtype::fp16),
                         [](const auto& i) {
                           switch (i.param) {
                             case Dtype::q8: return std::string("q8");
                             case Dtype::uint8: return std::string("uint8");
                             case Dtype::int8: return std::string("int8");
                             case Dtype::q4: return std::string("q4");
                             default: return std::string("fp16");
                           }
                         });

}  // namespace
