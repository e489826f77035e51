// The engine picks the fast path for the quantized and half-precision files by itself and says the
// weights' form in its description (what `leanembed info` prints).
#include <gtest/gtest.h>

#include <iostream>
#include <string>
#include <vector>

#include "encoder_test_data.h"
#include "kernels/attention.h"
#include "kernels/dispatch.h"
#include "kernels/kernels.h"
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
  Engine slow(onnx::read_model(path, read), EngineOptions{ExecutionPath::interpreter});
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

// EngineDescription::kernels (what `leanembed info` shows) names what runs: the dispatch's row-kernel
// and attention tables and the linear layers' kernels on the fast path; on the interpreter, its own
// loops — never "oneDNN matmul", which that path does not use.
TEST(EngineDescription, KernelsNameWhatRuns) {
  const kernels::KernelConfig& k = kernels::kernel_config();
  const std::string tables = std::string(k.rows->isa) + " row kernels, " + k.attention->isa + " attention";
  const std::string fp32 = model_file("tiny-bert-synthetic", "model.onnx");
  Engine fast(onnx::read_model(fp32), EngineOptions{});
  EXPECT_EQ(fast.description().kernels, tables + ", linear layers: oneDNN matmul");
  Engine q8(onnx::read_model(model_file("tiny-bert-synthetic", "model_quantized.onnx")), EngineOptions{});
  EXPECT_EQ(q8.description().kernels.rfind(tables + ", linear layers: ", 0), 0u) << q8.description().kernels;
  EXPECT_NE(q8.description().kernels.find("int8-onednn"), std::string::npos) << q8.description().kernels;
  Engine slow(onnx::read_model(fp32), EngineOptions{ExecutionPath::interpreter});
  EXPECT_NE(slow.description().kernels.find("interpreter"), std::string::npos) << slow.description().kernels;
  EXPECT_EQ(slow.description().kernels.find("oneDNN"), std::string::npos) << slow.description().kernels;
}

}  // namespace
}  // namespace leanembed::runtime
