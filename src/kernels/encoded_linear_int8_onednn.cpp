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
#include <dnnl.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/kernels.h"
#include "kernels/row_parallel.h"
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
    sets_.reserve(kMaxSets);
    decode_columns(w);
    pack_weights(w);
    chunk_set();  // the primitives for the current thread setting, created now rather than in run()
  } catch (const dnnl::error& e) {
    fail_onednn("cannot set up " + std::to_string(w.k) + " x " + std::to_string(w.n) + " weights", e);
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::out_of_memory, "int8 encoded linear (oneDNN): cannot allocate the packed copy of " +
                                              std::to_string(w.k) + " x " + std::to_string(w.n) + " weights");
  }

  const char* name() const override { return passes_ == 2 ? "int8-onednn-split" : "int8-onednn"; }
  // Measured (README.md "Small runs on one thread"): q8 MiniLM on 2 passive threads overtakes one
  // thread between 12 and 16 sentences of ~23 tokens.
  int64_t parallel_min_rows() const override { return 256; }
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
    return layout(m, chunk_set()).total;
  }

  void run(int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy, const float* bias, void* scratch) override {
    if (m < 0) fail_argument("run: m must be >= 0, got " + std::to_string(m));
    if (m == 0) return;
    check_m(m);
    if (!x || !y) fail_argument(std::string("run: ") + (!x ? "x" : "y") + " is null");
    if (ldx < k_) fail_argument("run: ldx " + std::to_string(ldx) + " is smaller than k " + std::to_string(k_));
    if (ldy < n_) fail_argument("run: ldy " + std::to_string(ldy) + " is smaller than n " + std::to_string(n_));
    if (!scratch) fail_argument("run: scratch is null (" + std::to_string(m) + " rows need scratch_bytes(m) bytes)");

    ChunkSet& set = chunk_set();
    const Layout l = layout(m, set);
    unsigned char* base = static_cast<unsigned char*>(scratch);
    uint8_t* q = base;
    float* row_scale = reinterpret_cast<float*>(base + l.row_scale);
    int32_t* row_zp = reinterpret_cast<int32_t*>(base + l.row_zp);
    int32_t* row_sum = reinterpret_cast<int32_t*>(base + l.row_sum);
    int32_t* acc[2] = {reinterpret_cast<int32_t*>(base + l.acc[0]), reinterpret_cast<int32_t*>(base + l.acc[1])};

    quantize_rows(m, x, ldx, q, row_scale, row_zp, row_sum);
    std::memset(q + m * k_, 0, std::size_t((l.m_pad - m) * k_));  // padding rows: computed, never read

    for (int64_t r0 = 0; r0 < l.m_pad; r0 += kChunkRows) {
      const int64_t rows = std::min(kChunkRows, l.m_pad - r0);
      Chunk& c = set.chunks[rows / kRowBlock - 1];
      multiply(c, q + r0 * k_, acc, base + l.onednn);
      epilogue(std::min(rows, m - r0), r0, acc, row_scale, row_zp, row_sum, bias, y, ldy);
    }
  }

 private:
  // One fixed-shape primitive (rows x k by k x n) and the memory objects its calls rebind.
  struct Chunk {
    dnnl::matmul primitive;
    memory src, dst, scratchpad;  // handles set per call
    std::size_t scratchpad_bytes = 0;
    int team = 1;  // OpenMP threads it was created for and runs with
  };
  static constexpr std::size_t kMaxSets = 4;
  // The kChunkKinds primitives made for one threads_get() value.
  struct ChunkSet {
    int threads = 0;
    std::array<Chunk, kChunkKinds> chunks;
  };
  // Byte offsets into the caller's scratch for m rows.
  struct Layout {
    int64_t m_pad = 0;
    std::size_t row_scale = 0, row_zp = 0, row_sum = 0, acc[2] = {0, 0}, onednn = 0, total = 0;
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
    threads_apply_to_caller(gemm_threads(kChunkRows, n_, k_));
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

  // The primitives for the current thread setting, created on first use of that setting (at
  // construction for the setting then; again only if threads_set() changes it). Keeps kMaxSets.
  ChunkSet& chunk_set() const {
    const int threads = threads_get();
    for (ChunkSet& s : sets_)
      if (s.threads == threads) return s;
    ChunkSet s;
    s.threads = threads;
    try {
      for (int i = 0; i < kChunkKinds; ++i) {
        const int64_t rows = (i + 1) * kRowBlock;
        Chunk& c = s.chunks[i];
        c.team = gemm_threads(rows, n_, k_);
        threads_apply_to_caller(c.team);  // brgemm fixes its thread count at creation
        const dnnl::matmul::primitive_desc pd = make_pd(rows, packed_desc_);
        c.primitive = dnnl::matmul(pd);
        c.src = memory(pd.src_desc(), engine_, nullptr);
        c.dst = memory(pd.dst_desc(), engine_, nullptr);
        c.scratchpad_bytes = pd.scratchpad_desc().get_size();
        if (c.scratchpad_bytes > 0) c.scratchpad = memory(pd.scratchpad_desc(), engine_, nullptr);
      }
    } catch (const dnnl::error& e) {
      fail_onednn("cannot create the u8 x s8 matmul primitives for k = " + std::to_string(k_) +
                      ", n = " + std::to_string(n_),
                  e);
    }
    if (sets_.size() >= kMaxSets) sets_.erase(sets_.begin());
    sets_.push_back(std::move(s));
    return sets_.back();
  }

  Layout layout(int64_t m, const ChunkSet& set) const {
    Layout l;
    l.m_pad = (m + kRowBlock - 1) / kRowBlock * kRowBlock;
    const std::size_t rows = std::size_t(l.m_pad);
    std::size_t at = align64(rows * std::size_t(k_));  // q [m_pad, k]
    l.row_scale = at;
    at += align64(rows * 4);
    l.row_zp = at;
    at += align64(rows * 4);
    l.row_sum = at;
    at += align64(rows * 4);
    const std::size_t chunk_rows = std::size_t(std::min(kChunkRows, l.m_pad));
    for (int p = 0; p < passes_; ++p) {
      l.acc[p] = at;
      at += align64(chunk_rows * std::size_t(n_) * 4);
    }
    // The largest oneDNN scratchpad of the chunks this m uses: full chunks and the last one.
    std::size_t pad = 0;
    if (l.m_pad >= kChunkRows) pad = set.chunks[kChunkKinds - 1].scratchpad_bytes;
    const int64_t last = l.m_pad % kChunkRows;
    if (last > 0) pad = std::max(pad, set.chunks[last / kRowBlock - 1].scratchpad_bytes);
    l.onednn = at;
    l.total = at + align64(pad);
    return l;
  }

  void quantize_rows(int64_t m, const float* x, int64_t ldx, uint8_t* q, float* row_scale, int32_t* row_zp,
                     int32_t* row_sum) const {
    // The quantizer of kernel_config().int8_rows (AVX-512 or scalar: bit-identical).
    const auto quantize_row = kernel_config().int8_rows->quantize_row;
    const int64_t k = k_;
    const float* input_scale = input_scale_;
    for_each_row_block(m, k, [=](int64_t first, int64_t end) {
      for (int64_t r = first; r < end; ++r) {
        const Int8RowQuant p = quantize_row(x + r * ldx, k, q + r * k, input_scale);
        row_scale[r] = p.scale;
        row_zp[r] = p.zero_point;
        row_sum[r] = p.sum;
      }
    });
  }

  // acc[p] = q_chunk * packed_[p] for each pass, through the chunk's primitive.
  void multiply(Chunk& c, uint8_t* q, int32_t* const acc[2], void* onednn_scratch) {
    threads_apply_to_caller(c.team);
    dnnl_status_t status = dnnl_success;
    for (int p = 0; p < passes_ && status == dnnl_success; ++p) {
      status = dnnl_memory_set_data_handle_v2(c.src.get(), q, nullptr);
      if (status == dnnl_success) status = dnnl_memory_set_data_handle_v2(c.dst.get(), acc[p], nullptr);
      if (status == dnnl_success && c.scratchpad_bytes > 0)
        status = dnnl_memory_set_data_handle_v2(c.scratchpad.get(), onednn_scratch, nullptr);
      const dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, c.src.get()},
                                       {DNNL_ARG_WEIGHTS, packed_[p].get()},
                                       {DNNL_ARG_DST, c.dst.get()},
                                       {DNNL_ARG_SCRATCHPAD, c.scratchpad_bytes > 0 ? c.scratchpad.get() : nullptr}};
      if (status == dnnl_success)
        status = dnnl_primitive_execute(c.primitive.get(), stream_.get(), c.scratchpad_bytes > 0 ? 4 : 3, args);
    }
    if (status == dnnl_success) status = dnnl_stream_wait(stream_.get());
    if (status != dnnl_success)
      throw Error(ErrorCode::runtime, "int8 encoded linear (oneDNN): the u8 x s8 matmul (k = " + std::to_string(k_) +
                                          ", n = " + std::to_string(n_) + ") failed with status " +
                                          std::to_string(int(status)));
  }

  // y rows r0 .. r0 + rows from the chunk's int32 results.
  void epilogue(int64_t rows, int64_t r0, int32_t* const acc[2], const float* row_scale, const int32_t* row_zp,
                const int32_t* row_sum, const float* bias, float* y, int64_t ldy) const {
    const auto epilogue_row = kernel_config().int8_rows->epilogue_row;  // AVX-512 or scalar: bit-identical
    const int64_t n = n_;
    const bool two = passes_ == 2;
    const float* scale_w = scale_w_.data();
    const int32_t* zp_w = zp_w_.data();
    const int32_t* col_sum = col_sum_.data();
    int32_t* acc0 = acc[0];
    int32_t* acc1 = acc[1];
    for_each_row_block(rows, n, [=](int64_t first, int64_t end) {
      for (int64_t r = first; r < end; ++r) {
        const int64_t row = r0 + r;
        const Int8EpilogueRow e{n, acc0 + r * n, two ? acc1 + r * n : nullptr, row_scale[row], row_zp[row],
                                row_sum[row], scale_w, zp_w, col_sum, bias, y + row * ldy};
        epilogue_row(e);
      }
    });
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
  mutable std::vector<ChunkSet> sets_;  // per thread setting; usually one
};

}  // namespace

std::unique_ptr<EncodedLinear> encoded_linear_int8_onednn(const Int8WeightsView& w, bool split_weights) {
  int8_view_check(w);
  return std::make_unique<OnednnInt8Linear>(w, split_weights);
}

}  // namespace leanembed::kernels
