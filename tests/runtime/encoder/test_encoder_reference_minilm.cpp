// MiniLM through the reference row kernels and the plain-loop matmul (slow under the sanitizers,
// hence its own binary labelled heavy).
#include <gtest/gtest.h>

#include "encoder_test_data.h"

namespace leanembed::runtime::encoder {
namespace {

TEST(FastEncoderReferenceKernels, MiniLM) {
  test_data::expect_reference_kernels_match_ort("minilm-l6-synthetic", "model.onnx", "model");
}

TEST(FastEncoderReferenceKernels, MiniLMZeroCopy) {
  test_data::expect_reference_kernels_match_ort("minilm-l6-synthetic", "model.onnx", "model", true);
}

}  // namespace
}  // namespace leanembed::runtime::encoder
