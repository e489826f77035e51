// The oneDNN-backed matrix product (oneDNN 2.6).
//
// Two oneDNN entry points, both running oneDNN's jit sgemm:
//   * products with a bias and alpha == 1 (the encoder's linear layers) use a matmul primitive
//     with the bias fused and a user scratchpad;
//   * the rest (attention: no bias, alpha = 1/sqrt(head size); or alpha != 1 with a bias) use
//     dnnl_sgemm, whose semantics are exactly alpha * op(A).op(B) + beta * C, then the row kernel
//     bias_add if there is a bias. A primitive call costs ~1.2 us of set-up (memory objects, the
//     argument map) against ~0.1 us for dnnl_sgemm, which matters for per-head attention products
//     of a few microseconds.
// (oneDNN's primitive computes alpha * (A.B + bias) + beta * C, which is why alpha != 1 with a
// bias cannot use it as is.)
//
// The primitive's shapes are runtime: every dimension and stride of its memory descriptors is
// DNNL_RUNTIME_DIM_VAL and the real values come with each call, so one primitive serves every M
// (the packed-token count, different in each batch) and every view; it is created once per
// (trans_a, trans_b, beta, thread count). Measured on the development box (2 cores, AVX-512;
// `kernels_bench matmul|creation`, README.md): a fixed-shape primitive (oneDNN then picks brgemm)
// costs 55-280 us to create for every new M and runs within +-10% of the runtime-shaped one from
// M = 128 up (20-35% ahead at M = 16, behind at M = 2048); the runtime-shaped one costs 1-20 us
// to create, once.
//
// Memory: the runtime-shaped primitive books no scratchpad (scratch_bytes() asks its primitive
// descriptor and gets 0), but oneDNN's jit sgemm mallocs its packing buffers inside each call
// (measured: 148 KB, or 3.6 MB once M >= ~2048 with N = 1536; freed before the call returns) —
// the same for dnnl_sgemm. Only fixed-shape primitives keep all scratch in the caller's buffer.
//
// The bound on those internal buffers (onednn_gemm_internal_bytes_bound). oneDNN's driver works
// column-major, so its "A" is our B (the weights, n columns) and its "m" is our n. It either runs a
// no-copy kernel (a per-thread workspace of at most one 48-row x 384-deep panel: measured 72-76 KB
// per thread) or copies: per thread, a kb-deep panel of up to bm = 9984 columns of B
// (4 * round_up(n, 48) * kb bytes; shared by the threads or split between them in most
// partitions) and a panel of at most bn = 384 rows of A (4 * 384 * kb), kb <= 384 (bk; AVX2 uses
// less). The bound takes T full copies of the B panel (every partition fits under it). The copy
// path is not taken while 1/n + 1/m >= t (t = 0.00196 with AVX-512, 0.0038 with AVX2 — oneDNN's
// "force no-copy" threshold) unless, with AVX-512, n or k is a multiple of 1024 (measured: copies
// from m = 104 then), so for MiniLM's n = 384 products it never copies and for n = 1536 (the FFN's
// first product) only from m = 764. Measured with a counting malloc (tests/embed/
// test_memory_gemm_bound.cpp; AVX-512 box, and `DNNL_MAX_CPU_ISA=AVX2` for AVX2; 1 and 2 threads;
// m 1..4096; n x k in 384x384, 1536x384, 384x1536, 768x768, 3072x768, 768x3072, 1024x1024,
// 4096x1024, 1024x4096, 1000x300), largest inside one call vs the bound, 2 threads:
//   n x k      AVX-512            AVX2
//   384x384    0.15 / 0.19 MB     1.2 / 2.5 MB
//   1536x384   3.4 / 5.8 MB       1.7 / 5.8 MB   (MiniLM's FFN in; copies from m = 764 / 512)
//   3072x768   5.7 / 10.3 MB      2.9 / 10.3 MB  (BERT-base's FFN in)
// With 1 thread on AVX-512 the bound is within 5% of the measured (its one copy is the real one);
// AVX2 packs half as deep (kb 192), so there it is ~2x.
// The bound is for oneDNN 2.6 (Debian 12's); another version needs re-measuring.
#include <dnnl.h>
#include <dnnl.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/gemm_args.h"
#include "kernels/kernels.h"
#include "kernels/threads.h"
#include "leanembed/error.h"

