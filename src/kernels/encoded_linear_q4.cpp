// The q4 encoded linear layer (com.microsoft MatMulNBits, bits = 4; encoded_linear.h): the view
// check, the scalar reference (the spec: plain loops, sums in double), the factories. The fast
// kernels: encoded_linear_q4_avx2.cpp (decoding) + a panel micro-kernel, as kernel_config().decoding
// says when the layer is made (encoded_linear_decoding.h); name() tells which ("q4-avx512", ...).
// Nothing is copied (owned_bytes() = 0) and no scratch is needed (scratch_bytes() = 0).
#include <cstring>
#include <string>

#include "kernels/dispatch.h"
#include "kernels/encoded_linear_decoding.h"
#include "leanembed/error.h"

namespace leanembed::kernels {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void check_view(const BlockQ4WeightsView& w) {
  const char* what = "encoded_linear_q4 (BlockQ4WeightsView)";
  decoding_check_dim(what, "k", w.k);
  decoding_check_dim(what, "n", w.n);
  if (w.block_size < 16 || w.block_size > (int64_t{1} << 31) || (w.block_size & (w.block_size - 1)) != 0)
    throw Error(ErrorCode::invalid_argument, std::string(what) + ": field block_size must be a power of two >= 16, found " +
                                                 std::to_string(w.block_size));
  if (!w.packed) throw Error(ErrorCode::invalid_argument, std::string(what) + ": field packed is null");
  if (!w.scales) throw Error(ErrorCode::invalid_argument, std::string(what) + ": field scales is null");
}

// y[r, j] = sum_b scale(j, b) * sum_{i in b} x[r, i] * (q(j, i) - zp(j, b)) + bias[j].
void q4_reference(const BlockQ4WeightsView& w, int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy,
                  const float* bias) {
  const int64_t bs = w.block_size, blocks = ceil_div(w.k, bs);
  const int64_t zp_stride = ceil_div(blocks, 2);
  const auto* scale_bytes = static_cast<const unsigned char*>(w.scales);
  for (int64_t r = 0; r < m; ++r) {
    const float* xr = x + r * ldx;
    for (int64_t j = 0; j < w.n; ++j) {
      double total = 0.0;
      for (int64_t b = 0; b < blocks; ++b) {
        float scale = 0.0f;
        std::memcpy(&scale, scale_bytes + (j * blocks + b) * 4, sizeof scale);
        int zp = 8;
        if (w.zero_points) {
          const uint8_t byte = w.zero_points[j * zp_stride + b / 2];
          zp = (b % 2 == 0) ? (byte & 0x0F) : (byte >> 4);
        }
        const uint8_t* block = w.packed + (j * blocks + b) * (bs / 2);
        double sum = 0.0;
        for (int64_t t = 0; t < bs && b * bs + t < w.k; ++t) {
          const uint8_t byte = block[t / 2];
          const int q = (t % 2 == 0) ? (byte & 0x0F) : (byte >> 4);
          sum += static_cast<double>(xr[b * bs + t]) * (q - zp);
        }
        total += sum * scale;
      }
      if (bias) total += bias[j];
      y[r * ldy + j] = static_cast<float>(total);
    }
  }
}

struct Q4Encoding {
  using View = BlockQ4WeightsView;
  static constexpr const char* prefix = "q4";
  static constexpr auto reference = q4_reference;
  static constexpr auto fast = q4_run_avx2;
  // Measured (README.md "Small runs on one thread"): q4 MiniLM on 2 passive threads overtakes one
  // thread at 3 sentences of ~23 tokens.
  static constexpr int64_t parallel_min_rows = 64;
};

}  // namespace

std::unique_ptr<EncodedLinear> encoded_linear_q4(const BlockQ4WeightsView& w, Implementation impl) {
  check_view(w);
  const DecodingKernels& kernels =
      impl == Implementation::reference ? decoding_kernels_reference() : *kernel_config().decoding;
  return std::make_unique<DecodingLinear<Q4Encoding>>(w, kernels);
}

std::unique_ptr<EncodedLinear> encoded_linear_q4_kernel(const BlockQ4WeightsView& w, const std::string& kernel) {
  check_view(w);
  return std::make_unique<DecodingLinear<Q4Encoding>>(w, decoding_kernels_named(kernel));
}

}  // namespace leanembed::kernels
