// kernels_bench: speed of the compute kernels on this machine. Prints figures; asserts nothing.
//
//   kernels_bench [matmul|rows|attention|threshold|creation|idle|transpose|all] [--threads N]
//
// matmul     GFLOP/s of Matmul (oneDNN, runtime shapes) for the encoder's shapes, M = 16, 128, 512,
//            2048 packed tokens, with a fixed-shape oneDNN primitive (what a per-M cache would use)
//            and the reference beside it.
// rows       GB/s of each row kernel, each table this CPU runs.
// attention  microseconds per head of the attention loops (kernels/attention.h), each table, on the
//            calling thread, for sequence lengths around the corpus's (~23 tokens) and up to 128.
// threshold  one thread vs two for row kernels of growing size (where splitting starts to pay).
// creation   cost of creating oneDNN primitives: fixed shape per new M vs runtime shape once.
// layer      one MiniLM encoder layer's kernel calls under different thread policies.
// idle       CPU time burnt after kernel calls while the caller sleeps (OpenMP spin-waiting); run
//            it under different OMP_WAIT_POLICY / GOMP_SPINCOUNT settings to compare.
// transpose  the safetensors loader's transposition (kernels/transpose.h) of MiniLM-L6's 36 linear
//            weights [out, in] -> [in, out], on the calling thread, each table and conversion, with
//            memcpy of the same bytes beside it (the bound); source and destination already in memory.
// Times are the best of several repetitions (the machine is shared; the best is the least noisy).
#include <dnnl.hpp>
#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/attention.h"
#include "kernels/kernels.h"
#include "kernels/threads.h"
#include "kernels/transpose.h"

using namespace leanembed::kernels;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best time per call of fn over `trials` trials of enough calls to last ~min_seconds each.
double best_time(const std::function<void()>& fn, double min_seconds = 0.02, int trials = 5) {
  fn();  // warm up (first-call primitive creation, page faults)
  int reps = 1;
  for (;;) {
    double t0 = now_seconds();
    for (int i = 0; i < reps; ++i) fn();
    double t = now_seconds() - t0;
    if (t >= min_seconds || reps >= (1 << 20)) break;
    reps *= 2;
  }
  double best = 1e30;
  for (int trial = 0; trial < trials; ++trial) {
    double t0 = now_seconds();
    for (int i = 0; i < reps; ++i) fn();
    best = std::min(best, (now_seconds() - t0) / reps);
  }
  return best;
}

std::vector<float> random_values(std::size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// A fixed-shape oneDNN matmul (all sizes known at creation; oneDNN then picks brgemm on AVX-512)
// with bias, user scratchpad: what caching one primitive per M would run.
struct FixedShapePrimitive {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  dnnl::matmul primitive;
  dnnl::memory a, b, c, bias, scratch;
  std::vector<unsigned char> scratch_buffer;
  std::string impl;
  double create_seconds = 0;

  FixedShapePrimitive(int64_t m, int64_t n, int64_t k, float* pa, float* pb, float* pc, float* pbias) {
    using dnnl::memory;
    const memory::desc ad({m, k}, memory::data_type::f32, memory::dims{k, 1});
    const memory::desc bd({k, n}, memory::data_type::f32, memory::dims{n, 1});
    const memory::desc cd({m, n}, memory::data_type::f32, memory::dims{n, 1});
    const memory::desc biasd({1, n}, memory::data_type::f32, memory::dims{n, 1});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const double t0 = now_seconds();
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, bd, biasd, cd), attr, engine);
    primitive = dnnl::matmul(pd);
    create_seconds = now_seconds() - t0;
    impl = pd.impl_info_str();
    scratch_buffer.resize(pd.scratchpad_desc().get_size() + 1);
    a = memory(ad, engine, pa), b = memory(bd, engine, pb), c = memory(cd, engine, pc);
    bias = memory(biasd, engine, pbias), scratch = memory(pd.scratchpad_desc(), engine, scratch_buffer.data());
  }
  void run() {
    threads_apply_to_caller();
    primitive.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}, {DNNL_ARG_BIAS, bias},
                               {DNNL_ARG_SCRATCHPAD, scratch}});
    stream.wait();
  }
};

