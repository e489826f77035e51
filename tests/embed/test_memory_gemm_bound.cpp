// kernels::onednn_gemm_internal_bytes_bound against what oneDNN really allocates inside a gemm:
// this executable replaces malloc & co. with counting versions (they forward to glibc's), so the
// peak of live bytes during one call is known exactly. Labelled "memory" (the sanitizers bring
// their own allocator, so there the test says it cannot run).
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdio>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/threads.h"

#if !defined(__SANITIZE_ADDRESS__)
extern "C" {
void* __libc_malloc(size_t);
void __libc_free(void*);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
}

namespace {
std::atomic<long> g_live{0}, g_peak{0};
void counted(void* p) {
  if (!p) return;
  const long now = g_live += static_cast<long>(malloc_usable_size(p));
  long peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}
void uncounted(void* p) {
  if (p) g_live -= static_cast<long>(malloc_usable_size(p));
}
}  // namespace

extern "C" {
void* malloc(size_t n) {
  void* p = __libc_malloc(n);
  counted(p);
  return p;
}
void free(void* p) {
  uncounted(p);
  __libc_free(p);
}
void* calloc(size_t a, size_t b) {
  void* p = __libc_calloc(a, b);
  counted(p);
  return p;
}
void* realloc(void* old, size_t n) {
  const long before = old ? static_cast<long>(malloc_usable_size(old)) : 0;
  void* p = __libc_realloc(old, n);
  if (p || n == 0) {
    g_live -= before;
    counted(p);
  }
  return p;
}
int posix_memalign(void** out, size_t align, size_t n) {
  void* p = __libc_memalign(align, n);
  if (!p) return 12;  // ENOMEM
  counted(p);
  *out = p;
  return 0;
}
void* aligned_alloc(size_t align, size_t n) {
  void* p = __libc_memalign(align, n);
  counted(p);
  return p;
}
void* memalign(size_t align, size_t n) {
  void* p = __libc_memalign(align, n);
  counted(p);
  return p;
}
}

using namespace leanembed::kernels;

TEST(GemmInternalMemory, BoundHoldsForEncoderShapes) {
  struct Shape {
    int64_t n, k;
  };
  // MiniLM (H 384, F 1536), BERT-base (768, 3072), BERT-large (1024, 4096) linear layers, and odd sizes.
  const std::vector<Shape> shapes = {{384, 384},   {1536, 384},  {384, 1536}, {768, 768},  {3072, 768},
                                     {768, 3072},  {1024, 1024}, {4096, 1024}, {1024, 4096}, {1000, 300}};
  const std::vector<int64_t> rows = {1, 16, 128, 512, 700, 763, 764, 1024, 2048, 4096};
  std::vector<float> a(4096 * 4096, 0.01f), b(4096 * 4096, 0.01f), c(4096 * 4096), bias(4096, 0.0f);
  auto matmul = matmul_create_onednn();
  const int saved = threads_get();
  for (int threads : {1, 2}) {
    threads_set(threads);
    for (const Shape& s : shapes) {
      long largest = 0;
      for (int64_t m : rows) {
        for (bool with_bias : {true, false}) {  // the primitive path and the dnnl_sgemm path
          GemmArgs g;
          g.m = m, g.n = s.n, g.k = s.k;
          g.a = a.data(), g.lda = s.k;
          g.b = b.data(), g.ldb = s.n;
          g.c = c.data(), g.ldc = s.n;
          g.bias = with_bias ? bias.data() : nullptr;
          g.alpha = with_bias ? 1.0f : 0.5f;
          matmul->gemm(g, nullptr);  // first call: primitive creation, JIT
          const long before = g_live.load();
          g_peak = before;
          matmul->gemm(g, nullptr);
          const long inside = g_peak.load() - before;
          largest = std::max(largest, inside);
          EXPECT_LE(static_cast<std::size_t>(inside), onednn_gemm_internal_bytes_bound(m, s.n, s.k, threads))
              << "m " << m << " n " << s.n << " k " << s.k << " threads " << threads << " bias " << with_bias;
        }
      }
      std::printf("threads %d, n x k %lld x %lld: at most %.1f KB inside a call, bound at m = 4096 %.1f KB\n", threads,
                  static_cast<long long>(s.n), static_cast<long long>(s.k), largest / 1024.0,
                  onednn_gemm_internal_bytes_bound(4096, s.n, s.k, threads) / 1024.0);
    }
  }
  threads_set(saved);
}

#else
TEST(GemmInternalMemory, BoundHoldsForEncoderShapes) {
  GTEST_SKIP() << "needs its own malloc, which the sanitizers replace; runs in the release stage (label memory)";
}
#endif

TEST(GemmInternalMemory, BoundIsMonotoneInRows) {
  for (int threads : {1, 2, 8})
    for (int64_t n : {384, 1536, 3072})
      for (int64_t m = 1; m < 5000; m += 7)
        ASSERT_LE(leanembed::kernels::onednn_gemm_internal_bytes_bound(m, n, 384, threads),
                  leanembed::kernels::onednn_gemm_internal_bytes_bound(m + 7, n, 384, threads));
}
