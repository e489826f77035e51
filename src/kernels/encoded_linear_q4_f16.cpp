// Encoded linear layers for 4-bit blocks (com.microsoft MatMulNBits, bits = 4) and float16 weights:
// the view checks, the scalar references (the spec: plain loops, double accumulation), the
// factories and the choice of kernel after a CPU check (encoded_linear_q4_f16_avx2.cpp holds the
// AVX2 kernels and the AVX-512 micro-kernel).
//
// Neither kind copies the weights (owned_bytes() = 0) nor needs scratch (scratch_bytes() = 0): the
// fast kernels decode into registers, or into a panel of at most 32 KB on each thread's stack.
// EncodedLinearImpl::fast picks AVX-512 (q4-avx512 / f16-avx512: AVX2 decoding, AVX-512
// micro-kernel from 4 rows), else AVX2 (q4-avx2 / f16-avx2), else the reference; the reference also
// when the row kernels are forced to "ref" (LEANEMBED_ISA=ref or kernels_force_isa("ref")) at the
// time the layer is made. name() tells which.

#include <cmath>
#include <cstring>
#include <string>

#include "kernels/encoded_linear.h"
#include "kernels/kernels.h"
#include "core/float16.h"
#include "kernels/encoded_linear_q4_f16_internal.h"
#include "kernels/row_kernels_tables.h"
#include "kernels/threads.h"
#include "leanembed/error.h"