void bench_matmul() {
  std::printf("\n== matmul (threads %d): GFLOP/s, C[M,N] = A[M,K] . W[K,N] + bias ==\n", threads_get());
  std::printf("%6s %5s %5s | %12s %12s %10s | %s\n", "M", "N", "K", "ours(rt)", "fixed-shape", "reference",
              "fixed-shape impl");
  const int64_t ms[] = {16, 128, 512, 2048};
  const int64_t nks[][2] = {{384, 384}, {1536, 384}, {384, 1536}};
  auto fast = matmul_create_onednn();
  auto ref = matmul_create_reference();
  std::vector<float> a = random_values(2048 * 1536, 1), w = random_values(1536 * 1536, 2), bias = random_values(1536, 3);
  std::vector<float> c(2048 * 1536);
  std::vector<unsigned char> scratch(fast->scratch_bytes(2048, 1536, 1536, false, false) + 1);
  for (int64_t m : ms)
    for (const auto& nk : nks) {
      const int64_t n = nk[0], k = nk[1];
      const double flops = 2.0 * m * n * k;
      GemmArgs g{.m = m, .n = n, .k = k, .a = a.data(), .lda = k, .b = w.data(), .ldb = n, .c = c.data(), .ldc = n,
                 .bias = bias.data()};
      const double t_fast = best_time([&] { fast->gemm(g, scratch.data()); });
      FixedShapePrimitive fixed(m, n, k, a.data(), w.data(), c.data(), bias.data());
      const double t_fixed = best_time([&] { fixed.run(); });
      double t_ref = 0;
      if (m <= 16) t_ref = best_time([&] { ref->gemm(g, nullptr); }, 0.05, 1);
      std::printf("%6lld %5lld %5lld | %12.1f %12.1f %10s | %s\n", (long long)m, (long long)n, (long long)k,
                  flops / t_fast * 1e-9, flops / t_fixed * 1e-9,
                  t_ref > 0 ? std::to_string(int(flops / t_ref * 1e-9 * 10) / 10.0).substr(0, 5).c_str() : "-",
                  fixed.impl.c_str());
    }
  // Attention: per sequence and head, scores = alpha Q_h.K_h^T (k = 32, strided ld 384) and
  // context = P.V_h.
  std::printf("\n-- attention, one head (ld 384, head 32): GFLOP/s --\n%6s | %12s %12s\n", "seq", "Q.K^T", "P.V");
  std::vector<float> q = random_values(512 * 384, 4), kk = random_values(512 * 384, 5), p = random_values(512 * 512, 6);
  for (int64_t s : {16, 64, 128, 256, 512}) {
    const double flops = 2.0 * s * s * 32;
    GemmArgs scores{.m = s, .n = s, .k = 32, .a = q.data(), .lda = 384, .b = kk.data(), .ldb = 384, .trans_b = true,
                    .c = c.data(), .ldc = s, .alpha = 0.17677669f};
    GemmArgs context{.m = s, .n = 32, .k = s, .a = p.data(), .lda = s, .b = kk.data(), .ldb = 384, .c = c.data(),
                     .ldc = 384};
    const double t1 = best_time([&] { fast->gemm(scores, scratch.data()); });
    const double t2 = best_time([&] { fast->gemm(context, scratch.data()); });
    std::printf("%6lld | %12.1f %12.1f\n", (long long)s, flops / t1 * 1e-9, flops / t2 * 1e-9);
  }
}

