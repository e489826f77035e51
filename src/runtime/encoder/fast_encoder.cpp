#include "runtime/encoder/fast_encoder.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <new>
#include <string>

#include "kernels/threads.h"
#include "leanembed/error.h"
#include "runtime/encoder/attention.h"

namespace leanembed::runtime::encoder {
namespace {

// The product of a linear layer over n rows: dst[n, w.out] = src[n, w.in] · W (+ bias if asked).
// lda / ldc are the row strides of src and dst in floats.
kernels::GemmArgs linear_args(const LinearWeights& w, int64_t n, const float* src, int64_t lda, float* dst,
                              int64_t ldc, bool with_bias) {
  kernels::GemmArgs g;
  g.m = n, g.n = w.out, g.k = w.in;
  g.a = src, g.lda = lda;
  g.b = w.weight.gemm_operand(), g.ldb = w.out;
  g.c = dst, g.ldc = ldc;
  if (with_bias) g.bias = w.bias.data;
  return g;
}

constexpr std::align_val_t kArenaAlign{64};

void check_size(int64_t size, bool null, int64_t expected, const std::string& what) {
  if (size != expected || (expected > 0 && null))
    throw Error(ErrorCode::invalid_argument, "FastEncoder: " + what + " has " + std::to_string(size) +
                                                 " values, expected " + std::to_string(expected));
}

void check_view(const UnalignedFloatView& v, int64_t expected, const std::string& what) {
  check_size(v.size, v.bytes == nullptr, expected, what);
}

void check_view(const AlignedFloatView& v, int64_t expected, const std::string& what) {
  check_size(v.size, v.data == nullptr, expected, what);
  if (reinterpret_cast<std::uintptr_t>(v.data) % alignof(float) != 0)
    throw Error(ErrorCode::invalid_argument, "FastEncoder: " + what + " is not float-aligned");
}

// row[c] += table value (r * H + c) for c < H; the table is read with memcpy loads (any alignment).
void add_row(const UnalignedFloatView& table, int64_t r, int64_t H, float* row) {
  for (int64_t c = 0; c < H; ++c) row[c] += table.load(r * H + c);
}

void check_linear(const LinearWeights& l, int64_t in, int64_t out, const std::string& what) {
  if (l.in != in || l.out != out)
    throw Error(ErrorCode::invalid_argument, "FastEncoder: " + what + " is [" + std::to_string(l.in) + ", " +
                                                 std::to_string(l.out) + "], expected [" + std::to_string(in) + ", " +
                                                 std::to_string(out) + "]");
  check_view(l.weight, in * out, what + " weight");
  check_view(l.bias, out, what + " bias");
}

void check_norm(const LayerNormWeights& n, int64_t h, const std::string& what) {
  check_view(n.gamma, h, what + " scale");
  check_view(n.beta, h, what + " bias");
}

}  // namespace

void FastEncoder::ArenaDeleter::operator()(std::byte* p) const { ::operator delete(p, kArenaAlign); }

FastEncoder::FastEncoder(EncoderWeights weights, FastEncoderOptions options)
    : weights_(std::move(weights)), options_(options) {
  const EncoderConfig& c = weights_.config;
  const int64_t H = c.hidden;
  if (H <= 0 || c.heads <= 0 || c.head_size <= 0 || c.heads * c.head_size != H || c.ffn <= 0 || c.vocab <= 0 ||
      c.max_positions <= 0 || c.layers != static_cast<int64_t>(weights_.layers.size()) || options.chunk_tokens < 0)
    throw Error(ErrorCode::invalid_argument,
                "FastEncoder: inconsistent configuration (hidden " + std::to_string(H) + ", heads " +
                    std::to_string(c.heads) + " x " + std::to_string(c.head_size) + ", ffn " + std::to_string(c.ffn) +
                    ", layers " + std::to_string(c.layers) + "/" + std::to_string(weights_.layers.size()) +
                    ", chunk_tokens " + std::to_string(options.chunk_tokens) + ")");
  check_view(weights_.word_embeddings, c.vocab * H, "word embeddings");
  if (weights_.position_embeddings.size < c.max_positions * H)
    throw Error(ErrorCode::invalid_argument, "FastEncoder: the position table has fewer than max_positions rows");
  check_view(weights_.token_type_embeddings, c.type_vocab * H, "token-type embeddings");
  check_norm(weights_.embedding_norm, H, "embedding LayerNorm");
  for (std::size_t i = 0; i < weights_.layers.size(); ++i) {
    const EncoderLayerWeights& l = weights_.layers[i];
    const std::string p = "layer " + std::to_string(i) + " ";
    check_linear(l.query, H, H, p + "query");
    check_linear(l.key, H, H, p + "key");
    check_linear(l.value, H, H, p + "value");
    check_linear(l.attention_output, H, H, p + "attention output");
    check_linear(l.ffn_in, H, c.ffn, p + "FFN input");
    check_linear(l.ffn_out, c.ffn, H, p + "FFN output");
    check_norm(l.attention_norm, H, p + "attention LayerNorm");
    check_norm(l.output_norm, H, p + "output LayerNorm");
  }
  matmul_ = make_matmul();
  attention_matmuls_.push_back(make_matmul());
}

std::unique_ptr<kernels::Matmul> FastEncoder::make_matmul() const {
  return options_.matmul == MatmulBackend::reference ? kernels::matmul_create_reference()
                                                     : kernels::matmul_create_onednn();
}

FastEncoder::~FastEncoder() = default;

MemoryPlan FastEncoder::plan_locked(const BatchShape& shape) const {
  return plan_encoder_memory(weights_.config, shape, kernels::threads_get(), options_.chunk_tokens, *matmul_,
                             attention_matmuls_.front().get(), options_.attention_gemm_min_len);
}

MemoryPlan FastEncoder::plan(int64_t sequences, int64_t total_tokens, int64_t max_len) const {
  std::lock_guard lock(mutex_);
  return plan_locked({sequences, total_tokens, max_len});
}

std::size_t FastEncoder::planned_bytes(int64_t sequences, int64_t total_tokens, int64_t max_len) const {
  return plan(sequences, total_tokens, max_len).arena_bytes;
}

std::size_t FastEncoder::arena_bytes() const {
  std::lock_guard lock(mutex_);
  return arena_size_;
}

void FastEncoder::release_arena() {
  std::lock_guard lock(mutex_);
  arena_.reset();
  arena_size_ = 0;
}

void FastEncoder::embed(std::span<const int64_t> ids, std::span<const int64_t> type_ids,
                        std::span<const int64_t> offsets, float* x) const {
  // The tables are views of the model file at any alignment: rows are copied / added with memcpy
  // loads. The sum keeps the graph's order, (word + type) + position.
  const int64_t H = weights_.config.hidden;
  const int64_t S = static_cast<int64_t>(offsets.size()) - 1;
  const UnalignedFloatView& word = weights_.word_embeddings;
  const UnalignedFloatView& type = weights_.token_type_embeddings;
  const UnalignedFloatView& pos = weights_.position_embeddings;
  for (int64_t s = 0; s < S; ++s) {
    for (int64_t t = offsets[s]; t < offsets[s + 1]; ++t) {
      float* row = x + t * H;
      word.copy_to(ids[t] * H, H, row);
      if (!type.empty()) add_row(type, type_ids.empty() ? 0 : type_ids[t], H, row);
      add_row(pos, t - offsets[s], H, row);
    }
  }
  const LayerNormWeights& n = weights_.embedding_norm;
  const int64_t T = static_cast<int64_t>(ids.size());
  kernels::row_kernels().layer_norm(T, H, x, nullptr, nullptr, n.gamma.data, n.beta.data, n.eps, x);
}

void FastEncoder::run_layer(const EncoderLayerWeights& layer, const MemoryPlan& plan,
                            std::span<const int64_t> offsets, float* x, std::byte* arena) {
  const EncoderConfig& c = weights_.config;
  const kernels::RowKernels& rows = kernels::row_kernels();
  const int64_t T = plan.shape.tokens, H = c.hidden, F = c.ffn, C = plan.chunk, d = c.head_size;
  const int64_t ld = H;  // Q, K and V are three [T, H] blocks of qkv
  auto buffer = [&](Buffer b) { return arena + plan.at(b); };
  float* qkv = reinterpret_cast<float*>(buffer(Buffer::qkv));

  // Step 0: Q, K, V, one [T, H] block each.
  const LinearWeights* proj[3] = {&layer.query, &layer.key, &layer.value};
  for (int i = 0; i < 3; ++i) {
    matmul_->gemm(linear_args(*proj[i], T, x, H, qkv + i * T * H, ld, /*with_bias=*/true), buffer(Buffer::scratch_qkv));
  }

  // Step 1: attention per (sequence, head); the context replaces Q. No exception may leave the
  // parallel region: the first one is kept and rethrown after it.
  const int64_t S = plan.shape.sequences, heads = c.heads;
  const int64_t items = S * heads;
  std::byte* slices = buffer(Buffer::attention_scratch);
  const float scale = c.attention_scale;
  const int64_t gemm_min_len = options_.attention_gemm_min_len;
  std::exception_ptr failure;
#pragma omp parallel num_threads(plan.threads) if (items > 1 && plan.threads > 1)
  {
    const int thread = omp_get_thread_num();
    std::byte* slice = slices + static_cast<std::size_t>(thread) * plan.attention_slice_bytes;
    float* scratch = reinterpret_cast<float*>(slice);
    kernels::Matmul& mm = *attention_matmuls_[static_cast<std::size_t>(thread)];
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t s = item / heads, h = item % heads;
      const int64_t first = offsets[s], L = offsets[s + 1] - first;
      float* q = qkv + first * ld + h * d;
      if (L == 0) continue;
      if (L < gemm_min_len) {
        attention_head(L, d, q, q + T * H, q + 2 * T * H, ld, scale, q, ld, scratch, rows);
        continue;
      }
      try {
        kernels::GemmArgs qk;  // scores = scale * Q K^T  [L, L]
        qk.m = L, qk.n = L, qk.k = d;
        qk.a = q, qk.lda = ld;
        qk.b = q + T * H, qk.ldb = ld, qk.trans_b = true;
        qk.c = scratch, qk.ldc = L;
        qk.alpha = scale;
        mm.gemm(qk, slice + plan.attention_gemm_scratch_offset);
        rows.softmax(L, L, scratch, L, 1.0f, nullptr);
        kernels::GemmArgs pv;  // ctx = P V  [L, d], over Q's columns
        pv.m = L, pv.n = d, pv.k = L;
        pv.a = scratch, pv.lda = L;
        pv.b = q + 2 * T * H, pv.ldb = ld;
        pv.c = q, pv.ldc = ld;
        mm.gemm(pv, slice + plan.attention_gemm_scratch_offset);
      } catch (...) {
#pragma omp critical(leanembed_encoder_attention_failure)
        if (!failure) failure = std::current_exception();
      }
    }
  }
  if (failure) std::rethrow_exception(failure);