namespace leanembed::kernels {
namespace {

using dnnl::memory;
constexpr memory::dim kRuntime = DNNL_RUNTIME_DIM_VAL;

// What a cached primitive is specialised on (the rest is runtime). The primitive always has a
// bias and alpha == 1.
struct Kind {
  bool trans_a = false, trans_b = false;
  float beta = 0.0f;
  int threads = 1;
  bool operator==(const Kind&) const = default;
};

// Row-major 2-D descriptor; strides {ld, 1}, or {1, ld} for an operand stored transposed.
memory::desc matrix_desc(memory::dim rows, memory::dim cols, memory::dim ld, bool transposed) {
  return memory::desc({rows, cols}, memory::data_type::f32,
                      transposed ? memory::dims{1, ld} : memory::dims{ld, 1});
}

dnnl::matmul::primitive_desc make_primitive_desc(const dnnl::engine& engine, const Kind& kind) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (kind.beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(kind.beta);
    attr.set_post_ops(ops);
  }
  const memory::desc a = matrix_desc(kRuntime, kRuntime, kRuntime, kind.trans_a);
  const memory::desc b = matrix_desc(kRuntime, kRuntime, kRuntime, kind.trans_b);
  const memory::desc c = matrix_desc(kRuntime, kRuntime, kRuntime, false);
  const memory::desc bias = matrix_desc(1, kRuntime, kRuntime, false);
  return {dnnl::matmul::desc(a, b, bias, c), attr, engine};
}

std::string describe(const Kind& kind) {
  return std::string("trans_a=") + (kind.trans_a ? "1" : "0") + " trans_b=" + (kind.trans_b ? "1" : "0") +
         " bias=1 beta=" + std::to_string(kind.beta);
}

class OnednnMatmul final : public Matmul {
 public:
  // At most this many primitives are kept; the least recently used one is dropped past it. The
  // encoder needs one (weights with bias, beta 0); each holds a few KB.
  static constexpr std::size_t kCacheCapacity = 16;

  OnednnMatmul() try : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
    cache_.reserve(kCacheCapacity);
  } catch (const dnnl::error& e) {
    throw Error(ErrorCode::runtime, std::string("oneDNN: cannot create a CPU engine and stream: ") + e.what());
  }

  const char* name() const override { return "onednn"; }

  // Independent of m, n, k (the primitive is runtime-shaped): the largest scratchpad of the
  // primitives with these transposes (beta 0 or not, one thread or threads_get()). dnnl_sgemm
  // takes no scratch.
  std::size_t scratch_bytes(int64_t, int64_t, int64_t, bool trans_a, bool trans_b) const override {
    const int threads = threads_get();
    // Kept per thread count: runs alternate between the setting and one thread (ThreadLimit).
    ScratchBound* slot = nullptr;
    for (ScratchBound& b : scratch_bounds_[trans_a][trans_b]) {
      if (b.threads == threads) return b.bytes;
      if (!slot || b.last_use < slot->last_use) slot = &b;  // a free one (0), else the oldest
    }
    std::size_t most = 0;
    for (int team : {1, threads})  // small products run on one thread (gemm_threads)
      for (float beta : {0.0f, 1.0f}) {
        const Kind kind{trans_a, trans_b, beta, team};
        most = std::max(most, create_or_throw(kind).scratchpad_desc().get_size());
      }
    *slot = {threads, most, ++bound_clock_};
    return most;
  }

  void gemm(const GemmArgs& g, void* scratch) override {
    gemm_args_check(g, "oneDNN gemm");
    if (g.m == 0 || g.n == 0) return;
    if (g.k == 0) return gemm_empty_k(g);

    const int threads = gemm_threads(g.m, g.n, g.k);
    threads_apply_to_caller(threads);
    if (!g.bias || g.alpha != 1.0f) return gemm_sgemm(g);

    const Kind kind{g.trans_a, g.trans_b, g.beta, threads};
    Entry& entry = lookup(kind);
    const std::size_t needed = entry.scratch_bytes;
    if (needed > scratch_bytes(g.m, g.n, g.k, g.trans_a, g.trans_b))
      throw Error(ErrorCode::runtime, "oneDNN gemm: the primitive for " + describe(kind) + " wants " +
                                          std::to_string(needed) + " bytes of scratch, more than scratch_bytes() promised");
    if (needed > 0 && !scratch)
      throw Error(ErrorCode::invalid_argument,
                  "oneDNN gemm: scratch is null but this product needs " + std::to_string(needed) + " bytes");

    try {
      // Descriptors with the real sizes; the memory objects wrap the caller's buffers (no copies).
      const memory a(matrix_desc(g.m, g.k, g.lda, g.trans_a), engine_, const_cast<float*>(g.a));
      const memory b(matrix_desc(g.k, g.n, g.ldb, g.trans_b), engine_, const_cast<float*>(g.b));
      const memory c(matrix_desc(g.m, g.n, g.ldc, false), engine_, g.c);
      const memory bias(matrix_desc(1, g.n, g.n, false), engine_, const_cast<float*>(g.bias));
      std::unordered_map<int, memory> args{
          {DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}, {DNNL_ARG_BIAS, bias}};
      if (needed > 0) args.emplace(DNNL_ARG_SCRATCHPAD, memory(entry.scratch_desc, engine_, scratch));
      entry.primitive.execute(stream_, args);
      stream_.wait();
    } catch (const dnnl::error& e) {
      throw Error(ErrorCode::runtime, "oneDNN gemm " + std::to_string(g.m) + "x" + std::to_string(g.n) + "x" +
                                          std::to_string(g.k) + " (" + describe(kind) + ") failed: " + e.what());
    }
  }