void bench_creation() {
  std::printf("\n== oneDNN primitive creation ==\n");
  std::vector<float> a = random_values(2100 * 1536, 1), w = random_values(1536 * 1536, 2), bias = random_values(1536, 3);
  std::vector<float> c(2100 * 1536);
  std::printf("fixed shape, one new M per batch (M = 1000 + i; oneDNN's own cache misses each time):\n");
  for (const auto& nk : {std::pair<int64_t, int64_t>{384, 384}, {1536, 384}, {384, 1536}}) {
    double total = 0, worst = 0;
    const int count = 20;
    for (int i = 0; i < count; ++i) {
      FixedShapePrimitive fixed(1000 + i, nk.first, nk.second, a.data(), w.data(), c.data(), bias.data());
      total += fixed.create_seconds, worst = std::max(worst, fixed.create_seconds);
    }
    std::printf("  N=%4lld K=%4lld: mean %.1f us, worst %.1f us\n", (long long)nk.first, (long long)nk.second,
                total / count * 1e6, worst * 1e6);
  }
  std::printf("runtime shape (ours): first gemm of a fresh Matmul vs later ones (M = 128, N = K = 384):\n");
  for (int i = 0; i < 3; ++i) {
    auto fast = matmul_create_onednn();
    GemmArgs g{.m = 128, .n = 384, .k = 384, .a = a.data(), .lda = 384, .b = w.data(), .ldb = 384, .c = c.data(),
               .ldc = 384, .bias = bias.data()};
    double t0 = now_seconds();
    fast->gemm(g, nullptr);
    double first = now_seconds() - t0;
    double later = best_time([&] { fast->gemm(g, nullptr); }, 0.01, 3);
    std::printf("  Matmul #%d: first call %.1f us, later calls %.1f us\n", i + 1, first * 1e6, later * 1e6);
  }
}

struct RowCase {
  const char* name;
  int64_t rows, cols;
  double bytes_per_element;  // bytes read + written per element
  bool refill;               // the kernel changes its input: restore it before each call
  std::function<void(const RowKernels&, float*, float*)> run;
};

void bench_rows() {
  std::printf("\n== row kernels (threads %d): GB/s (bytes read + written) per table ==\n", threads_get());
  const RowKernels& ref = row_kernels_reference();
  std::vector<const RowKernels*> fast;  // the tables this CPU runs besides the reference
  for (const char* isa : {"avx2", "avx512"})
    if (kernels_force_isa(isa) && row_kernels().isa == std::string(isa)) fast.push_back(&row_kernels());
  kernels_force_isa("auto");
  const int64_t max_elems = 2048 * 1536;
  std::vector<float> x0 = random_values(max_elems, 7), resid = random_values(max_elems, 8), bias = random_values(1536, 9);
  std::vector<float> gamma(1536, 1.0f), beta(1536, 0.0f), mask(1536, 0.0f), x(max_elems), y(max_elems);
  std::vector<RowCase> cases;
  for (int64_t rows : {128, 2048}) {
    cases.push_back({"layer_norm+res+bias", rows, 384, 16, false, [=, &resid, &bias, &gamma, &beta](const RowKernels& k, float* in, float* out) {
                       k.layer_norm(rows, 384, in, resid.data(), bias.data(), gamma.data(), beta.data(), 1e-12f, out);
                     }});
    cases.push_back({"bias_gelu_erf", rows, 1536, 8, true, [=, &bias](const RowKernels& k, float* in, float*) {
                       k.bias_gelu_erf(rows, 1536, in, 1536, bias.data());
                     }});
    cases.push_back({"bias_add", rows, 384, 8, false, [=, &bias](const RowKernels& k, float* in, float*) {
                       k.bias_add(rows, 384, in, 384, bias.data());
                     }});
  }
  // Attention probabilities: 12 heads x seq rows of seq columns.
  for (int64_t seq : {128, 512}) {
    const int64_t rows = 12 * seq;
    cases.push_back({"softmax(mask)", rows, seq, 8, true, [=, &mask](const RowKernels& k, float* in, float*) {
                       k.softmax(rows, seq, in, seq, 0.17677669f, mask.data());
                     }});
  }
  std::printf("%-20s %6s %5s | %9s", "kernel", "rows", "cols", "ref");
  for (const RowKernels* k : fast) std::printf(" %9s", k->isa);
  std::printf(" | speed-up over ref\n");
  for (const RowCase& rc : cases) {
    const double bytes = rc.bytes_per_element * rc.rows * rc.cols;
    // GELU and softmax would drift to a fixed point if applied again and again (GELU's fast path
    // for small values would then flatter it), so their input is restored before each call and
    // the copy's time subtracted.
    auto timed = [&](const RowKernels& k) {
      return best_time([&] {
        if (rc.refill) std::memcpy(x.data(), x0.data(), rc.rows * rc.cols * sizeof(float));
        rc.run(k, x.data(), y.data());
      }, 0.05, 7);
    };
    std::memcpy(x.data(), x0.data(), rc.rows * rc.cols * sizeof(float));
    const double copy =
        rc.refill ? best_time([&] { std::memcpy(x.data(), x0.data(), rc.rows * rc.cols * sizeof(float)); }, 0.05, 7) : 0;
    const double t_ref = timed(ref) - copy;
    std::vector<double> t_fast;
    for (const RowKernels* k : fast) t_fast.push_back(timed(*k) - copy);
    std::printf("%-20s %6lld %5lld | %9.2f", rc.name, (long long)rc.rows, (long long)rc.cols, bytes / t_ref * 1e-9);
    for (double t : t_fast) std::printf(" %9.2f", bytes / t * 1e-9);
    std::printf(" |");
    for (double t : t_fast) std::printf(" %.1fx", t_ref / t);
    std::printf("\n");
  }
}