  // Step 2: attention output projection + residual + bias + LayerNorm, by chunks of rows.
  float* dense = reinterpret_cast<float*>(buffer(Buffer::dense_out));
  for (int64_t r0 = 0; r0 < T; r0 += C) {
    const int64_t n = std::min(C, T - r0);
    // The bias is added inside the LayerNorm kernel below, with the residual.
    matmul_->gemm(linear_args(layer.attention_output, n, qkv + r0 * ld, ld, dense, H, false), buffer(Buffer::scratch_dense));
    const LayerNormWeights& ln = layer.attention_norm;
    rows.layer_norm(n, H, dense, x + r0 * H, layer.attention_output.bias.data, ln.gamma.data, ln.beta.data, ln.eps,
                    x + r0 * H);
  }

  // Step 3: FFN + residual + bias + LayerNorm, by chunks of rows (reuses qkv's bytes).
  float* hidden = reinterpret_cast<float*>(buffer(Buffer::ffn_hidden));
  float* ffn_out = reinterpret_cast<float*>(buffer(Buffer::ffn_out));
  for (int64_t r0 = 0; r0 < T; r0 += C) {
    const int64_t n = std::min(C, T - r0);
    matmul_->gemm(linear_args(layer.ffn_in, n, x + r0 * H, H, hidden, F, false), buffer(Buffer::scratch_ffn_in));
    rows.bias_gelu_erf(n, F, hidden, F, layer.ffn_in.bias.data);
    matmul_->gemm(linear_args(layer.ffn_out, n, hidden, F, ffn_out, H, false), buffer(Buffer::scratch_ffn_out));
    const LayerNormWeights& ln = layer.output_norm;
    rows.layer_norm(n, H, ffn_out, x + r0 * H, layer.ffn_out.bias.data, ln.gamma.data, ln.beta.data, ln.eps,
                    x + r0 * H);
  }
}

