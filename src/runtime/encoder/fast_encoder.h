// The fused, padding-free encoder: runs a recognized BERT-family encoder (recognize_encoder.h) on a
// packed batch and returns last_hidden_state for the real tokens only.
//
// Usage:
//   onnx::Model model = onnx::read_model(path);
//   RecognizeResult r = recognize_encoder(model);
//   if (!r.weights) { /* fall back to the interpreter; r.reason says why */ }
//   FastEncoder encoder(std::move(*r.weights));
//   // two sequences of 3 and 2 tokens:
//   std::vector<int64_t> ids{101, 7592, 102, 101, 102}, types(5, 0), offsets{0, 3, 5};
//   std::vector<float> out(5 * encoder.config().hidden);
//   encoder.run(ids, types, offsets, out);  // out row t = hidden state of token t
//
// Packed batch: S sequences laid end to end, T tokens in all; offsets[s] .. offsets[s+1] are the
// tokens of sequence s (offsets has S + 1 entries, offsets[0] = 0, non-decreasing, offsets[S] = T).
// Position ids restart at 0 in every sequence. There is no padding and no mask: each token attends
// to the tokens of its own sequence only, which is what the ONNX graph computes for the real tokens
// of a padded batch (masked keys get exp(fill) = 0). Empty sequences are allowed (no rows).
//
// Compute: the linear layers run once over all T tokens (M = T or a chunk): fp32 weights through
// kernels::Matmul, encoded weights (int8, q4, fp16; encoder_weights.h) through one
// kernels::EncodedLinear per layer made at construction (the fast implementation, or the scalar
// reference with kernels::Implementation::reference). int8 layers quantize the activations per token (the
// EncodedLinear int8 contract), not per tensor as ONNX Runtime's DynamicQuantizeLinear does, so a
// text's vector does not depend on the other texts of its batch;
// attention runs per (sequence, head) spread over kernels::threads_get() threads (the
// kernels::attention_kernels() loops for short sequences, gemms for long ones:
// FastEncoderOptions::attention_gemm_min_len); residual + bias + LayerNorm and bias + GELU are fused
// row kernels (kernels::row_kernels()). Row kernels and attention follow kernels/dispatch.h's
// choice (LEANEMBED_ISA, kernels_force_isa) at each run; encoded layers the one made at construction. The hidden state lives in the caller's `out`.
//
// Memory: besides the weights (views, see encoder_weights.h) a run uses one arena of exactly
// planned_bytes(S, T, Lmax) bytes (memory_plan.h has the formula); nothing else is allocated by
// this code during a run once the arena is there. With Options::keep_arena the arena is kept for
// the next run and reallocated only when a run needs more (to exactly that size); otherwise it is
// freed before run() returns. The oneDNN matmul may allocate small descriptors per call (see
// kernels/README.md); the reference matmul allocates nothing.
//
// Threading: one FastEncoder serves one call at a time; run(), planned_bytes() and
// release_arena() lock an internal mutex, so concurrent calls are safe but serialised. For
// parallel requests use one FastEncoder per worker (they can share the same EncoderWeights views).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "kernels/encoded_linear.h"
#include "kernels/kernels.h"
#include "runtime/encoder/encoder_weights.h"
#include "runtime/encoder/memory_plan.h"

namespace leanembed::runtime::encoder {

struct FastEncoderOptions {
  bool keep_arena = true;  // keep the arena between runs
  // The linear layers' kernels: fast = oneDNN's matmul for fp32 layers and the fast EncodedLinear for
  // encoded ones; reference = the plain-loop matmul and the reference EncodedLinear (tests).
  kernels::Implementation implementation = kernels::Implementation::fast;
  int64_t chunk_tokens = 256;  // rows per attention-output/FFN chunk; 0 = all T (smaller chunks run slower gemms)
  // Sequences at least this long compute attention with two gemms of the Matmul (one Matmul object
  // per thread); shorter ones with the register-blocked loops of kernels/attention.h, which win below
  // about 48 tokens (one call costs less than the gemm's set-up). 0 = always gemms.
  int64_t attention_gemm_min_len = 48;
  // Runs of fewer real tokens than this use one thread (the calling one) whatever the thread
  // setting: under a passive wait policy every parallel region must wake the pool, and for small
  // runs that costs more than a second core gives (q8 MiniLM, one sentence on 2 cores: 2.9 ms
  // instead of 1.5). A text's vector does not depend on the thread count, so not on this either.
  // -1 = automatic: when kernels::pool_threads_sleep(), the feed-forward input layers' kernel's
  // EncodedLinear::parallel_min_rows() (kFloatParallelMinTokens for fp32 layers; 0 with
  // Implementation::reference), else 0. 0 = never.
  int64_t parallel_min_tokens = -1;
};

// FastEncoderOptions::parallel_min_tokens's automatic value for fp32 feed-forward layers (oneDNN's
// matmul) under a passive wait policy: fp32 MiniLM on 2 passive threads is even with one thread for
// one sentence of ~23 tokens and ahead from two (src/kernels/README.md "Small runs on one thread").
inline constexpr int64_t kFloatParallelMinTokens = 32;

class FastEncoder {
 public:
  // Takes the weights (views stay valid through their owners). Throws Error(invalid_argument) if
  // the config is inconsistent (heads * head_size != hidden, empty tables ...).
  explicit FastEncoder(EncoderWeights weights, FastEncoderOptions options = {});
  ~FastEncoder();
  FastEncoder(const FastEncoder&) = delete;
  FastEncoder& operator=(const FastEncoder&) = delete;