void bench_attention() {
  std::printf("\n== attention of one head (d 32, rows of the encoder's qkv buffer: ld 1152), us per head ==\n");
  std::vector<const AttentionKernels*> tables;
  for (const char* isa : {"ref", "avx2", "avx512"})
    if (kernels_force_isa(isa) && attention_kernels().isa == std::string(isa)) tables.push_back(&attention_kernels());
  kernels_force_isa("auto");
  const RowKernels& rows = row_kernels();  // the softmax the encoder passes
  const int64_t d = 32, ld = 1152, max_len = 128;
  std::vector<float> qkv = random_values(max_len * ld, 12), ctx(max_len * 384);
  std::vector<float> scratch(attention_scratch_floats(max_len, d));
  std::printf("%6s |", "L");
  for (const AttentionKernels* t : tables) std::printf(" %9s", t->isa);
  std::printf("   (softmax: %s table)\n", rows.isa);
  for (int64_t L : {8, 16, 23, 32, 64, 128}) {
    std::printf("%6lld |", (long long)L);
    for (const AttentionKernels* t : tables) {
      const double s = best_time([&] {
        t->head(L, d, qkv.data(), qkv.data() + 384, qkv.data() + 768, ld, 0.17677669f, ctx.data(), 384,
                scratch.data(), rows);
      });
      std::printf(" %9.2f", s * 1e6);
    }
    std::printf("\n");
  }
}

void bench_threshold() {
  kernels_force_isa("auto");
  std::printf("\n== row kernels (%s table), 1 thread vs split over 2 (default split from %lld elements) ==\n",
              row_kernels().isa, (long long)kRowParallelMinElements);
  std::printf("%8s | %10s %10s | %10s %10s | %10s %10s\n", "elements", "LN 1thr us", "LN 2thr us", "SM 1thr us",
              "SM 2thr us", "GELU 1thr", "GELU 2thr");
  const RowKernels& k = row_kernels();
  std::vector<float> x = random_values(1 << 20, 1), y(1 << 20), gamma(384, 1.0f), beta(384, 0.0f);
  const int saved = threads_get();
  row_parallel_set_min_elements(0);  // split every call with more than one row
  for (int64_t rows : {4, 8, 16, 32, 64, 128, 256, 512}) {
    const int64_t cols = 384;
    double t[2][3];
    for (int th = 1; th <= 2; ++th) {
      threads_set(th);
      t[th - 1][0] = best_time([&] { k.layer_norm(rows, cols, x.data(), nullptr, nullptr, gamma.data(), beta.data(), 1e-5f, y.data()); });
      t[th - 1][1] = best_time([&] { k.softmax(rows, cols, y.data(), cols, 1.0f, nullptr); });
      t[th - 1][2] = best_time([&] { k.bias_gelu_erf(rows, cols, y.data(), cols, nullptr); });
    }
    std::printf("%8lld | %10.2f %10.2f | %10.2f %10.2f | %10.2f %10.2f\n", (long long)(rows * cols), t[0][0] * 1e6,
                t[1][0] * 1e6, t[0][1] * 1e6, t[1][1] * 1e6, t[0][2] * 1e6, t[1][2] * 1e6);
  }
  row_parallel_set_min_elements(-1);
  threads_set(saved);
}