namespace leanembed::kernels {

namespace {

// Dimensions up to 2^31 keep every byte count (k * n * 4 at most 2^64 / 2) inside int64_t.
constexpr int64_t kMaxDim = int64_t{1} << 31;

[[noreturn]] void fail(const std::string& message) { throw Error(ErrorCode::invalid_argument, message); }

void check_dim(const char* what, const char* field, int64_t value) {
  if (value <= 0 || value > kMaxDim)
    fail(std::string(what) + ": field " + field + " must be in [1, 2^31], found " + std::to_string(value));
}

void check_view(const BlockQ4WeightsView& w) {
  const char* what = "encoded_linear_q4 (BlockQ4WeightsView)";
  check_dim(what, "k", w.k);
  check_dim(what, "n", w.n);
  if (w.block_size < 16 || w.block_size > kMaxDim || (w.block_size & (w.block_size - 1)) != 0)
    fail(std::string(what) + ": field block_size must be a power of two >= 16, found " +
         std::to_string(w.block_size));
  if (!w.packed) fail(std::string(what) + ": field packed is null");
  if (!w.scales) fail(std::string(what) + ": field scales is null");
}

void check_view(const F16WeightsView& w) {
  const char* what = "encoded_linear_f16 (F16WeightsView)";
  check_dim(what, "k", w.k);
  check_dim(what, "n", w.n);
  if (!w.data) fail(std::string(what) + ": field data is null");
}

void check_run(const char* name, int64_t k, int64_t n, int64_t m, const float* x, int64_t ldx, float* y,
               int64_t ldy) {
  const std::string who = std::string(name) + " run()";
  if (m < 0) fail(who + ": m must be >= 0, found " + std::to_string(m));
  if (m == 0) return;
  if (!x) fail(who + ": x is null");
  if (!y) fail(who + ": y is null");
  if (ldx < k) fail(who + ": ldx must be >= k = " + std::to_string(k) + ", found " + std::to_string(ldx));
  if (ldy < n) fail(who + ": ldy must be >= n = " + std::to_string(n) + ", found " + std::to_string(ldy));
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Which code runs a layer: the plain loops, the AVX2 kernels, or the AVX2 kernels with the AVX-512
// micro-kernel where the panel path runs (m >= 4).
enum class Kernel { reference, avx2, avx512 };

// The best kernel for this CPU; the reference when LEANEMBED_ISA=ref / kernels_force_isa("ref") is
// in effect when the layer is made (the same switch that forces the reference row kernels).
Kernel best_kernel(EncodedLinearImpl impl) {
  if (impl == EncodedLinearImpl::reference || std::string(row_kernels().isa) == "ref") return Kernel::reference;
  if (cpu_has_avx512f()) return Kernel::avx512;
  if (cpu_has_avx2_fma_f16c()) return Kernel::avx2;
  return Kernel::reference;
}

// The kernel a test names: "ref", "avx2" or "avx512"; throws if this CPU cannot run it.
Kernel named_kernel(const std::string& name) {
  if (name == "ref") return Kernel::reference;
  if (name == "avx2" && cpu_has_avx2_fma_f16c()) return Kernel::avx2;
  if (name == "avx512" && cpu_has_avx512f()) return Kernel::avx512;
  fail("encoded linear kernel: expected ref, avx2 or avx512 runnable on this CPU, found \"" + name + "\"");
}

// ---- The spec of each encoding (plain loops, sums in double) --------------------------------------

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

// What differs between the two encodings: names, the reference, the fast kernels.
struct Q4Encoding {
  using View = BlockQ4WeightsView;
  static constexpr const char* names[3] = {"q4-ref", "q4-avx2", "q4-avx512"};
  static constexpr auto reference = q4_reference;
  static constexpr auto fast = q4_run_avx2;
};
struct F16Encoding {
  using View = F16WeightsView;
  static constexpr const char* names[3] = {"f16-ref", "f16-avx2", "f16-avx512"};
  static constexpr auto reference = f16_reference;
  static constexpr auto fast = f16_run_avx2;
};

// A layer whose weights stay encoded (views, nothing owned, no scratch) and are decoded inside the
// product by the chosen kernel.
template <class Encoding>
class DecodingLinear : public EncodedLinear {
 public:
  DecodingLinear(const typename Encoding::View& w, Kernel kernel) : w_(w), kernel_(kernel) {}
  const char* name() const override {
    return Encoding::names[kernel_ == Kernel::avx512 ? 2 : kernel_ == Kernel::avx2 ? 1 : 0];
  }
  int64_t k() const override { return w_.k; }
  int64_t n() const override { return w_.n; }
  std::size_t owned_bytes() const override { return 0; }
  std::size_t scratch_bytes(int64_t) const override { return 0; }

  void run(int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy, const float* bias, void*) override {
    check_run(name(), w_.k, w_.n, m, x, ldx, y, ldy);
    if (m == 0) return;
    if (kernel_ == Kernel::reference)
      Encoding::reference(w_, m, x, ldx, y, ldy, bias);
    else
      Encoding::fast(w_, m, x, ldx, y, ldy, bias, gemm_threads(m, w_.n, w_.k), kernel_ == Kernel::avx512);
  }

 private:
  typename Encoding::View w_;
  Kernel kernel_;
};

}  // namespace

std::unique_ptr<EncodedLinear> encoded_linear_q4(const BlockQ4WeightsView& w, EncodedLinearImpl impl) {
  check_view(w);
  return std::make_unique<DecodingLinear<Q4Encoding>>(w, best_kernel(impl));
}

std::unique_ptr<EncodedLinear> encoded_linear_f16(const F16WeightsView& w, EncodedLinearImpl impl) {
  check_view(w);
  return std::make_unique<DecodingLinear<F16Encoding>>(w, best_kernel(impl));
}

std::unique_ptr<EncodedLinear> encoded_linear_q4_kernel(const BlockQ4WeightsView& w, const std::string& kernel) {
  check_view(w);
  return std::make_unique<DecodingLinear<Q4Encoding>>(w, named_kernel(kernel));
}

std::unique_ptr<EncodedLinear> encoded_linear_f16_kernel(const F16WeightsView& w, const std::string& kernel) {
  check_view(w);
  return std::make_unique<DecodingLinear<F16Encoding>>(w, named_kernel(kernel));
}

}  // namespace leanembed::kernels