  const EncoderConfig& config() const { return weights_.config; }
  const EncoderWeights& weights() const { return weights_; }

  // Bytes of weight data this object and its weights hold beyond the views of the model's bytes:
  // the EncodedLinears' owned_bytes() (packed / reordered weights, column sums) plus
  // weights().bytes_copied (aligned or widened vectors). Constant after construction.
  std::size_t owned_weight_bytes() const { return owned_weight_bytes_; }
  // The EncodedLinear implementations in use, e.g. "int8-onednn" (distinct names joined by ", ";
  // "matmul" for fp32 layers through kernels::Matmul).
  const std::string& linear_kernels() const { return linear_kernels_; }

  // FastEncoderOptions::parallel_min_tokens in effect (the automatic value resolved at construction).
  int64_t parallel_min_tokens() const { return parallel_min_tokens_; }
  // The threads a run of this many real tokens uses: 1 below parallel_min_tokens(), else
  // kernels::threads_get() now.
  int run_threads(int64_t tokens) const;

  // The arena bytes a run of this batch shape uses (with run_threads(total_tokens) threads).
  std::size_t planned_bytes(int64_t sequences, int64_t total_tokens, int64_t max_len) const;
  MemoryPlan plan(int64_t sequences, int64_t total_tokens, int64_t max_len) const;

  // ids, type_ids: size total_tokens (type_ids may be empty = all 0); offsets: size sequences + 1;
  // out: size total_tokens * hidden, overwritten with last_hidden_state rows.
  // Throws Error(invalid_argument) — before computing anything — when the sizes disagree, offsets
  // are not as described, a token id is outside [0, vocab), a type id outside [0, type_vocab), or a
  // sequence is longer than max_positions; Error(out_of_memory) if the arena cannot be allocated;
  // Error(io) if the word table has a row source (encoder_weights.h) and the file cannot be read.
  void run(std::span<const int64_t> ids, std::span<const int64_t> type_ids, std::span<const int64_t> offsets,
           std::span<float> out);

  // Bytes of the arena held now (0 after a run with keep_arena off, or after release_arena()).
  std::size_t arena_bytes() const;
  void release_arena();

 private:
  struct ArenaDeleter {
    void operator()(std::byte* p) const;
  };
  MemoryPlan plan_locked(const BatchShape& shape) const;
  std::unique_ptr<kernels::Matmul> make_matmul() const;
  // x = word + token-type + position rows of every token (the embeddings' sum, before its LayerNorm).
  void sum_embeddings(std::span<const int64_t> ids, std::span<const int64_t> type_ids, std::span<const int64_t> offsets,
                      float* x) const;
  // The six linear products of a layer: null where the weight is fp32 (kernels::Matmul runs it).
  struct LayerLinears {
    std::unique_ptr<kernels::EncodedLinear> query, key, value, attention_output, ffn_in, ffn_out;
  };
  void run_layer(const EncoderLayerWeights& layer, LayerLinears& encoded, const MemoryPlan& plan,
                 std::span<const int64_t> offsets, float* x, std::byte* arena);
  // y = x W (+ bias if with_bias) over n rows through `encoded` or the Matmul; scratch planned for the slot.
  void linear(const LinearWeights& w, kernels::EncodedLinear* encoded, int64_t n, const float* x, int64_t ldx,
              float* y, int64_t ldy, bool with_bias, std::byte* scratch, std::size_t scratch_size);
  std::size_t linear_scratch(LinearSlot slot, int64_t m) const;

  EncoderWeights weights_;
  FastEncoderOptions options_;
  std::unique_ptr<kernels::Matmul> matmul_;
  std::vector<LayerLinears> encoded_;  // one per layer
  std::size_t owned_weight_bytes_ = 0;
  std::string linear_kernels_;
  int64_t parallel_min_tokens_ = 0;
  std::vector<std::unique_ptr<kernels::Matmul>> attention_matmuls_;  // one per attention thread (>= 1)
  mutable std::mutex mutex_;
  std::unique_ptr<std::byte, ArenaDeleter> arena_;
  std::size_t arena_size_ = 0;
};

}  // namespace leanembed::runtime::encoder