// One MiniLM encoder layer over a packed batch of M tokens in sequences of length L: the kernel
// calls the fast path makes (QKV, per-(sequence, head) attention, output projection, LayerNorm,
// FFN with GELU, LayerNorm), timed under different thread policies.
void bench_layer() {
  const int64_t hidden = 384, heads = 12, head = 32, ffn = 1536;
  std::printf("\n== one encoder layer (hidden 384, 12 heads, FFN 1536): ms per layer, mean / best of runs ==\n");
  std::printf("%6s %5s | %16s | %16s | %16s | %16s\n", "M", "L", "1 thread", "2 thr, defaults", "2 thr, always", "2 thr, gemm-only");
  auto mm = matmul_create_onednn();
  kernels_force_isa("auto");
  const RowKernels& rk = row_kernels();
  const std::vector<float> wq = random_values(hidden * hidden, 1), wk = random_values(hidden * hidden, 2),
                           wv = random_values(hidden * hidden, 3), wo = random_values(hidden * hidden, 4),
                           w1 = random_values(hidden * ffn, 5), w2 = random_values(ffn * hidden, 6),
                           bias = random_values(ffn, 7);
  const std::vector<float> gamma(hidden, 1.0f), beta(hidden, 0.0f);
  const int saved = threads_get();
  for (auto [m, len] : {std::pair<int64_t, int64_t>{16, 16}, {128, 16}, {512, 64}, {2048, 128}}) {
    std::vector<float> x = random_values(m * hidden, 8), q(m * hidden), k(m * hidden), v(m * hidden), ctx(m * hidden),
                       o(m * hidden), h(m * ffn), scores(len * len), mask(len, 0.0f);
    auto layer = [&] {
      auto linear = [&](const std::vector<float>& in, int64_t kk, const std::vector<float>& w, int64_t n, std::vector<float>& out) {
        mm->gemm({.m = m, .n = n, .k = kk, .a = in.data(), .lda = kk, .b = w.data(), .ldb = n, .c = out.data(), .ldc = n,
                  .bias = bias.data()},
                 nullptr);
      };
      linear(x, hidden, wq, hidden, q);
      linear(x, hidden, wk, hidden, k);
      linear(x, hidden, wv, hidden, v);
      for (int64_t first = 0; first < m; first += len)
        for (int64_t hh = 0; hh < heads; ++hh) {
          const int64_t off = first * hidden + hh * head;
          mm->gemm({.m = len, .n = len, .k = head, .a = q.data() + off, .lda = hidden, .b = k.data() + off, .ldb = hidden,
                    .trans_b = true, .c = scores.data(), .ldc = len, .alpha = 0.17677669f},
                   nullptr);
          rk.softmax(len, len, scores.data(), len, 1.0f, mask.data());
          mm->gemm({.m = len, .n = head, .k = len, .a = scores.data(), .lda = len, .b = v.data() + off, .ldb = hidden,
                    .c = ctx.data() + off, .ldc = hidden},
                   nullptr);
        }
      linear(ctx, hidden, wo, hidden, o);
      rk.layer_norm(m, hidden, o.data(), x.data(), nullptr, gamma.data(), beta.data(), 1e-12f, o.data());
      linear(o, hidden, w1, ffn, h);
      rk.bias_gelu_erf(m, ffn, h.data(), ffn, nullptr);
      mm->gemm({.m = m, .n = hidden, .k = ffn, .a = h.data(), .lda = ffn, .b = w2.data(), .ldb = hidden, .c = ctx.data(),
                .ldc = hidden, .bias = bias.data()},
               nullptr);
      rk.layer_norm(m, hidden, ctx.data(), o.data(), nullptr, gamma.data(), beta.data(), 1e-12f, x.data());
    };
    std::printf("%6lld %5lld |", (long long)m, (long long)len);
    // Policies: 1 thread; 2 threads with the default thresholds; 2 threads splitting everything;
    // 2 threads for gemms (default threshold) with row kernels never split.
    for (int policy = 0; policy < 4; ++policy) {
      threads_set(policy == 0 ? 1 : 2);
      gemm_parallel_set_min_macs(policy == 2 ? 0 : -1);
      row_parallel_set_min_elements(policy == 2 ? 0 : policy == 3 ? INT64_MAX : -1);
      layer();
      const int runs = m >= 2048 ? 5 : 30;
      double best = 1e30, total = 0;
      for (int r = 0; r < runs; ++r) {
        const double t0 = now_seconds();
        layer();
        const double t = now_seconds() - t0;
        best = std::min(best, t), total += t;
      }
      std::printf(" %7.3f / %6.3f |", total / runs * 1e3, best * 1e3);
    }
    std::printf("\n");
  }
  gemm_parallel_set_min_macs(-1);
  row_parallel_set_min_elements(-1);
  threads_set(saved);
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

void bench_idle() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  std::printf("\n== idle spin: OMP_WAIT_POLICY=%s GOMP_SPINCOUNT=%s, threads %d ==\n", policy ? policy : "(unset)",
              spin ? spin : "(unset)", threads_get());
  auto fast = matmul_create_onednn();
  std::vector<float> a = random_values(128 * 384, 1), w = random_values(384 * 384, 2), c(128 * 384);
  GemmArgs g{.m = 128, .n = 384, .k = 384, .a = a.data(), .lda = 384, .b = w.data(), .ldb = 384, .c = c.data(), .ldc = 384};
  const int calls = 50;
  const double sleep_ms = 20;
  fast->gemm(g, nullptr);
  // Busy part alone: the calls back to back.
  double cpu0 = cpu_seconds(), t0 = now_seconds();
  for (int i = 0; i < calls; ++i) fast->gemm(g, nullptr);
  const double busy_wall = now_seconds() - t0, busy_cpu = cpu_seconds() - cpu0;
  // Same calls with a sleep after each.
  cpu0 = cpu_seconds(), t0 = now_seconds();
  for (int i = 0; i < calls; ++i) {
    fast->gemm(g, nullptr);
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(sleep_ms));
  }
  const double wall = now_seconds() - t0, cpu = cpu_seconds() - cpu0;
  std::printf("%d gemm calls back to back: wall %.1f ms, cpu %.1f ms\n", calls, busy_wall * 1e3, busy_cpu * 1e3);
  std::printf("%d gemm calls, %.0f ms sleep after each: wall %.1f ms, cpu %.1f ms -> %.2f ms of cpu per call "
              "beyond the work (spinning)\n",
              calls, sleep_ms, wall * 1e3, cpu * 1e3, (cpu - busy_cpu) / calls * 1e3);
}

