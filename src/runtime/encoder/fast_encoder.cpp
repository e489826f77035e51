#include "runtime/encoder/fast_encoder.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <new>
#include <string>

#include "core/mapped_file.h"
#include "kernels/attention.h"
#include "kernels/threads.h"
#include "leanembed/error.h"

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

void check_view(const EmbeddingTable& v, int64_t expected, const std::string& what) {
  check_size(v.size, v.bytes == nullptr, expected, what);
}

void check_view(const AlignedFloatView& v, int64_t expected, const std::string& what) {
  check_size(v.size, v.data == nullptr, expected, what);
  if (reinterpret_cast<std::uintptr_t>(v.data) % alignof(float) != 0)
    throw Error(ErrorCode::invalid_argument, "FastEncoder: " + what + " is not float-aligned");
}

void check_linear(const LinearWeights& l, int64_t in, int64_t out, const std::string& what) {
  if (l.in != in || l.out != out)
    throw Error(ErrorCode::invalid_argument, "FastEncoder: " + what + " is [" + std::to_string(l.in) + ", " +
                                                 std::to_string(l.out) + "], expected [" + std::to_string(in) + ", " +
                                                 std::to_string(out) + "]");
  auto check_encoded = [&](int64_t k, int64_t n, bool null) {
    if (k != in || n != out || null)
      throw Error(ErrorCode::invalid_argument, "FastEncoder: " + what + " " + linear_encoding_name(l.encoding) +
                                                   " weight view is [" + std::to_string(k) + ", " + std::to_string(n) +
                                                   "]" + (null ? " without data" : "") + ", expected [" +
                                                   std::to_string(in) + ", " + std::to_string(out) + "]");
  };
  switch (l.encoding) {
    case LinearEncoding::fp32: check_view(l.weight, in * out, what + " weight"); break;
    case LinearEncoding::int8: check_encoded(l.int8.k, l.int8.n, l.int8.data == nullptr); break;
    case LinearEncoding::q4: check_encoded(l.q4.k, l.q4.n, l.q4.packed == nullptr); break;
    case LinearEncoding::fp16: check_encoded(l.f16.k, l.f16.n, l.f16.data == nullptr); break;
  }
  check_view(l.bias, out, what + " bias");
  if (l.input_scale.size != 0) check_view(l.input_scale, in, what + " input scale");
}

// dst[r, c] = src[r, c] * scale[c] for r < rows, c < cols (row strides lds, ldd; dst may be src).
void scale_columns(int64_t rows, int64_t cols, const float* src, int64_t lds, const float* scale, float* dst,
                   int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[r * ldd + c] = src[r * lds + c] * scale[c];
}

// True when the layer's kernel multiplies its input by the input scale itself (int8: while it
// quantizes each row, kernels::Int8WeightsView::input_scale), so the fast path passes x unscaled.
// Other encodings get x times the scale from a pass of its own (scale_columns).
bool kernel_applies_input_scale(const LinearWeights& l) {
  return l.input_scale.size != 0 && l.encoding == LinearEncoding::int8;
}

bool needs_scaled_input(const LinearWeights& l) { return l.input_scale.size != 0 && !kernel_applies_input_scale(l); }

