// In-memory quantization at load: a folder with only onnx/model.onnx asked for --dtype q8/q4 loads
// the fp32 file, quantizes it, says so once through on_warning, and gives the same vectors as the
// file `leanembed quantize` writes; the cache scope keeps them apart from fp32 vectors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "embed/model_folder.h"
#include "leanembed/embedder.h"
#include "leanembed/tokenizer.h"
#include "quantize/calibration.h"
#include "quantize/quantize_folder.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using leanembed::Dtype;

// A copy of the tiny model folder with only onnx/model.onnx.
fs::path fp32_only_folder(const std::string& tag) {
  const fs::path src = fs::path(leanembed::test::shared_dir()) / "models/tiny-bert-synthetic";
  const fs::path dst = fs::path(leanembed::test::binary_dir()) / ("quantize_at_load_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(dst);
  fs::create_directories(dst / "onnx");
  for (const auto& e : fs::directory_iterator(src)) {
    if (e.path().filename() == "onnx") continue;
    fs::copy(e.path(), dst / e.path().filename(), fs::copy_options::recursive);
  }
  fs::copy_file(src / "onnx/model.onnx", dst / "onnx/model.onnx");
  for (const auto& e : fs::recursive_directory_iterator(dst))  // ../shared is read-only; our copy is not
    fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
  return dst;
}

std::vector<std::string> texts() {
  return {"The quick brown fox jumps over the lazy dog.", "Gag me with a spoon.", "a", "Quantization at load time."};
}

class AtLoad : public ::testing::TestWithParam<Dtype> {};

TEST_P(AtLoad, QuantizesInMemoryWithANoticeAndMatchesTheWrittenFile) {
  const Dtype dtype = GetParam();
  const fs::path folder = fp32_only_folder(leanembed::dtype_name(dtype));

  leanembed::ModelLocation where{folder.string(), "", dtype, ""};
  const leanembed::ModelFolder resolved = leanembed::resolve_model_folder(where);
  EXPECT_TRUE(resolved.quantize_at_load);
  EXPECT_EQ(fs::path(resolved.onnx_path).filename(), "model.onnx");

  std::vector<std::string> notices;
  leanembed::EmbedderOptions o;
  o.location = where;
  o.threads = 2;
  o.idle_unload_seconds = 0;
  o.on_warning = [&](const std::string& m) { notices.push_back(m); };
  std::vector<std::vector<float>> in_memory;
  {
    leanembed::Embedder e(o);
    in_memory = e.embed(texts());
    EXPECT_NE(e.info().dtype.find("quantized in memory"), std::string::npos) << e.info().dtype;
    e.unload();  // a reload quantizes again, without a second notice
    EXPECT_EQ(e.embed(texts()), in_memory);
  }
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_NE(notices[0].find("quantizing onnx/model.onnx to " + std::string(leanembed::dtype_name(dtype))),
            std::string::npos) << notices[0];
  EXPECT_NE(notices[0].find(leanembed::dtype_file(dtype)), std::string::npos) << notices[0];

  // Write the file, then load it as a normal dtype file: same vectors, no notice.
  leanembed::quantize::QuantizeFolderOptions q;
  q.folder = folder.string();
  q.source = (folder / "onnx/model.onnx").string();
  q.file_name = leanembed::dtype_file(dtype);
  q.dtype = dtype;
  if (dtype != Dtype::fp16) {  // as the CLI does
    q.quantize.calibration = leanembed::quantize::calibration_ids(leanembed::Tokenizer::load(folder.string()));
  }
  leanembed::quantize::quantize_folder(q);
  notices.clear();
  EXPECT_FALSE(leanembed::resolve_model_folder(where).quantize_at_load);
  leanembed::Embedder from_file(o);
  EXPECT_TRUE(notices.empty());
  EXPECT_EQ(from_file.embed(texts()), in_memory);

  // fp32 vectors differ (the quantization is real).
  o.location.dtype = Dtype::fp32;
  leanembed::Embedder fp32(o);
  EXPECT_NE(fp32.embed(texts()), in_memory);
  fs::remove_all(folder);
}

INSTANTIATE_TEST_SUITE_P(Tiny, AtLoad, ::testing::Values(Dtype::q8, Dtype::q4, Dtype::fp16),
                         [](const auto& i) { return std::string(leanembed::dtype_name(i.param)); });

TEST(AtLoadFolder, DtypesLeanembedCannotMakeStillNeedTheirFile) {
  const fs::path folder = fp32_only_folder("bnb4");
  leanembed::ModelLocation where{folder.string(), "", Dtype::bnb4, ""};
  try {
    leanembed::resolve_model_folder(where);
    ADD_FAILURE() << "expected Error(io)";
  } catch (const leanembed::Error& e) {
    EXPECT_EQ(e.code(), leanembed::ErrorCode::io);
    EXPECT_NE(std::string(e.what()).find("model_bnb4.onnx"), std::string::npos) << e.what();
  }
  // An explicit --model-file that is missing is not replaced either.
  where.dtype = Dtype::q8;
  where.model_file = "onnx/nothing.onnx";
  EXPECT_THROW(leanembed::resolve_model_folder(where), leanembed::Error);
  fs::remove_all(folder);
}

}  // namespace
