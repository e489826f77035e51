// The fast kernels vs the reference kernels (scalar EncodedLinear, plain-loop matmul) on the
// full-size MiniLM quantized and half-precision files: every pooled cosine >= 0.99999. Heavy (the
// reference loops take tens of seconds per file).
#include <gtest/gtest.h>

#include "encoder_test_data.h"

namespace leanembed::runtime::encoder {
namespace {

using test_data::expect_fast_kernels_match_reference;

TEST(EncodedFormsMiniLM, Q8FastKernelsAgreeWithTheReferenceKernels) {
  expect_fast_kernels_match_reference("minilm-l6-synthetic", "model_quantized.onnx", "model_quantized");
}

TEST(EncodedFormsMiniLM, Int8FastKernelsAgreeWithTheReferenceKernels) {
  expect_fast_kernels_match_reference("minilm-l6-synthetic", "model_int8.onnx", "model_int8");
}

TEST(EncodedFormsMiniLM, Q4FastKernelsAgreeWithTheReferenceKernels) {
  expect_fast_kernels_match_reference("minilm-l6-synthetic", "model_q4.onnx", "model_q4");
}

TEST(EncodedFormsMiniLM, Fp16FastKernelsAgreeWithTheReferenceKernels) {
  expect_fast_kernels_match_reference("minilm-l6-synthetic", "model_fp16.onnx", "model_fp16");
}

}  // namespace
}  // namespace leanembed::runtime::encoder
