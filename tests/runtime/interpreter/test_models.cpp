// End to end: the shared synthetic BERT models run through the interpreter and compared with the
// reference outputs in ../shared/models/expected (ONNX Runtime on the same file for hidden states;
// PyTorch fp32 for pooled embeddings). Missing shared data fails the test; nothing is skipped.
//
// Built twice: test_interpreter_models (tiny-bert files) and, with LEANEMBED_TEST_MINILM defined,
// test_interpreter_minilm (the full-size MiniLM file).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cctype>
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

struct ModelCase {
  const char* folder;
  const char* file;
  const char* expected;  // ORT's outputs on this very file
  double max_hidden_diff = 1e-4;      // vs ORT on the same file
  double min_cosine = 0.99999;        // pooled, vs PyTorch fp32
};

// Names the case in test listings (and ctest names) instead of gtest's byte dump.
void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.folder << "/" << c.file; }

std::string case_name(const ::testing::TestParamInfo<ModelCase>& info) {
  return model_test::file_case_name(info.param.file);
}

std::string model_path(const ModelCase& c) {
  return leanembed::test::shared_dir() + "/models/" + c.folder + "/onnx/" + c.file;
}
std::string expected_path(const std::string& folder, const std::string& name) {
  return leanembed::test::shared_dir() + "/models/expected/" + folder + "/" + name;
}

class InterpreterModel : public ::testing::TestWithParam<ModelCase> {
 protected:
  static void SetUpTestSuite() {}
  void SetUp() override {
    model_ = std::make_unique<onnx::Model>(onnx::read_model(model_path(GetParam())));
    interpreter_ = std::make_unique<Interpreter>(*model_);
    reference_ = load_reference(expected_path(GetParam().folder, GetParam().expected));
  }
  // Largest |ours - reference| over the valid tokens of sentence s, given our [length, dim] rows.
  double max_diff(const float* ours, std::size_t s) const {
    double worst = 0;
    const auto& ref = reference_.hidden[s];
    for (std::size_t t = 0; t < ref.size(); ++t)
      for (std::size_t d = 0; d < ref[t].size(); ++d)
        worst = std::max(worst, std::abs(static_cast<double>(ours[t * ref[t].size() + d]) - ref[t][d]));
    return worst;
  }

  std::unique_ptr<onnx::Model> model_;
  std::unique_ptr<Interpreter> interpreter_;
  Reference reference_;
};

TEST_P(InterpreterModel, HiddenStatesOneSentenceAtATime) {
  ASSERT_EQ(reference_.hidden.size(), 4u);
  double worst = 0;
  RunStats stats;
  for (std::size_t s = 0; s < 4; ++s) {
    auto out = interpreter_->run(batch_feed(reference_, s, 1), &stats);
    const Tensor& h = out.at("last_hidden_state");
    const auto length = static_cast<int64_t>(reference_.hidden[s].size());
    const auto dim = static_cast<int64_t>(reference_.hidden[s][0].size());
    ASSERT_EQ(h.shape(), (std::vector<int64_t>{1, length, dim}));
    worst = std::max(worst, max_diff(h.data<float>().data(), s));
  }
  std::printf("[ figures  ] %s/%s: one sentence at a time, max |diff| vs ORT = %.3g; peak intermediates %zu bytes\n",
              GetParam().folder, GetParam().file, worst, stats.peak_bytes);
  RecordProperty("max_abs_diff", std::to_string(worst));
  EXPECT_LE(worst, GetParam().max_hidden_diff);
}

TEST_P(InterpreterModel, HiddenStatesPaddedBatchOfFour) {
  auto out = interpreter_->run(batch_feed(reference_, 0, 4));
  const Tensor& h = out.at("last_hidden_state");
  ASSERT_EQ(h.rank(), 3);
  ASSERT_EQ(h.dim(0), 4);
  const int64_t length = h.dim(1), dim = h.dim(2);
  double worst = 0;
  for (std::size_t s = 0; s < 4; ++s) worst = std::max(worst, max_diff(h.data<float>().data() + s * length * dim, s));
  std::printf("[ figures  ] %s/%s: padded batch of 4 (length %lld), max |diff| vs ORT = %.3g\n", GetParam().folder,
              GetParam().file, static_cast<long long>(length), worst);
  RecordProperty("max_abs_diff", std::to_string(worst));
  EXPECT_LE(worst, GetParam().max_hidden_diff);
}

TEST_P(InterpreterModel, PooledEmbeddingsMatchTorch) {
  const Reference torch = load_reference(expected_path(GetParam().folder, "torch_fp32.json"));
  ASSERT_EQ(torch.embeddings.size(), 64u);
  ASSERT_EQ(torch.input_ids, reference_.input_ids);
  double worst = 1.0;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t s = 0; s < torch.embeddings.size(); ++s) {
    auto out = interpreter_->run(batch_feed(torch, s, 1));
    const Tensor& h = out.at("last_hidden_state");
    auto v = pool(h.data<float>().data(), static_cast<std::size_t>(h.dim(1)), static_cast<std::size_t>(h.dim(2)),
                  torch.attention_mask[s]);
    worst = std::min(worst, cosine(v, torch.embeddings[s]));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ figures  ] %s/%s: 64 sentences one at a time in %.2f s, min cosine vs torch fp32 = %.12f\n",
              GetParam().folder, GetParam().file, seconds, worst);
  RecordProperty("min_cosine", std::to_string(worst));
  EXPECT_GE(worst, GetParam().min_cosine);
}

#ifdef LEANEMBED_TEST_MINILM
INSTANTIATE_TEST_SUITE_P(MiniLM, InterpreterModel,
                         ::testing::Values(ModelCase{"minilm-l6-synthetic", "model.onnx", "model.json"}), case_name);
#else
INSTANTIATE_TEST_SUITE_P(
    TinyBert, InterpreterModel,
    ::testing::Values(ModelCase{"tiny-bert-synthetic", "model.onnx", "model.json"},
                      ModelCase{"tiny-bert-synthetic", "model_opset17.onnx", "model_opset17.json"},
                      ModelCase{"tiny-bert-synthetic", "model_ort_optimized.onnx", "model_ort_optimized.json"},
                      // float16 weights and compute: each op rounds its result to float16 as the
                      // graph says, while ORT's optimizer keeps float32 between the Casts it wraps
                      // around float kernels. Measured: 0.041 max |diff| vs ORT on values up to 31
                      // (float16's spacing there is 0.016), cosine 0.9999965 vs PyTorch fp32.
                      ModelCase{"tiny-bert-synthetic", "model_fp16.onnx", "model_fp16.json", 0.08, 0.9999}),
    case_name);
#endif

}  // namespace
}  // namespace leanembed::interp
