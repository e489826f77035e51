// The fast int8 encoded linear layer: activations quantized per row (kernel_config().int8_rows:
// AVX-512 or scalar), the
// integer product by oneDNN 2.6 (u8 x s8 -> s32 matmul on weights reordered once into oneDNN's
// blocked layout; on this CPU the AMX brgemm kernel), then our epilogue (zero-point compensation
// with precomputed sums, scales, bias).
//
// Why this path (measured, README.md "Encoded linear layers: int8"): oneDNN 2.6 picks its brgemm
// (AMX / VNNI) kernels only for fixed shapes and weights in its own layout; runtime-shaped int8
// matmuls and dnnl_gemm_u8s8s32 run the older jit gemm, 3-6x slower, which packs B on every call.
// M (tokens in a batch) changes every call, so rows are padded up to a multiple of kRowBlock (16,
// AMX's tile height) and cut into chunks of at most kChunkRows (128) rows: eight fixed-shape
// primitives (16, 32, ..., 128 rows) serve every M and are created once, with the object.
// 128-row chunks also keep the int32 results of a chunk in L2 for the epilogue (128 x 1536 x 4 B
// = 768 KB), and run as fast as one call over all rows (2048 x 384 x 1536: 1.45-1.5 ms vs 1.7).
// Threads: the primitives are made for one thread, once. On more than one thread a run splits its
// rows: chunks of equal size (a multiple of kRowBlock, at most kChunkRows, their count a multiple of
// the team) go to the threads of one parallel region, each quantizing, multiplying and finishing
// its own chunks with its own memory objects and stream. One region per layer, where splitting each
// product's columns inside oneDNN made three per chunk (quantize, product, epilogue) — under a
// passive wait policy every region wakes the pool — and one set of primitives, where each thread
// count had its own (README.md "int8: rows split over threads"). The results are the same bits
// either way (integer products; the epilogue is per row). A run of one row block stays on the
// calling thread.
//
// Integer identity (all in int32, exact because k <= kInt8MaxK): with signed weights W (uint8
// weights and zero points shifted by -128 at creation; differences unchanged),
//   sum_i (q_i - zx)(W_ij - zw_j) = acc_j - zw_j * sum_i q_i - zx * col_sum_j,
//   acc_j = sum_i q_i W_ij (oneDNN),  col_sum_j = sum_i (W_ij - zw_j) (precomputed).
// CPUs without VNNI: oneDNN's u8 x s8 instruction there (vpmaddubsw) saturates pairs of products
// to int16, so the weights are split W = W1 + W2 with |W1|, |W2| <= 64 (pairs then stay below
// 2^15) and the two products are summed in the epilogue ("int8-onednn-split": twice the work).
#include "kernels/encoded_linear_int8_internal.h"

#include <dnnl.h>
#include <omp.h>
#include <dnnl.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/kernels.h"
#include "kernels/threads.h"
#include "leanembed/error.h"

namespace leanembed::kernels {

bool int8_onednn_has_vnni() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx2_vnni:
    case dnnl::cpu_isa::avx512_core_vnni:
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx:
      return true;
    default:
      return false;
  }
}

