#include "kernels/gemm_args.h"

#include <string>

#include "leanembed/error.h"

namespace leanembed::kernels {
namespace {

[[noreturn]] void fail(const char* who, const std::string& what) {
  throw Error(ErrorCode::invalid_argument, std::string(who) + ": " + what);
}

void check_stride(const char* who, const char* field, int64_t ld, int64_t cols, const char* shape) {
  if (ld < cols)
    fail(who, std::string(field) + " must be >= " + std::to_string(cols) + " (the row length of " +
                  shape + "), found " + std::to_string(ld));
}

}  // namespace

void gemm_args_check(const GemmArgs& g, const char* who) {
  if (g.m < 0 || g.n < 0 || g.k < 0)
    fail(who, "sizes must be >= 0, found m=" + std::to_string(g.m) + " n=" + std::to_string(g.n) +
                  " k=" + std::to_string(g.k));
  if (g.m == 0 || g.n == 0) return;
  if (!g.c) fail(who, "c is null for a " + std::to_string(g.m) + "x" + std::to_string(g.n) + " product");
  check_stride(who, "ldc", g.ldc, g.n, "C (m x n)");
  if (g.k == 0) return;
  if (!g.a) fail(who, "a is null");
  if (!g.b) fail(who, "b is null");
  if (g.trans_a) check_stride(who, "lda", g.lda, g.m, "A stored transposed (k x m)");
  else check_stride(who, "lda", g.lda, g.k, "A (m x k)");
  if (g.trans_b) check_stride(who, "ldb", g.ldb, g.k, "B stored transposed (n x k)");
  else check_stride(who, "ldb", g.ldb, g.n, "B (k x n)");
}

void gemm_empty_k(const GemmArgs& g) {
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      float& c = g.c[i * g.ldc + j];
      float v = g.beta != 0.0f ? g.beta * c : 0.0f;
      c = g.bias ? v + g.bias[j] : v;
    }
}

}  // namespace leanembed::kernels
