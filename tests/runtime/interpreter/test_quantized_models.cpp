// End to end: the shared quantized model files (q8 = uint8 weights, int8, q4 = MatMulNBits) run
// through the interpreter and compared with ONNX Runtime's outputs on the very same file
// (../shared/models/expected/<model>/<variant>.json). Missing shared data fails; nothing is skipped.
//
// Batching matters: DynamicQuantizeLinear takes one scale over the whole [batch, seq, hidden]
// activation, padding included, so a sentence's result depends on its batch. The references were
// made with padded batches of 16 sentences in file order (each padded to the longest of its batch,
// mask 0 on padding): this test feeds the same batches. (Measured with onnxruntime-node on the q8
// file: the same sentences one at a time move the pooled embeddings to cosine 0.99988 of the
// reference and the hidden states by up to 0.55; in batches of 16 ORT reproduces it exactly.)
//
// Built twice: test_interpreter_quantized (tiny-bert files) and, with LEANEMBED_TEST_MINILM defined,
// test_interpreter_quantized_minilm (the full-size MiniLM q8 file; label heavy).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ostream>

#include "onnx/reader.h"
#include "runtime/interpreter/interpreter.h"
#include "test_support.h"

namespace leanembed::interp {
namespace {

constexpr std::size_t kBatch = 16;  // the references' batch size

struct Reference {
  std::vector<std::vector<int64_t>> input_ids, attention_mask, token_type_ids;
  std::vector<std::vector<std::vector<double>>> hidden;  // [4][tokens][hidden]
  std::vector<std::vector<double>> embeddings;           // [64][hidden]
};

Reference load_reference(const std::string& path) {
  nlohmann::json j = nlohmann::json::parse(leanembed::test::read_file(path));
  Reference r;
  j.at("input_ids").get_to(r.input_ids);
  j.at("attention_mask").get_to(r.attention_mask);
  j.at("token_type_ids").get_to(r.token_type_ids);
  j.at("last_hidden_state").get_to(r.hidden);
  j.at("embeddings").get_to(r.embeddings);
  return r;
}

struct ModelCase {
  const char* folder;
  const char* file;
  const char* expected;    // ORT's outputs on this very file
  double min_cosine;       // pooled, vs ORT on the same file, every sentence
  double min_mean_cosine;  // the mean of those 64 cosines
  double max_hidden_diff;  // last_hidden_state of the first 4 sentences, vs ORT
};

void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.folder << "/" << c.file; }

std::string case_name(const ::testing::TestParamInfo<ModelCase>& info) {
  std::string name = info.param.file;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

// Pads sentences [first, first + count) to the longest with id 0 / mask 0 / type 0.
Interpreter::TensorMap batch_feed(const Reference& r, std::size_t first, std::size_t count) {
  std::size_t length = 0;
  for (std::size_t s = first; s < first + count; ++s) length = std::max(length, r.input_ids[s].size());
  std::vector<int64_t> ids(count * length, 0), mask(count * length, 0), types(count * length, 0);
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t t = 0; t < r.input_ids[first + b].size(); ++t) {
      ids[b * length + t] = r.input_ids[first + b][t];
      mask[b * length + t] = r.attention_mask[first + b][t];
      types[b * length + t] = r.token_type_ids[first + b][t];
    }
  std::vector<int64_t> shape{static_cast<int64_t>(count), static_cast<int64_t>(length)};
  return {{"input_ids", Tensor::from_int64s(shape, ids)},
          {"attention_mask", Tensor::from_int64s(shape, mask)},
          {"token_type_ids", Tensor::from_int64s(shape, types)}};
}

// Mean over the tokens whose mask is 1, then L2 normalisation. hidden: [length, dim] rows.
std::vector<double> pool(const float* hidden, std::size_t length, std::size_t dim, const std::vector<int64_t>& mask) {
  std::vector<double> v(dim, 0.0);
  double count = 0;
  for (std::size_t t = 0; t < length && t < mask.size(); ++t) {
    if (mask[t] == 0) continue;
    count += 1;
    for (std::size_t d = 0; d < dim; ++d) v[d] += hidden[t * dim + d];
  }
  double norm = 0;
  for (double& x : v) {
    x /= std::max(count, 1.0);
    norm += x * x;
  }
  norm = std::sqrt(norm);
  for (double& x : v) x /= std::max(norm, 1e-12);
  return v;
}

double cosine(const std::vector<double>& a, const std::vector<double>& b) {
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / std::sqrt(na * nb);
}

class QuantizedModel : public ::testing::TestWithParam<ModelCase> {};

TEST_P(QuantizedModel, MatchesOnnxRuntimeInBatchesOf16) {
  const ModelCase& c = GetParam();
  const std::string dir = leanembed::test::shared_dir() + "/models/";
  const onnx::Model model = onnx::read_model(dir + c.folder + "/onnx/" + c.file);
  const Interpreter interpreter(model);
  const Reference ref = load_reference(dir + "expected/" + c.folder + "/" + c.expected);
  ASSERT_EQ(ref.embeddings.size(), 64u);
  ASSERT_EQ(ref.input_ids.size(), 64u);
  ASSERT_EQ(ref.hidden.size(), 4u);

  double min_cos = 1.0, sum_cos = 0.0, hidden_diff = 0.0;
  std::size_t hidden_values = 0;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t first = 0; first < ref.input_ids.size(); first += kBatch) {
    const std::size_t count = std::min(kBatch, ref.input_ids.size() - first);
    auto out = interpreter.run(batch_feed(ref, first, count));
    const Tensor& h = out.at("last_hidden_state");
    ASSERT_EQ(h.rank(), 3);
    ASSERT_EQ(h.dim(0), static_cast<int64_t>(count));
    const auto length = static_cast<std::size_t>(h.dim(1)), dim = static_cast<std::size_t>(h.dim(2));
    ASSERT_EQ(dim, ref.embeddings[0].size());
    const float* data = h.data<float>().data();
    for (std::size_t b = 0; b < count; ++b) {
      const std::size_t s = first + b;
      const float* rows = data + b * length * dim;
      const double cs = cosine(pool(rows, length, dim, ref.attention_mask[s]), ref.embeddings[s]);
      min_cos = std::min(min_cos, cs);
      sum_cos += cs;
      if (s < ref.hidden.size()) {
        ASSERT_EQ(ref.hidden[s].size(), ref.input_ids[s].size());
        for (std::size_t t = 0; t < ref.hidden[s].size(); ++t)
          for (std::size_t d = 0; d < dim; ++d) {
            hidden_diff = std::max(hidden_diff, std::abs(static_cast<double>(rows[t * dim + d]) - ref.hidden[s][t][d]));
            ++hidden_values;
          }
      }
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double mean_cos = sum_cos / static_cast<double>(ref.embeddings.size());
  std::printf("[ figures  ] %s/%s vs ORT (64 sentences, batches of 16, %.2f s): pooled cosine min %.12f mean %.12f; "
              "last_hidden_state max |diff| %.3g over %zu values\n",
              c.folder, c.file, seconds, min_cos, mean_cos, hidden_diff, hidden_values);
  RecordProperty("min_cosine", std::to_string(min_cos));
  RecordProperty("mean_cosine", std::to_string(mean_cos));
  RecordProperty("max_abs_diff", std::to_string(hidden_diff));
  EXPECT_GT(hidden_values, 0u);
  EXPECT_GE(min_cos, c.min_cosine);
  EXPECT_GE(mean_cos, c.min_mean_cosine);
  EXPECT_LE(hidden_diff, c.max_hidden_diff);
}

#ifdef LEANEMBED_TEST_MINILM
// Full size, the q8 file. Rounding ties make DynamicQuantizeLinear chaotic at this size: a float32
// difference of one ulp upstream flips a code, and the synthetic weights' outlier columns carry such
// flips far. ONNX Runtime itself moves by as much between its own settings: on this file, in these
// batches, its default optimization level vs level "basic" (unfused float kernels) differ by pooled
// cosine min 0.99920 and 1.70 max |diff| in the hidden states. Measured for the interpreter: vs ORT
// default (the reference) min 0.99920, mean 0.99988, 1.70; vs ORT "basic" min 0.99962, mean
// 0.99996, 1.9e-5 on the first 4 sentences. The bounds below are ORT's own spread, not the 0.9999
// the tiny files meet.
INSTANTIATE_TEST_SUITE_P(MiniLM, QuantizedModel,
                         ::testing::Values(ModelCase{"minilm-l6-synthetic", "model_quantized.onnx",
                                                     "model_quantized.json", 0.999, 0.9998, 2.0}),
                         case_name);
#else
// Measured: q8 min 0.999999977, int8 min 1 - 1e-12, q4 min 1 - 1e-12; hidden max |diff| 5.7e-6,
// 4.8e-6, 7.6e-6.
INSTANTIATE_TEST_SUITE_P(TinyBert, QuantizedModel,
                         ::testing::Values(ModelCase{"tiny-bert-synthetic", "model_quantized.onnx",
                                                     "model_quantized.json", 0.99999, 0.999999, 1e-4},
                                           ModelCase{"tiny-bert-synthetic", "model_int8.onnx", "model_int8.json",
                                                     0.99999, 0.999999, 1e-4},
                                           ModelCase{"tiny-bert-synthetic", "model_q4.onnx", "model_q4.json",
                                                     0.99999, 0.999999, 1e-4}),
                         case_name);
#endif

}  // namespace
}  // namespace leanembed::interp