// The EncodedLinear for an encoded weight; null for fp32 (kernels::Matmul runs those). The
// factories check the views (Error(invalid_argument)).
std::unique_ptr<kernels::EncodedLinear> make_encoded(const LinearWeights& l, kernels::Implementation impl) {
  switch (l.encoding) {
    case LinearEncoding::fp32: return nullptr;
    case LinearEncoding::int8: {
      kernels::Int8WeightsView view = l.int8;
      if (kernel_applies_input_scale(l)) view.input_scale = l.input_scale.data;
      return kernels::encoded_linear_int8(view, impl);
    }
    case LinearEncoding::q4: return kernels::encoded_linear_q4(l.q4, impl);
    case LinearEncoding::fp16: return kernels::encoded_linear_f16(l.f16, impl);
  }
  return nullptr;
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
  bool copies_scaled_input = false;
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
    const bool any_scale = l.query.input_scale.size || l.key.input_scale.size || l.value.input_scale.size ||
                           l.attention_output.input_scale.size || l.ffn_in.input_scale.size || l.ffn_out.input_scale.size;
    if (any_scale && !c.scaled_inputs)
      throw Error(ErrorCode::invalid_argument, "FastEncoder: " + p + "has linear input scales but config.scaled_inputs is off");
    if (l.key.input_scale.data != l.query.input_scale.data || l.value.input_scale.data != l.query.input_scale.data)
      throw Error(ErrorCode::invalid_argument, "FastEncoder: " + p + "query, key and value need the same input scale");
    // The plan books scaled copies of x only for Q / K / V or FFN-input kernels that do not apply
    // the scale themselves (the context and the GELU output are scaled in place).
    for (const LinearWeights* w : {&l.query, &l.key, &l.value, &l.ffn_in})
      copies_scaled_input = copies_scaled_input || needs_scaled_input(*w);
    check_norm(l.output_norm, H, p + "output LayerNorm");
  }
  weights_.config.scaled_inputs = copies_scaled_input;
  matmul_ = make_matmul();
  attention_matmuls_.push_back(make_matmul());

  const kernels::Implementation impl = options_.implementation;
  owned_weight_bytes_ = weights_.bytes_copied;
  std::vector<std::string> names;
  encoded_.resize(weights_.layers.size());
  for (std::size_t i = 0; i < weights_.layers.size(); ++i) {
    const EncoderLayerWeights& l = weights_.layers[i];
    LayerLinears& e = encoded_[i];
    // The layer's kernel (null for fp32: kernels::Matmul), its name and owned bytes noted.
    auto make = [&](const LinearWeights& w, const char* what) {
      std::unique_ptr<kernels::EncodedLinear> k;
      try {
        k = make_encoded(w, impl);
      } catch (const Error& err) {
        throw Error(err.code(), "FastEncoder: layer " + std::to_string(i) + " " + what + ": " + err.what());
      }
      const std::string name = k ? k->name() : "matmul";
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
      if (k) owned_weight_bytes_ += k->owned_bytes();
      // A kernel that packed its own copy (int8 on oneDNN) never reads the file's bytes again: let
      // those pages leave the resident set (MiniLM q8: 10.6 MB) instead of holding the weights twice.
      if (k && k->owned_bytes() > 0 && w.encoding == LinearEncoding::int8)
        drop_resident_pages(w.int8.data, static_cast<std::size_t>(w.int8.k * w.int8.n));
      return k;
    };
    e.query = make(l.query, "query");
    e.key = make(l.key, "key");
    e.value = make(l.value, "value");
    e.attention_output = make(l.attention_output, "attention output");
    e.ffn_in = make(l.ffn_in, "FFN input");
    e.ffn_out = make(l.ffn_out, "FFN output");
  }
  for (const auto& n : names) linear_kernels_ += (linear_kernels_.empty() ? "" : ", ") + n;

  if (options_.parallel_min_tokens < -1)
    throw Error(ErrorCode::invalid_argument, "FastEncoder: parallel_min_tokens must be >= -1, got " +
                                                 std::to_string(options_.parallel_min_tokens));
  if (options_.parallel_min_tokens >= 0) {
    parallel_min_tokens_ = options_.parallel_min_tokens;
  } else if (kernels::pool_threads_sleep() && impl == kernels::Implementation::fast) {
    // The feed-forward products are most of a run's work; the largest value over the layers.
    for (const LayerLinears& e : encoded_)
      parallel_min_tokens_ =
          std::max(parallel_min_tokens_, e.ffn_in ? e.ffn_in->parallel_min_rows() : kFloatParallelMinTokens);
  }
}

int FastEncoder::run_threads(int64_t tokens) const {
  return tokens < parallel_min_tokens_ ? 1 : kernels::threads_get();
}

std::size_t FastEncoder::linear_scratch(LinearSlot slot, int64_t m) const {
  std::size_t bytes = 0;
  const EncoderConfig& c = weights_.config;
  for (const LayerLinears& e : encoded_) {
    const kernels::EncodedLinear* products[3] = {nullptr, nullptr, nullptr};
    int64_t n = c.hidden, k = c.hidden;
    switch (slot) {
      case LinearSlot::qkv: products[0] = e.query.get(), products[1] = e.key.get(), products[2] = e.value.get(); break;
      case LinearSlot::attention_output: products[0] = e.attention_output.get(); break;
      case LinearSlot::ffn_in: products[0] = e.ffn_in.get(), n = c.ffn; break;
      case LinearSlot::ffn_out: products[0] = e.ffn_out.get(), k = c.ffn; break;
    }
    const int count = slot == LinearSlot::qkv ? 3 : 1;
    for (int i = 0; i < count; ++i)
      bytes = std::max(bytes, products[i] ? products[i]->scratch_bytes(m) : matmul_->scratch_bytes(m, n, k, false, false));
  }
  return bytes;
}

