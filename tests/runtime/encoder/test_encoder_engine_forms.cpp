// The engine picks the fast path for the quantized and half-precision files by itself and says the
// weights' form in its description (what `leanembed info` prints).
#include <gtest/gtest.h>

#include <iostream>
#include <string>
#include <vector>

#include "encoder_test_data.h"
#include "runtime/engine.h"

namespace leanembed::runtime {
namespace {

using namespace encoder::test_data;

struct FormCase {
  const char* model;
  const char* file;
  const char* form;
};

class EngineForms : public ::testing::TestWithParam<FormCase> {};

TEST_P(EngineForms, ChoosesTheFastPathAndNamesTheForm) {
  const FormCase& c = GetParam();
  onnx::ReadOptions read;
  read.copy_misaligned = false;
  const std::string path = model_file(c.model, c.file);
  Engine engine(onnx::read_model(path, read), EngineOptions{});
  const EngineDescription& d = engine.description();
  std::cout << c.model << "/" << c.file << ": " << d.path << " — " << d.reason << "; owned weight bytes "
            << d.owned_weight_bytes << "\n";
  EXPECT_EQ(d.path, "fast");
  EXPECT_EQ(d.weight_form, c.form);
  EXPECT_NE(d.reason.find(c.form), std::string::npos) << d.reason;
  EXPECT_FALSE(d.linear_kernels.empty());

  // The engine's output is the fast path's (same kernels, same batch: identical).
  Reference ref = load_reference(c.model, "torch_fp32");
  Packed batch = pack(ref, 0, 4);
  std::vector<float> from_engine(batch.ids.size() * static_cast<std::size_t>(d.hidden));
  engine.run(batch.ids, batch.types, batch.offsets, from_engine);
  encoder::FastEncoder direct(recognized_file(path));
  EXPECT_EQ(from_engine, run(direct, batch));

  // Forced onto the interpreter, the description has no form.
  Engine slow(onnx::read_model(path, read), EngineOptions{PathChoice::interpreter});
  EXPECT_EQ(slow.description().path, "interpreter");
  EXPECT_EQ(slow.description().weight_form, "");
}

INSTANTIATE_TEST_SUITE_P(
    Files, EngineForms,
    ::testing::Values(FormCase{"tiny-bert-synthetic", "model.onnx", "fp32"},
                      FormCase{"tiny-bert-synthetic", "model_quantized.onnx", "int8 (uint8 weights, per-tensor scales)"},
                      FormCase{"tiny-bert-synthetic", "model_int8.onnx", "int8 (int8 weights, per-tensor scales)"},
                      FormCase{"tiny-bert-synthetic", "model_q4.onnx", "q4 (block 32)"},
                      FormCase{"tiny-bert-synthetic", "model_fp16.onnx", "fp16"},
                      FormCase{"minilm-l6-synthetic", "model_quantized.onnx", "int8 (uint8 weights, per-tensor scales)"}),
    [](const auto& info) {
      std::string s = std::string(info.param.model) + "_" + info.param.file;
      for (char& ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return s;
    });

}  // namespace
}  // namespace leanembed::runtime