 private:
  // C = alpha op(A).op(B) + beta C through dnnl_sgemm (row-major; C is not read when beta == 0),
  // then + bias.
  static void gemm_sgemm(const GemmArgs& g) {
    const dnnl_status_t status = dnnl_sgemm(g.trans_a ? 'T' : 'N', g.trans_b ? 'T' : 'N', g.m, g.n, g.k, g.alpha, g.a,
                                            g.lda, g.b, g.ldb, g.beta, g.c, g.ldc);
    if (status != dnnl_success)
      throw Error(ErrorCode::runtime, "oneDNN dnnl_sgemm " + std::to_string(g.m) + "x" + std::to_string(g.n) + "x" +
                                          std::to_string(g.k) + " failed with status " + std::to_string(int(status)));
    if (g.bias) row_kernels().bias_add(g.m, g.n, g.c, g.ldc, g.bias);
  }

  // scratch_bytes() per (trans_a, trans_b), for the thread count it was computed with (0 = not yet).
  struct ScratchBound {
    int threads = 0;
    std::size_t bytes = 0;
    uint64_t last_use = 0;  // when it was computed (bound_clock_)
  };
  static constexpr int kBoundsPerTranspose = 4;  // thread counts remembered

  struct Entry {
    Kind kind;
    dnnl::matmul primitive;
    memory::desc scratch_desc;
    std::size_t scratch_bytes = 0;
    uint64_t last_use = 0;
  };

  dnnl::matmul::primitive_desc create_or_throw(const Kind& kind) const {
    try {
      return make_primitive_desc(engine_, kind);
    } catch (const dnnl::error& e) {
      throw Error(ErrorCode::unsupported,
                  "oneDNN: no f32 matmul implementation for " + describe(kind) + ": " + e.what());
    }
  }

  // The cached primitive for `kind`, created on a miss (evicting the least recently used entry when
  // the cache is full).
  Entry& lookup(const Kind& kind) {
    ++clock_;
    for (Entry& e : cache_)
      if (e.kind == kind) {
        e.last_use = clock_;
        return e;
      }
    dnnl::matmul::primitive_desc pd = create_or_throw(kind);
    Entry entry{kind, dnnl::matmul(), pd.scratchpad_desc(), pd.scratchpad_desc().get_size(), clock_};
    try {
      entry.primitive = dnnl::matmul(pd);
    } catch (const dnnl::error& e) {
      throw Error(ErrorCode::runtime, "oneDNN: cannot create the matmul primitive for " + describe(kind) + ": " + e.what());
    }
    if (cache_.size() >= kCacheCapacity) {
      auto oldest = std::min_element(cache_.begin(), cache_.end(),
                                     [](const Entry& x, const Entry& y) { return x.last_use < y.last_use; });
      *oldest = std::move(entry);
      return *oldest;
    }
    cache_.push_back(std::move(entry));
    return cache_.back();
  }

  dnnl::engine engine_;
  dnnl::stream stream_;
  std::vector<Entry> cache_;  // <= kCacheCapacity entries (reserved up front)
  uint64_t clock_ = 0;
  mutable ScratchBound scratch_bounds_[2][2][kBoundsPerTranspose];
  mutable uint64_t bound_clock_ = 0;
};

}  // namespace

std::unique_ptr<Matmul> matmul_create_onednn() { return std::make_unique<OnednnMatmul>(); }

std::size_t onednn_gemm_internal_bytes_bound(int64_t max_m, int64_t n, int64_t k, int threads) {
  auto round_up = [](int64_t x, int64_t to) { return (x + to - 1) / to * to; };
  static const bool avx512 = [] {
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto core = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
    return (isa & core) == core;
  }();
  const int64_t t = std::max(threads, 1);
  const int64_t workspace = t * (96 << 10);  // the no-copy kernels' per-thread panel (72-76 KB measured)
  if (max_m <= 1 || n <= 1 || k <= 0) return static_cast<std::size_t>(workspace);  // gemv / nothing
  const double no_copy_threshold = avx512 ? 0.00196 : 0.0038;
  const bool always_may_copy = avx512 && (n % 1024 == 0 || k % 1024 == 0);
  const bool may_copy = always_may_copy || 1.0 / double(n) + 1.0 / double(max_m) < no_copy_threshold;
  if (!may_copy) return static_cast<std::size_t>(workspace);
  const int64_t kb = round_up(std::clamp<int64_t>(k, 128, 384), 16);
  const int64_t b_panel = 4 * round_up(std::min<int64_t>(n, 9984), 48) * kb;    // our B (weights)
  const int64_t a_panel = 4 * std::min<int64_t>(round_up(max_m, 48), 384) * kb;  // our A (rows)
  return static_cast<std::size_t>(workspace + t * (b_panel + a_panel + 3 * 4096));
}

}  // namespace leanembed::kernels