void FastEncoder::run(std::span<const int64_t> ids, std::span<const int64_t> type_ids,
                      std::span<const int64_t> offsets, std::span<float> out) {
  const EncoderConfig& c = weights_.config;
  const int64_t T = static_cast<int64_t>(ids.size());
  auto fail = [](const std::string& m) { throw Error(ErrorCode::invalid_argument, "FastEncoder::run: " + m); };
  if (offsets.empty()) fail("offsets is empty; it needs sequences + 1 entries starting with 0");
  const int64_t S = static_cast<int64_t>(offsets.size()) - 1;
  if (offsets[0] != 0) fail("offsets[0] is " + std::to_string(offsets[0]) + ", expected 0");
  if (offsets[S] != T)
    fail("offsets[" + std::to_string(S) + "] is " + std::to_string(offsets[S]) + ", expected the token count " + std::to_string(T));
  if (!type_ids.empty() && type_ids.size() != ids.size())
    fail("type_ids has " + std::to_string(type_ids.size()) + " entries, expected 0 or " + std::to_string(T));
  if (out.size() != ids.size() * static_cast<std::size_t>(c.hidden))
    fail("out has " + std::to_string(out.size()) + " floats, expected tokens * hidden = " + std::to_string(T) + " * " +
         std::to_string(c.hidden));
  int64_t max_len = 0;
  for (int64_t s = 0; s < S; ++s) {
    if (offsets[s + 1] < offsets[s]) fail("offsets decrease at sequence " + std::to_string(s));
    const int64_t L = offsets[s + 1] - offsets[s];  // no overflow: 0 <= offsets[s] <= offsets[s + 1]
    if (L > c.max_positions)
      fail("sequence " + std::to_string(s) + " has " + std::to_string(L) + " tokens, more than the model's " +
           std::to_string(c.max_positions) + " positions");
    max_len = std::max(max_len, L);
  }
  for (int64_t t = 0; t < T; ++t) {
    if (ids[t] < 0 || ids[t] >= c.vocab)
      fail("token id " + std::to_string(ids[t]) + " at token " + std::to_string(t) + " is outside the vocabulary [0, " +
           std::to_string(c.vocab) + ")");
    if (!type_ids.empty() && (type_ids[t] < 0 || type_ids[t] >= std::max<int64_t>(c.type_vocab, 1)))
      fail("token type id " + std::to_string(type_ids[t]) + " at token " + std::to_string(t) +
           " is outside [0, " + std::to_string(std::max<int64_t>(c.type_vocab, 1)) + ")");
  }

  std::lock_guard lock(mutex_);
  const MemoryPlan plan = plan_locked({S, T, max_len});
  if (T == 0) return;
  while (static_cast<int>(attention_matmuls_.size()) < plan.threads) attention_matmuls_.push_back(make_matmul());
  if (arena_size_ < plan.arena_bytes || (!options_.keep_arena && arena_size_ != plan.arena_bytes)) {
    arena_.reset();
    arena_size_ = 0;
    try {
      arena_.reset(static_cast<std::byte*>(::operator new(plan.arena_bytes, kArenaAlign)));
    } catch (const std::bad_alloc&) {
      throw Error(ErrorCode::out_of_memory, "FastEncoder::run: cannot allocate the " + std::to_string(plan.arena_bytes) +
                                                " byte arena for " + std::to_string(S) + " sequences, " +
                                                std::to_string(T) + " tokens");
    }
    arena_size_ = plan.arena_bytes;
  }
  struct Release {  // frees the arena on every exit when it is not kept
    FastEncoder& e;
    ~Release() {
      if (!e.options_.keep_arena) {
        e.arena_.reset();
        e.arena_size_ = 0;
      }
    }
  } release{*this};

  float* x = out.data();
  embed(ids, type_ids, offsets, x);
  for (const EncoderLayerWeights& layer : weights_.layers) run_layer(layer, plan, offsets, x, arena_.get());
}

}  // namespace leanembed::runtime::encoder