void FastEncoder::linear(const LinearWeights& w, kernels::EncodedLinear* encoded, int64_t n, const float* x,
                         int64_t ldx, float* y, int64_t ldy, bool with_bias, std::byte* scratch, std::size_t scratch_size) {
  if (encoded) {
    // A kernel's scratch may depend on the thread setting (oneDNN primitives per thread count); if
    // threads_set() ran between planning and now, refuse rather than let it write past its slot.
    const std::size_t need = encoded->scratch_bytes(n);
    if (need > scratch_size)
      throw Error(ErrorCode::runtime, std::string("FastEncoder::run: the ") + encoded->name() + " layer needs " +
                                          std::to_string(need) + " bytes of scratch, " + std::to_string(scratch_size) +
                                          " were planned (was the thread count changed during the run?)");
    encoded->run(n, x, ldx, y, ldy, with_bias ? w.bias.data : nullptr, need ? scratch : nullptr);
  } else {
    matmul_->gemm(linear_args(w, n, x, ldx, y, ldy, with_bias), scratch);
  }
}

std::unique_ptr<kernels::Matmul> FastEncoder::make_matmul() const {
  return kernels::matmul_create(options_.implementation);
}

FastEncoder::~FastEncoder() = default;

MemoryPlan FastEncoder::plan_locked(const BatchShape& shape) const {
  const kernels::ThreadLimit limit(run_threads(shape.tokens));  // the plan is for the run's thread count
  return plan_encoder_memory(weights_.config, shape, kernels::threads_get(), options_.chunk_tokens,
                             [this](LinearSlot slot, int64_t m) { return linear_scratch(slot, m); },
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

void FastEncoder::sum_embeddings(std::span<const int64_t> ids, std::span<const int64_t> type_ids,
                                 std::span<const int64_t> offsets, float* x) const {
  // The tables are views of the model file at any alignment: rows are copied / added with memcpy
  // loads, or (the word table, with a row source) read with pread. The sum keeps the graph's order,
  // (word + type) + position.
  const int64_t H = weights_.config.hidden;
  const int64_t S = static_cast<int64_t>(offsets.size()) - 1;
  const EmbeddingTable& word = weights_.word_embeddings;
  const EmbeddingTable& type = weights_.token_type_embeddings;
  const EmbeddingTable& pos = weights_.position_embeddings;
  for (int64_t s = 0; s < S; ++s) {
    for (int64_t t = offsets[s]; t < offsets[s + 1]; ++t) {
      float* row = x + t * H;
      word.copy_to(ids[t] * H, H, row);  // 8-bit tables: DequantizeLinear's value, as the graph computes it
      if (!type.empty()) type.add_to((type_ids.empty() ? 0 : type_ids[t]) * H, H, row);
      pos.add_to((t - offsets[s]) * H, H, row);
    }
  }
  const LayerNormWeights& n = weights_.embedding_norm;
  const int64_t T = static_cast<int64_t>(ids.size());
  kernels::row_kernels().layer_norm(T, H, x, nullptr, nullptr, n.gamma.data, n.beta.data, n.eps, x);
}

void FastEncoder::run_layer(const EncoderLayerWeights& layer, LayerLinears& encoded, const MemoryPlan& plan,
                            std::span<const int64_t> offsets, float* x, std::byte* arena) {
  const EncoderConfig& c = weights_.config;
  const kernels::RowKernels& rows = kernels::row_kernels();
  const kernels::AttentionKernels& attention = kernels::attention_kernels();
  const int64_t T = plan.shape.tokens, H = c.hidden, F = c.ffn, C = plan.chunk, d = c.head_size;
  const int64_t ld = H;  // Q, K and V are three [T, H] blocks of qkv
  auto buffer = [&](Buffer b) { return arena + plan.at(b); };
  float* qkv = reinterpret_cast<float*>(buffer(Buffer::qkv));

  // Step 0: Q, K, V, one [T, H] block each.
  const LinearWeights* proj[3] = {&layer.query, &layer.key, &layer.value};
  kernels::EncodedLinear* proj_encoded[3] = {encoded.query.get(), encoded.key.get(), encoded.value.get()};
  // The graph's Mul(x, s) before the quantized products (Q, K and V share s): into a scaled copy of
  // x for kernels that do not apply s themselves.
  float* scaled_input = nullptr;
  if (needs_scaled_input(layer.query) || needs_scaled_input(layer.key) || needs_scaled_input(layer.value)) {
    scaled_input = reinterpret_cast<float*>(buffer(Buffer::scaled_qkv_input));
    scale_columns(T, H, x, H, layer.query.input_scale.data, scaled_input, H);
  }
  for (int i = 0; i < 3; ++i) {
    linear(*proj[i], proj_encoded[i], T, needs_scaled_input(*proj[i]) ? scaled_input : x, H, qkv + i * T * H, ld, /*with_bias=*/true,
           buffer(Buffer::scratch_qkv), plan.bytes[static_cast<int>(Buffer::scratch_qkv)]);
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
        attention.head(L, d, q, q + T * H, q + 2 * T * H, ld, scale, q, ld, scratch, rows);
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
  float* projected = reinterpret_cast<float*>(buffer(Buffer::attention_output));
  for (int64_t r0 = 0; r0 < T; r0 += C) {
    const int64_t n = std::min(C, T - r0);
    // The bias is added inside the LayerNorm kernel below, with the residual. An input scale is
    // applied to the context in place (it is read only here).
    if (needs_scaled_input(layer.attention_output))
      scale_columns(n, H, qkv + r0 * ld, ld, layer.attention_output.input_scale.data, qkv + r0 * ld, ld);
    linear(layer.attention_output, encoded.attention_output.get(), n, qkv + r0 * ld, ld, projected, H, false,
           buffer(Buffer::scratch_attention_output), plan.bytes[static_cast<int>(Buffer::scratch_attention_output)]);
    const LayerNormWeights& ln = layer.attention_norm;
    rows.layer_norm(n, H, projected, x + r0 * H, layer.attention_output.bias.data, ln.gamma.data, ln.beta.data, ln.eps,
                    x + r0 * H);
  }

  // Step 3: FFN + residual + bias + LayerNorm, by chunks of rows (reuses qkv's bytes).
  float* hidden = reinterpret_cast<float*>(buffer(Buffer::ffn_hidden));
  float* ffn_out = reinterpret_cast<float*>(buffer(Buffer::ffn_out));
  for (int64_t r0 = 0; r0 < T; r0 += C) {
    const int64_t n = std::min(C, T - r0);
    const float* ffn_input = x + r0 * H;
    if (needs_scaled_input(layer.ffn_in)) {
      float* scaled = reinterpret_cast<float*>(buffer(Buffer::scaled_ffn_input));
      scale_columns(n, H, x + r0 * H, H, layer.ffn_in.input_scale.data, scaled, H);
      ffn_input = scaled;
    }
    linear(layer.ffn_in, encoded.ffn_in.get(), n, ffn_input, H, hidden, F, false, buffer(Buffer::scratch_ffn_in), plan.bytes[static_cast<int>(Buffer::scratch_ffn_in)]);
    rows.bias_gelu_erf(n, F, hidden, F, layer.ffn_in.bias.data);
    if (needs_scaled_input(layer.ffn_out)) scale_columns(n, F, hidden, F, layer.ffn_out.input_scale.data, hidden, F);
    linear(layer.ffn_out, encoded.ffn_out.get(), n, hidden, F, ffn_out, H, false, buffer(Buffer::scratch_ffn_out), plan.bytes[static_cast<int>(Buffer::scratch_ffn_out)]);
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
  // Every kernel of this run reads threads_get() on this thread: a small run stays on it.
  const kernels::ThreadLimit limit(run_threads(T));
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
  sum_embeddings(ids, type_ids, offsets, x);
  for (std::size_t i = 0; i < weights_.layers.size(); ++i)
    run_layer(weights_.layers[i], encoded_[i], plan, offsets, x, arena_.get());
}

}  // namespace leanembed::runtime::encoder
