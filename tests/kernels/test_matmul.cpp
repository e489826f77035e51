// Matrix products: the reference against hand-computed values, oneDNN against the reference over
// shapes, transposes, strided views, bias, alpha and beta; scratch of exactly scratch_bytes();
// argument errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/threads.h"
#include "leanembed/error.h"

namespace leanembed::kernels {
namespace {

std::vector<float> random_values(std::size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// Runs m.gemm with a heap buffer of exactly scratch_bytes() (none when 0), so an overrun shows
// under AddressSanitizer.
void run_with_exact_scratch(Matmul& m, const GemmArgs& g) {
  const std::size_t bytes = m.scratch_bytes(g.m, g.n, g.k, g.trans_a, g.trans_b);
  std::unique_ptr<unsigned char[]> scratch(bytes ? new unsigned char[bytes] : nullptr);
  m.gemm(g, scratch.get());
}

TEST(MatmulReference, HandComputed) {
  // A = [[1, 2], [3, 4]], B = [[5, 6], [7, 8]]: A.B = [[19, 22], [43, 50]].
  const float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, bias[2] = {100, 200};
  float c[4] = {1, 1, 1, 1};
  auto ref = matmul_create_reference();
  ref->gemm({.m = 2, .n = 2, .k = 2, .a = a, .lda = 2, .b = b, .ldb = 2, .c = c, .ldc = 2}, nullptr);
  EXPECT_EQ(c[0], 19);
  EXPECT_EQ(c[1], 22);
  EXPECT_EQ(c[2], 43);
  EXPECT_EQ(c[3], 50);

  // 0.5 * A^T.B + 2 * C + bias; A^T = [[1, 3], [2, 4]] -> A^T.B = [[26, 30], [38, 44]].
  ref->gemm({.m = 2, .n = 2, .k = 2, .a = a, .lda = 2, .trans_a = true, .b = b, .ldb = 2, .c = c, .ldc = 2,
             .alpha = 0.5f, .beta = 2.0f, .bias = bias},
            nullptr);
  EXPECT_EQ(c[0], 13 + 38 + 100);
  EXPECT_EQ(c[1], 15 + 44 + 200);
  EXPECT_EQ(c[2], 19 + 86 + 100);
  EXPECT_EQ(c[3], 22 + 100 + 200);

  // A.B^T: B^T = [[5, 7], [6, 8]] -> [[19, 23], [43, 53]].
  ref->gemm({.m = 2, .n = 2, .k = 2, .a = a, .lda = 2, .b = b, .ldb = 2, .trans_b = true, .c = c, .ldc = 2},
            nullptr);
  EXPECT_EQ(c[1], 23);
  EXPECT_EQ(c[3], 53);
}

struct Case {
  int64_t m, n, k;
  bool trans_a, trans_b;
  int64_t pad_a, pad_b, pad_c;  // extra elements per stored row
  bool bias;
  float alpha, beta;
};

std::string describe(const Case& c) {
  return "m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
         " ta=" + std::to_string(c.trans_a) + " tb=" + std::to_string(c.trans_b) + " pads=" + std::to_string(c.pad_a) +
         "," + std::to_string(c.pad_b) + "," + std::to_string(c.pad_c) + " bias=" + std::to_string(c.bias) +
         " alpha=" + std::to_string(c.alpha) + " beta=" + std::to_string(c.beta);
}

// Compares oneDNN with the reference for one case. Tolerance per element: 2e-5 times the same
// product taken over absolute values (the size a sum's rounding error scales with) + 1e-6.
void check_case(Matmul& fast, Matmul& ref, const Case& t, uint32_t seed) {
  const int64_t a_rows = t.trans_a ? t.k : t.m, a_cols = t.trans_a ? t.m : t.k;
  const int64_t b_rows = t.trans_b ? t.n : t.k, b_cols = t.trans_b ? t.k : t.n;
  const int64_t lda = a_cols + t.pad_a, ldb = b_cols + t.pad_b, ldc = t.n + t.pad_c;
  const std::vector<float> a = random_values(a_rows * lda, seed), b = random_values(b_rows * ldb, seed + 1);
  const std::vector<float> bias = random_values(t.n, seed + 2);
  std::vector<float> c0 = random_values(t.m * ldc, seed + 3);
  if (t.beta == 0.0f)  // C must not be read when beta == 0
    for (int64_t i = 0; i < t.m; ++i)
      for (int64_t j = 0; j < t.n; ++j) c0[i * ldc + j] = std::numeric_limits<float>::quiet_NaN();

  GemmArgs g{.m = t.m, .n = t.n, .k = t.k, .a = a.data(), .lda = lda, .trans_a = t.trans_a, .b = b.data(),
             .ldb = ldb, .trans_b = t.trans_b, .c = nullptr, .ldc = ldc, .alpha = t.alpha, .beta = t.beta,
             .bias = t.bias ? bias.data() : nullptr};
  std::vector<float> want = c0, got = c0;
  g.c = want.data();
  ref.gemm(g, nullptr);
  g.c = got.data();
  run_with_exact_scratch(fast, g);

  // The magnitude bound: |alpha| |A|.|B| + |beta| |C| + |bias|.
  std::vector<float> abs_a(a.size()), abs_b(b.size()), abs_bias(bias.size()), bound(c0.size());
  for (std::size_t i = 0; i < a.size(); ++i) abs_a[i] = std::fabs(a[i]);
  for (std::size_t i = 0; i < b.size(); ++i) abs_b[i] = std::fabs(b[i]);
  for (std::size_t i = 0; i < bias.size(); ++i) abs_bias[i] = std::fabs(bias[i]);
  for (std::size_t i = 0; i < c0.size(); ++i) bound[i] = t.beta == 0.0f ? 0.0f : std::fabs(c0[i]);
  GemmArgs ga = g;
  ga.a = abs_a.data(), ga.b = abs_b.data(), ga.c = bound.data(), ga.alpha = std::fabs(t.alpha),
  ga.beta = std::fabs(t.beta), ga.bias = t.bias ? abs_bias.data() : nullptr;
  ref.gemm(ga, nullptr);

  int failures = 0;
  for (int64_t i = 0; i < t.m; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const std::size_t at = i * ldc + j;
      if (j >= t.n) {
        if (!(got[at] == c0[at]) && failures++ < 5)
          ADD_FAILURE() << describe(t) << ": padding column " << j << " of row " << i << " was written";
        continue;
      }
      const double tol = 2e-5 * bound[at] + 1e-6;
      if (!(std::fabs(double(got[at]) - want[at]) <= tol) && failures++ < 5)
        ADD_FAILURE() << describe(t) << ": C[" << i << "," << j << "] = " << got[at] << ", reference " << want[at]
                      << " (tolerance " << tol << ")";
    }
}

TEST(MatmulOnednn, MatchesReferenceOverShapes) {
  auto fast = matmul_create_onednn();
  auto ref = matmul_create_reference();
  EXPECT_STREQ(fast->name(), "onednn");
  const int64_t ms[] = {1, 2, 7, 33, 65};
  const int64_t nks[][2] = {{1, 1}, {7, 5}, {32, 32}, {33, 31}, {384, 384}, {1536, 384}, {384, 1536}};
  uint32_t seed = 1;
  int cases = 0;
  for (int64_t m : ms)
    for (const auto& nk : nks)
      for (int variant = 0; variant < 4; ++variant) {
        // Cycle through transposes, paddings, bias, alpha and beta so each shape meets several.
        const int v = variant + static_cast<int>(m + nk[0]);
        Case t{m, nk[0], nk[1], (v & 1) != 0, (v & 2) != 0, (v % 3) * 3, (v % 5) * 2, v % 2,
               variant != 1, variant == 2 ? 0.17677669f : 1.0f, variant == 3 ? 1.0f : (variant == 2 ? 0.5f : 0.0f)};
        check_case(*fast, *ref, t, seed++);
        ++cases;
      }
  EXPECT_EQ(cases, 5 * 7 * 4);
}

// A and B as weights viewed in place in an ONNX file: starting 1, 2 or 3 bytes past a float
// boundary. The reference reads them with memcpy and must give exactly its aligned result (UBSan's
// alignment check would flag a misaligned float load); oneDNN must agree with it.
TEST(Matmul, MisalignedAAndBAreReadCorrectly) {
  auto fast = matmul_create_onednn();
  auto ref = matmul_create_reference();
  const int64_t m = 7, n = 384, k = 384;
  const std::vector<float> a = random_values(m * k, 11), b = random_values(k * n, 12), bias = random_values(n, 13);
  for (bool trans_b : {false, true})
    for (bool with_bias : {false, true}) {  // oneDNN: sgemm without bias, the matmul primitive with it
      GemmArgs g{.m = m, .n = n, .k = k, .a = a.data(), .lda = k, .b = b.data(), .ldb = trans_b ? k : n,
                 .trans_b = trans_b, .ldc = n, .bias = with_bias ? bias.data() : nullptr};
      std::vector<float> want(m * n);
      g.c = want.data();
      ref->gemm(g, nullptr);
      for (std::size_t shift : {1u, 2u, 3u}) {
        std::vector<unsigned char> a_bytes(a.size() * sizeof(float) + 8), b_bytes(b.size() * sizeof(float) + 8);
        // Start each copy `shift` bytes past a 4-byte boundary (vector storage is at least 8-aligned).
        std::memcpy(a_bytes.data() + shift, a.data(), a.size() * sizeof(float));
        std::memcpy(b_bytes.data() + shift, b.data(), b.size() * sizeof(float));
        GemmArgs mis = g;
        mis.a = reinterpret_cast<const float*>(a_bytes.data() + shift);
        mis.b = reinterpret_cast<const float*>(b_bytes.data() + shift);
        std::vector<float> by_ref(m * n), by_fast(m * n);
        mis.c = by_ref.data();
        ref->gemm(mis, nullptr);
        EXPECT_EQ(by_ref, want) << "reference, shift " << shift << " trans_b " << trans_b;
        mis.c = by_fast.data();
        run_with_exact_scratch(*fast, mis);
        double worst = 0;
        for (std::size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(double(by_fast[i]) - want[i]));
        EXPECT_LE(worst, 1e-4) << "oneDNN, shift " << shift << " trans_b " << trans_b << " bias " << with_bias;
      }
    }
}

TEST(MatmulOnednn, AlphaWithBiasDoesNotScaleTheBias) {
  // oneDNN itself would compute alpha * (A.B + bias); we promise alpha * A.B + bias.
  auto fast = matmul_create_onednn();
  auto ref = matmul_create_reference();
  for (float beta : {0.0f, 1.0f})
    check_case(*fast, *ref, {17, 40, 24, false, false, 0, 0, 0, true, 0.25f, beta}, 77);
}

TEST(MatmulOnednn, AttentionViews) {
  // Packed hidden states of 2 sequences (lengths 5 and 11, hidden 384 = 12 heads x 32). For each
  // sequence and head: scores = (1/sqrt 32) Q_h . K_h^T with Q, K strided views (ld 384), then
  // context_h = P . V_h written into a 32-column slice of a 384-wide output (ldc 384).
  const int64_t hidden = 384, head = 32, heads = 12, tokens = 16;
  const int64_t lengths[] = {5, 11};
  const std::vector<float> q = random_values(tokens * hidden, 5), k = random_values(tokens * hidden, 6),
                           v = random_values(tokens * hidden, 7);
  auto fast = matmul_create_onednn();
  auto ref = matmul_create_reference();
  std::vector<float> ctx_fast(tokens * hidden, 0.0f), ctx_ref(tokens * hidden, 0.0f);
  int64_t first = 0;
  for (int64_t len : lengths) {
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t offset = first * hidden + h * head;
      std::vector<float> s_fast(len * len), s_ref(len * len);
      GemmArgs scores{.m = len, .n = len, .k = head, .a = q.data() + offset, .lda = hidden, .b = k.data() + offset,
                      .ldb = hidden, .trans_b = true, .c = s_fast.data(), .ldc = len, .alpha = 0.17677669f};
      run_with_exact_scratch(*fast, scores);
      scores.c = s_ref.data();
      ref->gemm(scores, nullptr);
      for (int64_t i = 0; i < len * len; ++i) ASSERT_NEAR(s_fast[i], s_ref[i], 1e-5) << "scores " << i;

      GemmArgs context{.m = len, .n = head, .k = len, .a = s_ref.data(), .lda = len, .b = v.data() + offset,
                       .ldb = hidden, .c = ctx_fast.data() + offset, .ldc = hidden};
      run_with_exact_scratch(*fast, context);
      context.c = ctx_ref.data() + offset;
      ref->gemm(context, nullptr);
    }
    first += len;
  }
  for (int64_t i = 0; i < tokens * hidden; ++i) ASSERT_NEAR(ctx_fast[i], ctx_ref[i], 1e-5) << "context " << i;
}

TEST(MatmulOnednn, LargeProductAndBothThreadCounts) {
  auto fast = matmul_create_onednn();
  auto ref = matmul_create_reference();
  const int saved = threads_get();
  for (int threads : {1, 2}) {
    threads_set(threads);
    check_case(*fast, *ref, {300, 384, 384, false, false, 0, 0, 0, true, 1.0f, 0.0f}, 40 + threads);
  }
  threads_set(saved);
}

TEST(MatmulOnednn, ScratchBytesIsStableAndSmall) {
  auto fast = matmul_create_onednn();
  // Runtime-shaped primitives: one bound for every size of a given transpose pair.
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const std::size_t s = fast->scratch_bytes(1, 1, 1, ta, tb);
      EXPECT_EQ(fast->scratch_bytes(20000, 1536, 384, ta, tb), s);
      EXPECT_LT(s, std::size_t{1} << 20);
    }
  EXPECT_EQ(matmul_create_reference()->scratch_bytes(100, 100, 100, false, false), 0u);
}

TEST(Matmul, EmptyAndZeroK) {
  for (auto make : {matmul_create_reference, matmul_create_onednn}) {
    auto mm = make();
    float c[4] = {1, 2, 3, 4};
    const float bias[2] = {10, 20};
    mm->gemm({.m = 0, .n = 2, .k = 3, .c = nullptr}, nullptr);  // nothing to do, nothing read
    // k = 0: C = beta * C + bias.
    mm->gemm({.m = 2, .n = 2, .k = 0, .c = c, .ldc = 2, .beta = 2.0f, .bias = bias}, nullptr);
    EXPECT_EQ(c[0], 12) << mm->name();
    EXPECT_EQ(c[3], 28) << mm->name();
    mm->gemm({.m = 2, .n = 2, .k = 0, .c = c, .ldc = 2}, nullptr);
    EXPECT_EQ(c[0], 0) << mm->name();
  }
}

TEST(Matmul, BadArgumentsThrow) {
  const float a[16] = {}, b[16] = {};
  float c[16] = {};
  for (auto make : {matmul_create_reference, matmul_create_onednn}) {
    auto mm = make();
    auto expect_invalid = [&](GemmArgs g, const char* field) {
      try {
        mm->gemm(g, nullptr);
        ADD_FAILURE() << mm->name() << " accepted a bad " << field;
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
        EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
      }
    };
    const GemmArgs ok{.m = 2, .n = 2, .k = 2, .a = a, .lda = 2, .b = b, .ldb = 2, .c = c, .ldc = 2};
    GemmArgs g = ok;
    g.m = -1;
    expect_invalid(g, "sizes");
    g = ok, g.lda = 1;
    expect_invalid(g, "lda");
    g = ok, g.trans_b = true, g.ldb = 1;
    expect_invalid(g, "ldb");
    g = ok, g.ldc = 1;
    expect_invalid(g, "ldc");
    g = ok, g.c = nullptr;
    expect_invalid(g, "c is null");
    g = ok, g.b = nullptr;
    expect_invalid(g, "b is null");
  }
}

}  // namespace
}  // namespace leanembed::kernels
