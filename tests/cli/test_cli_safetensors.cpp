// The CLI with safetensors folders: --model-format (and LEANEMBED_MODEL_FORMAT) choose the file,
// `info` says which and why and lists the ignored tensors, vectors equal the ONNX file's, and a
// quantized dtype with only model.safetensors exits 1 naming the file to fetch.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "cli_test_support.h"

namespace fs = std::filesystem;
using leanembed::test::run_cli;

namespace {

std::string tiny() { return leanembed::test::shared_dir() + "/models/tiny-bert-synthetic"; }
fs::path work(const std::string& name) { return fs::path(leanembed::test::binary_dir()) / "test_cli_safetensors" / name; }

TEST(CliSafetensors, InfoSaysWhichFileAndWhy) {
  auto r = run_cli(work("info"), "info --model " + tiny() + " --model-format safetensors");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("model.safetensors (safetensors"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("format safetensors asked for"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ignored        2 tensors the encoder does not use: pooler.dense.bias, pooler.dense.weight"),
            std::string::npos) << r.out;
  auto d = run_cli(work("info-default"), "info --model " + tiny());
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_NE(d.out.find("onnx/model.onnx (onnx"), std::string::npos) << d.out;
  fs::create_directories(work("info-env"));
  const std::string cmd = "LEANEMBED_MODEL_FORMAT=safetensors " + std::string(LEANEMBED_CLI) + " info --model " + tiny() +
                          " > " + (work("info-env") / "env.txt").string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_NE(leanembed::test::read_file((work("info-env") / "env.txt").string()).find("(safetensors"), std::string::npos);
}

TEST(CliSafetensors, VectorsEqualTheOnnxFiles) {
  const std::string texts = "hello world\nA second, longer sentence about model files.\n";
  auto a = run_cli(work("onnx"), "embed --model " + tiny() + " --format f32 -o " + (work("onnx") / "v.f32").string(), texts);
  auto b = run_cli(work("st"), "embed --model " + tiny() + " --model-format safetensors --format f32 -o " +
                                   (work("st") / "v.f32").string(), texts);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  const auto va = leanembed::test::read_f32(work("onnx") / "v.f32"), vb = leanembed::test::read_f32(work("st") / "v.f32");
  ASSERT_EQ(va.size(), 128u);
  ASSERT_EQ(vb.size(), va.size());
  for (std::size_t i = 0; i < va.size(); ++i) EXPECT_NEAR(va[i], vb[i], 1e-5) << i;
}

TEST(CliSafetensors, QuantizedDtypeWithOnlySafetensorsNamesTheFileToFetch) {
  const fs::path folder = work("brainy");
  fs::remove_all(folder);
  fs::create_directories(folder);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"}) fs::create_symlink(fs::path(tiny()) / f, folder / f);
  auto r = run_cli(work("q8"), "embed --model " + folder.string() + " --dtype q8 hello");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("onnx/model_quantized.onnx"), std::string::npos) << r.err;
  auto ok = run_cli(work("fp32"), "embed --model " + folder.string() + " hello");
  EXPECT_EQ(ok.code, 0) << ok.err;
  auto bad = run_cli(work("bad-flag"), "info --model " + folder.string() + " --model-format gguf");
  EXPECT_EQ(bad.code, 2);
}

}  // namespace