namespace {

using dnnl::memory;

constexpr int64_t kRowBlock = 16;    // M is padded to a multiple of this
constexpr int64_t kChunkRows = 128;  // rows per oneDNN call (a multiple of kRowBlock)
constexpr int kChunkKinds = int(kChunkRows / kRowBlock);  // primitives for 16, 32, ..., 128 rows

constexpr std::size_t align64(std::size_t bytes) { return (bytes + 63) / 64 * 64; }

[[noreturn]] void fail_argument(const std::string& what) {
  throw Error(ErrorCode::invalid_argument, "int8 encoded linear (oneDNN): " + what);
}

[[noreturn]] void fail_onednn(const std::string& what, const dnnl::error& e) {
  throw Error(ErrorCode::runtime, "int8 encoded linear (oneDNN): " + what + ": " + e.what());
}

class OnednnInt8Linear final : public EncodedLinear {
 public:
  OnednnInt8Linear(const Int8WeightsView& w, bool split) try
      : k_(w.k), n_(w.n), input_scale_(w.input_scale), passes_(split ? 2 : 1), engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
    decode_columns(w);
    const ThreadLimit one(1);  // every primitive runs on one thread (threads split the rows)
    pack_weights(w);
    make_chunks();
  } catch (const dnnl::error& e) {
    fail_onednn("cannot set up " + std::to_string(w.k) + " x " + std::to_string(w.n) + " weights", e);
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::out_of_memory, "int8 encoded linear (oneDNN): cannot allocate the packed copy of " +
                                              std::to_string(w.k) + " x " + std::to_string(w.n) + " weights");
  }

  const char* name() const override { return passes_ == 2 ? "int8-onednn-split" : "int8-onednn"; }
  // Measured on q8 MiniLM, 2 passive threads against one (README.md "int8: rows split over
  // threads"): batches of 4 sentences of ~23 tokens 619 against 821 sentences/s, of 6 (~138
  // tokens) 713 against 616.
  int64_t parallel_min_rows() const override { return 129; }
  int64_t k() const override { return k_; }
  int64_t n() const override { return n_; }

  std::size_t owned_bytes() const override {
    std::size_t bytes = (scale_w_.size() + zp_w_.size() + col_sum_.size()) * 4;
    for (int p = 0; p < passes_; ++p) bytes += packed_[p].get_desc().get_size();
    return bytes;
  }

  std::size_t scratch_bytes(int64_t m) const override {
    if (m <= 0) return 0;
    check_m(m);
    return layout(m).total;
  }

  void run(int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy, const float* bias, void* scratch) override {
    if (m < 0) fail_argument("run: m must be >= 0, got " + std::to_string(m));
    if (m == 0) return;
    check_m(m);
    if (!x || !y) fail_argument(std::string("run: ") + (!x ? "x" : "y") + " is null");
    if (ldx < k_) fail_argument("run: ldx " + std::to_string(ldx) + " is smaller than k " + std::to_string(k_));
    if (ldy < n_) fail_argument("run: ldy " + std::to_string(ldy) + " is smaller than n " + std::to_string(n_));
    if (!scratch) fail_argument("run: scratch is null (" + std::to_string(m) + " rows need scratch_bytes(m) bytes)");

    const Layout l = layout(m);
    const Cut& cut = l.cut;
    ChunkSet& set = set_;
    unsigned char* base = static_cast<unsigned char*>(scratch);
    uint8_t* q = base;
    float* row_scale = reinterpret_cast<float*>(base + l.row_scale);
    int32_t* row_zp = reinterpret_cast<int32_t*>(base + l.row_zp);
    int32_t* row_sum = reinterpret_cast<int32_t*>(base + l.row_sum);
    auto slot_acc = [&](int slot, int32_t* acc[2]) {
      unsigned char* s = base + l.slots + std::size_t(slot) * l.slot_bytes;
      acc[0] = reinterpret_cast<int32_t*>(s + l.acc[0]);
      acc[1] = reinterpret_cast<int32_t*>(s + l.acc[1]);
      return static_cast<void*>(s + l.onednn);
    };

    // Thread t's share: chunks t, t + team, ... — quantized, multiplied with its own memory objects
    // and stream, and finished. One thread runs every chunk in turn.
    prepare_threads(set, cut);
    auto run_share = [&](int t) {
      int32_t* acc[2];
      void* onednn_scratch = slot_acc(t, acc);
      ThreadMemory& own = set.threads[std::size_t(t)];
      for (int64_t chunk = t; chunk < cut.chunks; chunk += cut.team) {
        const int64_t r0 = chunk * cut.chunk_rows;
        const int64_t rows = std::min(cut.chunk_rows, cut.m_pad - r0), real = std::min(rows, m - r0);
        quantize_range(r0, r0 + real, x, ldx, q, row_scale, row_zp, row_sum);
        std::memset(q + (r0 + real) * k_, 0, std::size_t((rows - real) * k_));  // padding rows: computed, never read
        const int kind = int(rows / kRowBlock - 1);
        multiply(set.chunks[kind], own.stream, own.src[kind], own.dst[kind], own.scratchpad[kind], q + r0 * k_, acc,
                 onednn_scratch);
        epilogue(real, r0, acc, row_scale, row_zp, row_sum, bias, y, ldy);
      }
    };
    if (cut.team == 1) return run_share(0);

    // Rows split: no exception may leave the region.
    std::exception_ptr failure;
#pragma omp parallel num_threads(cut.team)
    {
      try {
        run_share(omp_get_thread_num());
      } catch (...) {
#pragma omp critical(leanembed_int8_rows_split)
        if (!failure) failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
  }

 private:
  // One fixed-shape primitive (rows x k by k x n) and the memory objects its calls rebind.
  struct Chunk {
    dnnl::matmul primitive;
    memory::desc src, dst, scratchpad;  // what each thread's own memory objects are made from
    std::size_t scratchpad_bytes = 0;
  };
  // One thread's stream and memory objects (made once, on the calling thread before any region,
  // not per call; oneDNN still mallocs each execution's small argument map).
  struct ThreadMemory {
    dnnl::stream stream;
    std::array<memory, kChunkKinds> src, dst, scratchpad;
  };
  struct ChunkSet {
    std::array<Chunk, kChunkKinds> chunks;
    std::vector<ThreadMemory> threads;  // one per thread of the largest team so far
  };
  // How a run of m rows is cut into chunks (see the header comment).
  struct Cut {
    int64_t m_pad = 0;       // m rounded up to kRowBlock
    int64_t chunk_rows = 0;  // rows of every chunk but the last (a multiple of kRowBlock)
    int64_t chunks = 0;
    int team = 1;            // rows split over this many threads; 1 = the chunks in turn on the calling thread
  };

  // Byte offsets into the caller's scratch for m rows: q, the per-row quantization, then one slot
  // per thread of the team (each chunk's int32 results and oneDNN's scratchpad).
  struct Layout {
    Cut cut;
    std::size_t row_scale = 0, row_zp = 0, row_sum = 0, slots = 0, slot_bytes = 0, acc[2] = {0, 0}, onednn = 0,
                total = 0;  // acc, onednn: offsets inside a slot
  };

  static void check_m(int64_t m) {
    if (m > (int64_t(1) << 31)) fail_argument("m = " + std::to_string(m) + " rows is more than 2^31");
  }

  // Per-column scale, zero point of the signed weights and column sum of (W - zp) (n values each).
  // uint8 weights and zero points are shifted by -128 (a null zero point is 0, i.e. -128 shifted).
  void decode_columns(const Int8WeightsView& w) {
    const unsigned char* zp = static_cast<const unsigned char*>(w.zero_points);
    const unsigned char* data = static_cast<const unsigned char*>(w.data);
    scale_w_.resize(std::size_t(n_));
    zp_w_.resize(std::size_t(n_));
    col_sum_.assign(std::size_t(n_), 0);
    for (int64_t j = 0; j < n_; ++j) {
      std::memcpy(&scale_w_[j], static_cast<const unsigned char*>(w.scales) + 4 * (w.scale_count == 1 ? 0 : j), 4);
      const unsigned char z = zp ? zp[w.zero_point_count == 1 ? 0 : j] : 0;
      zp_w_[j] = signed_weight(z, w.is_signed);
    }
    for (int64_t i = 0; i < k_; ++i)
      for (int64_t j = 0; j < n_; ++j) col_sum_[j] += signed_weight(data[i * n_ + j], w.is_signed) - zp_w_[j];
  }

  // An int8 byte as is, a uint8 byte minus 128.
  static int32_t signed_weight(unsigned char byte, bool is_signed) {
    return is_signed ? int32_t(int8_t(byte)) : int32_t(byte) - 128;
  }

  // Signed weights (or the two halves), reordered into the layout oneDNN's fixed-shape primitive
  // prefers; the plain copies are temporary.
  void pack_weights(const Int8WeightsView& w) {
    const unsigned char* data = static_cast<const unsigned char*>(w.data);
    const std::size_t count = std::size_t(k_ * n_);
    std::vector<int8_t> plain[2];
    plain[0].resize(count);
    for (std::size_t e = 0; e < count; ++e)
      plain[0][e] = int8_t(signed_weight(data[e], w.is_signed));
    if (passes_ == 2) {
      plain[1].resize(count);
      for (std::size_t e = 0; e < count; ++e) {
        const int32_t v = plain[0][e];
        const int32_t half = v >> 1;  // floor(v / 2): [-64, 63]; v - half: [-64, 64]
        plain[0][e] = int8_t(half);
        plain[1][e] = int8_t(v - half);
      }
    }
    threads_apply_to_caller(1);
    const dnnl::matmul::primitive_desc pd = make_pd(kChunkRows, memory::desc({k_, n_}, memory::data_type::s8,
                                                                             memory::format_tag::any));
    packed_desc_ = pd.weights_desc();
    const memory::desc plain_desc({k_, n_}, memory::data_type::s8, memory::format_tag::ab);
    for (int p = 0; p < passes_; ++p) {
      memory from(plain_desc, engine_, plain[p].data());
      packed_[p] = memory(packed_desc_, engine_);
      dnnl::reorder(from, packed_[p]).execute(stream_, from, packed_[p]);
    }
    stream_.wait();
  }

  dnnl::matmul::primitive_desc make_pd(int64_t rows, const memory::desc& weights) const {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const memory::desc src({rows, k_}, memory::data_type::u8, memory::format_tag::ab);
    const memory::desc dst({rows, n_}, memory::data_type::s32, memory::format_tag::ab);
    return {dnnl::matmul::desc(src, weights, dst), attr, engine_};
  }

  // The kChunkKinds one-thread primitives (16, 32, ..., 128 rows), made once.
  void make_chunks() {
    for (int i = 0; i < kChunkKinds; ++i) {
      const int64_t rows = (i + 1) * kRowBlock;
      Chunk& c = set_.chunks[i];
      threads_apply_to_caller(1);  // brgemm fixes its thread count at creation
      const dnnl::matmul::primitive_desc pd = make_pd(rows, packed_desc_);
      c.primitive = dnnl::matmul(pd);
      c.src = pd.src_desc();
      c.dst = pd.dst_desc();
      c.scratchpad = pd.scratchpad_desc();
      c.scratchpad_bytes = c.scratchpad.get_size();
    }
  }

  // Every thread of the cut's team gets a stream and memory objects for the chunk sizes it uses.
  void prepare_threads(ChunkSet& set, const Cut& cut) {
    try {
      while (set.threads.size() < std::size_t(cut.team)) set.threads.push_back({dnnl::stream(engine_), {}, {}, {}});
      const int64_t last = cut.m_pad - (cut.chunks - 1) * cut.chunk_rows;
      for (int64_t rows : {cut.chunk_rows, last}) {
        const int kind = int(rows / kRowBlock - 1);
        const Chunk& c = set.chunks[kind];
        for (ThreadMemory& own : set.threads) {
          if (own.src[kind]) continue;
          own.src[kind] = memory(c.src, engine_, nullptr);
          own.dst[kind] = memory(c.dst, engine_, nullptr);
          if (c.scratchpad_bytes > 0) own.scratchpad[kind] = memory(c.scratchpad, engine_, nullptr);
        }
      }
    } catch (const dnnl::error& e) {
      fail_onednn("cannot make the memory objects of the threads' chunks", e);
    }
  }

  Cut cut(int64_t m) const {
    Cut c;
    c.m_pad = (m + kRowBlock - 1) / kRowBlock * kRowBlock;
    const int64_t full = (c.m_pad + kChunkRows - 1) / kChunkRows;  // chunks of kChunkRows
    const int64_t blocks = c.m_pad / kRowBlock;
    const int threads = threads_get();
    if (threads <= 1 || blocks < 2) {
      c.chunk_rows = std::min(kChunkRows, c.m_pad);
      c.chunks = full;
      return c;
    }
    const int64_t team = std::min<int64_t>(threads, blocks);
    const int64_t even = (std::max(full, team) + team - 1) / team * team;  // >= full, a multiple of the team
    c.chunk_rows = (blocks + even - 1) / even * kRowBlock;  // <= kChunkRows since even >= full
    c.chunks = (c.m_pad + c.chunk_rows - 1) / c.chunk_rows;
    c.team = static_cast<int>(std::min(team, c.chunks));
    return c;
  }

  Layout layout(int64_t m) const {
    Layout l;
    l.cut = cut(m);
    const Cut& c = l.cut;
    const ChunkSet& set = set_;
    const std::size_t rows = std::size_t(c.m_pad);
    std::size_t at = align64(rows * std::size_t(k_));  // q [m_pad, k]
    l.row_scale = at;
    at += align64(rows * 4);
    l.row_zp = at;
    at += align64(rows * 4);
    l.row_sum = at;
    at += align64(rows * 4);
    l.slots = at;
    // A slot: the int32 results of one chunk per pass, then the largest oneDNN scratchpad of the
    // chunk sizes this m uses (the full ones and the last).
    std::size_t in_slot = 0;
    for (int p = 0; p < passes_; ++p) {
      l.acc[p] = in_slot;
      in_slot += align64(std::size_t(c.chunk_rows) * std::size_t(n_) * 4);
    }
    const int64_t last = c.m_pad - (c.chunks - 1) * c.chunk_rows;
    const std::size_t pad = std::max(set.chunks[c.chunk_rows / kRowBlock - 1].scratchpad_bytes,
                                     set.chunks[last / kRowBlock - 1].scratchpad_bytes);
    l.onednn = in_slot;
    l.slot_bytes = in_slot + align64(pad);
    l.total = at + std::size_t(c.team) * l.slot_bytes;
    return l;
  }

  // Rows [first, end) of x quantized into q, with their scale, zero point and sum, by the quantizer
  // of kernel_config().int8_rows (AVX-512 or scalar: bit-identical).
  void quantize_range(int64_t first, int64_t end, const float* x, int64_t ldx, uint8_t* q, float* row_scale,
                      int32_t* row_zp, int32_t* row_sum) const {
    const auto quantize_row = kernel_config().int8_rows->quantize_row;
    for (int64_t r = first; r < end; ++r) {
      const Int8RowQuant p = quantize_row(x + r * ldx, k_, q + r * k_, input_scale_);
      row_scale[r] = p.scale;
      row_zp[r] = p.zero_point;
      row_sum[r] = p.sum;
    }
  }

  // acc[p] = q_chunk * packed_[p] for each pass, through the chunk's primitive, on `stream` with the
  // memory objects src, dst, scratchpad (their handles are set here).
  void multiply(const Chunk& c, dnnl::stream& stream, memory& src, memory& dst, memory& scratchpad, uint8_t* q,
                int32_t* const acc[2], void* onednn_scratch) const {
    threads_apply_to_caller(1);  // the primitives were made for one thread
    dnnl_status_t status = dnnl_success;
    for (int p = 0; p < passes_ && status == dnnl_success; ++p) {
      status = dnnl_memory_set_data_handle_v2(src.get(), q, nullptr);
      if (status == dnnl_success) status = dnnl_memory_set_data_handle_v2(dst.get(), acc[p], nullptr);
      if (status == dnnl_success && c.scratchpad_bytes > 0)
        status = dnnl_memory_set_data_handle_v2(scratchpad.get(), onednn_scratch, nullptr);
      const dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, src.get()},
                                       {DNNL_ARG_WEIGHTS, packed_[p].get()},
                                       {DNNL_ARG_DST, dst.get()},
                                       {DNNL_ARG_SCRATCHPAD, c.scratchpad_bytes > 0 ? scratchpad.get() : nullptr}};
      if (status == dnnl_success)
        status = dnnl_primitive_execute(c.primitive.get(), stream.get(), c.scratchpad_bytes > 0 ? 4 : 3, args);
    }
    if (status == dnnl_success) status = dnnl_stream_wait(stream.get());
    if (status != dnnl_success)
      throw Error(ErrorCode::runtime, "int8 encoded linear (oneDNN): the u8 x s8 matmul (k = " + std::to_string(k_) +
                                          ", n = " + std::to_string(n_) + ") failed with status " +
                                          std::to_string(int(status)));
  }

  // y rows r0 .. r0 + rows from the chunk's int32 results (row r of the chunk at acc + r * n).
  void epilogue(int64_t rows, int64_t r0, int32_t* const acc[2], const float* row_scale, const int32_t* row_zp,
                const int32_t* row_sum, const float* bias, float* y, int64_t ldy) const {
    const auto epilogue_row = kernel_config().int8_rows->epilogue_row;  // AVX-512 or scalar: bit-identical
    const int64_t n = n_;
    const bool two = passes_ == 2;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = r0 + r;
      const Int8EpilogueRow e{n, acc[0] + r * n, two ? acc[1] + r * n : nullptr, row_scale[row], row_zp[row],
                              row_sum[row], scale_w_.data(), zp_w_.data(), col_sum_.data(), bias, y + row * ldy};
      epilogue_row(e);
    }
  }

  int64_t k_, n_;
  const float* input_scale_;  // k floats or null (Int8WeightsView::input_scale; the model's bytes)
  int passes_;  // 1, or 2 with split weights
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::vector<float> scale_w_;   // n
  std::vector<int32_t> zp_w_;    // n, shifted to the signed weights
  std::vector<int32_t> col_sum_; // n: sum_i (W[i, j] - zp_w[j])
  memory::desc packed_desc_;
  memory packed_[2];             // the weights (or halves) in oneDNN's layout
  ChunkSet set_;  // the one-thread primitives and the threads' memory objects
};

}  // namespace

std::unique_ptr<EncodedLinear> encoded_linear_int8_onednn(const Int8WeightsView& w, bool split_weights) {
  int8_view_check(w);
  return std::make_unique<OnednnInt8Linear>(w, split_weights);
}

}  // namespace leanembed::kernels
