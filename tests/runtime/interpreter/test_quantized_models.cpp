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
#include "model_test_support.h"
#include "test_support.h"

namespace leanembed::interp {
namespace {

using model_test::batch_feed;
using model_test::cosine;
using model_test::load_reference;
using model_test::pool;
using model_test::Reference;

constexpr std::size_t kBatch = 16;  // the references' batch size

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
  return model_test::file_case_name(info.param.file);
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