void bench_transpose() {
  std::printf("\n== transpose (1 thread): MiniLM-L6's 36 linear weights [out, in] -> [in, out], ms (best of 7) ==\n");
  struct Shape { int64_t out, in; };
  std::vector<Shape> shapes;
  for (int layer = 0; layer < 6; ++layer) {
    for (int i = 0; i < 4; ++i) shapes.push_back({384, 384});  // query, key, value, attention output
    shapes.push_back({1536, 384});                             // intermediate
    shapes.push_back({384, 1536});                             // output
  }
  std::size_t elements = 0;
  for (const Shape& sh : shapes) elements += static_cast<std::size_t>(sh.out * sh.in);
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  const std::size_t bytes = (elements * 4 + 64 + kHuge - 1) / kHuge * kHuge;
  auto* src_block = static_cast<std::byte*>(std::aligned_alloc(kHuge, bytes));
  auto* dst_block = static_cast<std::byte*>(std::aligned_alloc(kHuge, bytes));
  madvise(dst_block, bytes, MADV_HUGEPAGE);  // as the loader's block
  std::mt19937 gen(5);
  for (std::size_t i = 0; i < bytes; ++i) src_block[i] = static_cast<std::byte>(gen() & 0xFF);
  std::memset(dst_block, 0, bytes);
  const std::byte* src = src_block + 4;  // tensors in a file need not be 64-byte aligned
  enum Kind { copy32, copy16, bf16 };
  auto run = [&](const TransposeKernels* k, Kind kind) {
    const std::size_t in_size = kind == copy32 ? 4 : 2, out_size = kind == copy16 ? 2 : 4;
    double best = 1e30;
    for (int rep = 0; rep < 7; ++rep) {
      const double t0 = now_seconds();
      std::size_t at = 0;
      for (const Shape& sh : shapes) {
        void* d = dst_block + at * out_size;
        if (!k) std::memcpy(d, src + at * in_size, static_cast<std::size_t>(sh.out * sh.in) * in_size);
        else if (kind == copy32) k->copy32(src + at * in_size, sh.out, sh.in, static_cast<uint32_t*>(d));
        else if (kind == copy16) k->copy16(src + at * in_size, sh.out, sh.in, static_cast<uint16_t*>(d));
        else k->bf16_to_f32(src + at * in_size, sh.out, sh.in, static_cast<uint32_t*>(d));
        at += static_cast<std::size_t>(sh.out * sh.in);
      }
      best = std::min(best, now_seconds() - t0);
    }
    const double moved = static_cast<double>(elements) * static_cast<double>(in_size + (k ? out_size : in_size));
    return std::pair<double, double>{best * 1e3, moved / best / 1e9};
  };
  std::vector<const TransposeKernels*> tables{&transpose_kernels_reference()};
  if (kernels_force_isa("avx2")) tables.push_back(&transpose_kernels());
  kernels_force_isa("auto");
  std::printf("%-12s %-8s %9s %14s\n", "conversion", "table", "ms", "GB/s (r + w)");
  for (Kind kind : {copy32, copy16, bf16}) {
    const char* name = kind == copy32 ? "copy32" : kind == copy16 ? "copy16" : "bf16_to_f32";
    for (const TransposeKernels* k : tables) {
      const auto [ms, gbs] = run(k, kind);
      std::printf("%-12s %-8s %9.2f %14.1f\n", name, k->isa, ms, gbs);
    }
    if (kind != bf16) {
      const auto [ms, gbs] = run(nullptr, kind);
      std::printf("%-12s %-8s %9.2f %14.1f\n", name, "memcpy", ms, gbs);
    }
  }
  std::free(src_block);
  std::free(dst_block);
}

}  // namespace

int main(int argc, char** argv) {
  std::string what = "all";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads_set(std::atoi(argv[++i]));
    else what = argv[i];
  }
  try {
    if (what == "matmul" || what == "all") bench_matmul();
    if (what == "rows" || what == "all") bench_rows();
    if (what == "attention" || what == "all") bench_attention();
    if (what == "threshold" || what == "all") bench_threshold();
    if (what == "creation" || what == "all") bench_creation();
    if (what == "idle" || what == "all") bench_idle();
    if (what == "layer" || what == "all") bench_layer();
    if (what == "transpose" || what == "all") bench_transpose();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernels_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
