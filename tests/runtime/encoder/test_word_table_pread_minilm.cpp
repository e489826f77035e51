// The word table read with pread on the full-size MiniLM files (heavy: ~90 MB of weights per file): fp32 (shared model.onnx), ORT's quantized file (uint8 table, one scale;
// shared model_quantized.onnx) and the fp16 file (test::minilm_variants_dir()). On each, the row
// source is attached and the hidden states are bit for bit those read through the mapping.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "encoder_test_data.h"

namespace leanembed::runtime::encoder {
namespace {

using namespace test_data;

class WordTableByPreadMiniLM : public ::testing::TestWithParam<const char*> {};

TEST_P(WordTableByPreadMiniLM, GivesTheSameHiddenStatesAsTheMapping) {
  const std::string file = GetParam();
  const Reference ref = load_reference("minilm-l6-synthetic", "model");
  const Packed batch = pack(ref, 0, 8);
  const onnx::Model m =
      onnx::read_model(model_file("minilm-l6-synthetic", file), onnx::ReadOptions{.copy_misaligned = false});
  RecognizeResult by_pread = recognize_encoder(m), mapped = recognize_encoder(m, RecognizeOptions{.table_rows_by_pread = false});
  ASSERT_TRUE(by_pread.weights && mapped.weights) << by_pread.reason;
  const EmbeddingTable& t = by_pread.weights->word_embeddings;
  ASSERT_NE(t.row_source, nullptr) << file;
  EXPECT_EQ(t.row_source_offset, static_cast<std::size_t>(t.bytes - m.file_bytes.data()));
  EXPECT_EQ(mapped.weights->word_embeddings.row_source, nullptr);
  std::printf("%s: word table %s, %lld values at offset %zu\n", file.c_str(),
              t.encoding == TableEncoding::fp32 ? "fp32" : t.encoding == TableEncoding::fp16 ? "fp16" : "8-bit",
              static_cast<long long>(t.size), t.row_source_offset);
  FastEncoder a(std::move(*by_pread.weights)), b(std::move(*mapped.weights));  // the same kernels on the same input
  const std::vector<float> ya = run(a, batch), yb = run(b, batch);
  ASSERT_EQ(ya.size(), yb.size());
  EXPECT_EQ(std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)), 0) << file;
}

INSTANTIATE_TEST_SUITE_P(Files, WordTableByPreadMiniLM,
                         ::testing::Values("model.onnx", "model_quantized.onnx", "model_fp16.onnx"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (ch == '.') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace leanembed::runtime::encoder
