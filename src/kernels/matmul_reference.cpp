// The reference matrix product: plain loops with double accumulation, the spec the oneDNN one is
// tested against. Rows of C are split over threads_get() OpenMP threads; it is slow (no blocking)
// and meant for tests and small checks. A and B may start at any byte address (GemmArgs), so their
// elements are read with std::memcpy, never through a float*.
#include <cstddef>
#include <cstring>

#include "kernels/gemm_args.h"
#include "kernels/kernels.h"
#include "kernels/threads.h"

namespace leanembed::kernels {
namespace {

// Element i of the float array starting at `base`, which need not be float-aligned.
double element(const float* base, int64_t i) {
  float v;
  std::memcpy(&v, reinterpret_cast<const std::byte*>(base) + i * static_cast<int64_t>(sizeof(float)), sizeof v);
  return v;
}

class ReferenceMatmul final : public Matmul {
 public:
  const char* name() const override { return "reference"; }

  std::size_t scratch_bytes(int64_t, int64_t, int64_t, bool, bool) const override { return 0; }

  void gemm(const GemmArgs& g, void* /*scratch*/) override {
    gemm_args_check(g, "reference gemm");
    if (g.m == 0 || g.n == 0) return;
    if (g.k == 0) return gemm_empty_k(g);
    const int64_t m = g.m, n = g.n, k = g.k;
#pragma omp parallel for num_threads(threads_get()) if (m * n * k >= (1 << 20)) schedule(static)
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p) {
          const double a = element(g.a, g.trans_a ? p * g.lda + i : i * g.lda + p);
          const double b = element(g.b, g.trans_b ? j * g.ldb + p : p * g.ldb + j);
          acc += a * b;
        }
        float& c = g.c[i * g.ldc + j];
        double v = static_cast<double>(g.alpha) * acc;
        if (g.beta != 0.0f) v += static_cast<double>(g.beta) * c;  // C is not read when beta == 0
        if (g.bias) v += g.bias[j];
        c = static_cast<float>(v);
      }
    }
  }
};

}  // namespace

std::unique_ptr<Matmul> matmul_create_reference() { return std::make_unique<ReferenceMatmul>(); }

std::unique_ptr<Matmul> matmul_create(Implementation implementation) {
  return implementation == Implementation::reference ? matmul_create_reference() : matmul_create_onednn();
}

}  // namespace leanembed::kernels
