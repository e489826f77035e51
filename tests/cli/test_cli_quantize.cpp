// `leanembed quantize`: files written under transformers.js' names, a complete --out folder, refusal
// to overwrite without --force, exit codes (usage 2, runtime 1).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "onnx/reader.h"
#include "cli_test_support.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace {

using Result = leanembed::test::CliResult;

fs::path work_dir() {
  fs::path p = fs::path(leanembed::test::binary_dir()) / ("test_cli_quantize_" + std::to_string(::getpid()));
  fs::create_directories(p);
  return p;
}

Result run(const std::string& args) { return leanembed::test::run_cli(work_dir(), args); }

std::string tiny() { return leanembed::test::shared_dir() + "/models/tiny-bert-synthetic"; }

bool has_op(const std::string& file, const std::string& op) {
  const leanembed::onnx::Model m = leanembed::onnx::read_model(file);
  for (const auto& n : m.graph.nodes)
    if (n.op_type == op) return true;
  return false;
}

TEST(CliQuantize, WritesEachDtypeIntoACompleteOutFolder) {
  const fs::path out = work_dir() / "out";
  fs::remove_all(out);
  const std::pair<const char*, const char*> cases[] = {{"q8", "model_quantized.onnx"}, {"uint8", "model_uint8.onnx"},
                                                       {"int8", "model_int8.onnx"},     {"q4", "model_q4.onnx"},
                                                       {"fp16", "model_fp16.onnx"}};
  for (const auto& [dtype, file] : cases) {
    Result r = run(std::string("quantize --model ") + tiny() + " --dtype " + dtype + " --out " + out.string());
    ASSERT_EQ(r.code, 0) << dtype << ": " << r.err;
    EXPECT_NE(r.out.find("wrote " + (out / "onnx" / file).string()), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" MB"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" s"), std::string::npos) << r.out;
    ASSERT_TRUE(fs::is_regular_file(out / "onnx" / file)) << dtype;
  }
  EXPECT_TRUE(has_op((out / "onnx/model_quantized.onnx").string(), "MatMulInteger"));
  EXPECT_TRUE(has_op((out / "onnx/model_q4.onnx").string(), "MatMulNBits"));
  // The metadata came along, the fp32 weights did not.
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json", "modules.json", "1_Pooling/config.json",
                        "sentence_bert_config.json", "vocab.txt"})
    EXPECT_TRUE(fs::is_regular_file(out / f)) << f;
  EXPECT_FALSE(fs::exists(out / "onnx/model.onnx"));
  // The folder is usable as it is: embed with the q8 file it holds (no quantization at load).
  Result e = run("embed --model " + out.string() + " --dtype q8 hello");
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(e.err.find("quantizing"), std::string::npos) << e.err;
  fs::remove_all(out);
}

// Calibration is on by default: the q8 file has a smoothing Mul in front of each
// DynamicQuantizeLinear; --no-smooth writes ONNX Runtime's plain pattern.
TEST(CliQuantize, SmoothingByDefaultAndNoSmooth) {
  const fs::path out = work_dir() / "smooth";
  fs::remove_all(out);
  auto muls_before_dql = [](const std::string& file) {
    const leanembed::onnx::Model m = leanembed::onnx::read_model(file);
    int n = 0;
    for (const auto& node : m.graph.nodes) {
      if (node.op_type != "DynamicQuantizeLinear") continue;
      for (const auto& p : m.graph.nodes)
        if (p.op_type == "Mul" && p.outputs.at(0) == node.inputs.at(0) && p.inputs.size() == 2 &&
            m.graph.initializer(p.inputs[1]) && m.graph.initializer(p.inputs[1])->dims.size() == 1)
          ++n;  // X * (1/s), a per-channel constant (GELU's own Muls take a scalar Constant)
    }
    return n;
  };
  Result r = run("quantize --model " + tiny() + " --dtype q8 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("calibrated on"), std::string::npos) << r.out;
  // tiny has 2 layers x 4 quantized activations; the first layer's attention (its LayerNorm input
  // and context) stays float16-weighted by default (mixed precision): 6 smoothed; --no-mixed: 8.
  EXPECT_EQ(muls_before_dql((out / "onnx/model_quantized.onnx").string()), 6);
  r = run("quantize --model " + tiny() + " --dtype q8 --no-mixed --force --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(muls_before_dql((out / "onnx/model_quantized.onnx").string()), 8);
  for (const auto& t : leanembed::onnx::read_model((out / "onnx/model_quantized.onnx").string()).graph.initializers)
    EXPECT_NE(t.dtype, leanembed::onnx::DataType::float16) << t.name;
  r = run("quantize --model " + tiny() + " --dtype q8 --no-smooth --force --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(muls_before_dql((out / "onnx/model_quantized.onnx").string()), 0);
  fs::remove_all(out);
}

TEST(CliQuantize, RefusesToOverwriteUnlessForced) {
  const fs::path out = work_dir() / "again";
  fs::remove_all(out);
  const std::string args = "quantize --model " + tiny() + " --dtype q4 --out " + out.string();
  ASSERT_EQ(run(args).code, 0);
  const auto written = fs::last_write_time(out / "onnx/model_q4.onnx");
  Result r = run(args);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("exists already"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  EXPECT_EQ(fs::last_write_time(out / "onnx/model_q4.onnx"), written);
  Result f = run(args + " --force");
  EXPECT_EQ(f.code, 0) << f.err;
  fs::remove_all(out);
}

TEST(CliQuantize, UsageErrorsExitTwo) {
  for (const char* dtype : {"fp32", "q4f16", "bogus"}) {
    Result r = run(std::string("quantize --model ") + tiny() + " --dtype " + dtype + " --out " + (work_dir() / "x").string());
    EXPECT_EQ(r.code, 2) << dtype << ": " << r.err;
    EXPECT_NE(r.err.find("dtype"), std::string::npos) << r.err;
  }
  EXPECT_EQ(run("quantize --model " + tiny()).code, 2);  // --dtype is required
  EXPECT_FALSE(fs::exists(work_dir() / "x"));
}

TEST(CliQuantize, MissingModelExitsOne) {
  Result r = run("quantize --model /nonexistent/folder --dtype q8");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("/nonexistent/folder"), std::string::npos) << r.err;
  // A folder without onnx/model.onnx.
  const fs::path empty = work_dir() / "empty";
  fs::create_directories(empty);
  std::ofstream(empty / "tokenizer.json") << "{}";
  Result m = run("quantize --model " + empty.string() + " --dtype q8");
  EXPECT_EQ(m.code, 1);
  EXPECT_NE(m.err.find("model.onnx"), std::string::npos) << m.err;
  fs::remove_all(work_dir());
}

}  // namespace
