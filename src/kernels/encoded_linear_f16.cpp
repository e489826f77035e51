// The f16 encoded linear layer (IEEE binary16 weights, fp32 compute; encoded_linear.h): the view
// check, the scalar reference (the spec: plain loops, sums in double, core/float16.h's exact
// half_to_float), the factories. The fast kernels: encoded_linear_f16_avx2.cpp (widening) + a panel
// micro-kernel, as kernel_config().decoding says when the layer is made (encoded_linear_decoding.h);
// name() tells which ("f16-avx512", ...). Nothing is copied and no scratch is needed.
#include <string>

#include "core/float16.h"
#include "kernels/dispatch.h"
#include "kernels/encoded_linear_decoding.h"
#include "leanembed/error.h"

namespace leanembed::kernels {

namespace {

void check_view(const F16WeightsView& w) {
  const char* what = "encoded_linear_f16 (F16WeightsView)";
  decoding_check_dim(what, "k", w.k);
  decoding_check_dim(what, "n", w.n);
  if (!w.data) throw Error(ErrorCode::invalid_argument, std::string(what) + ": field data is null");
}

// y[r, j] = sum_i x[r, i] * half_to_float(W[i, j]) + bias[j].
void f16_reference(const F16WeightsView& w, int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy,
                   const float* bias) {
  const auto* bytes = static_cast<const unsigned char*>(w.data);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t j = 0; j < w.n; ++j) {
      double sum = 0.0;
      for (int64_t i = 0; i < w.k; ++i) sum += static_cast<double>(x[r * ldx + i]) * load_half(bytes + (i * w.n + j) * 2);
      if (bias) sum += bias[j];
      y[r * ldy + j] = static_cast<float>(sum);
    }
  }
}

struct F16Encoding {
  using View = F16WeightsView;
  static constexpr const char* prefix = "f16";
  static constexpr auto reference = f16_reference;
  static constexpr auto fast = f16_run_avx2;
  // Measured (README.md "Small runs on one thread"): fp16 MiniLM runs faster on 2 passive threads
  // than on one even for a single sentence.
  static constexpr int64_t parallel_min_rows = 0;
};

}  // namespace

std::unique_ptr<EncodedLinear> encoded_linear_f16(const F16WeightsView& w, Implementation impl) {
  check_view(w);
  const DecodingKernels& kernels =
      impl == Implementation::reference ? decoding_kernels_reference() : *kernel_config().decoding;
  return std::make_unique<DecodingLinear<F16Encoding>>(w, kernels);
}

std::unique_ptr<EncodedLinear> encoded_linear_f16_kernel(const F16WeightsView& w, const std::string& kernel) {
  check_view(w);
  return std::make_unique<DecodingLinear<F16Encoding>>(w, decoding_kernels_named(kernel));
}

}  // namespace leanembed::kernels
