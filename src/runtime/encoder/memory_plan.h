// The memory plan of one FastEncoder run: for a batch shape (S sequences, T tokens in all, the
// longest Lmax) every work buffer gets an offset in ONE arena, chosen by lifetime before the run,
// and the arena's size is known exactly. The run then allocates nothing.
//
// The run (fast_encoder.h) keeps the hidden state in the caller's output buffer [T, H]; per layer:
//   step 0  qkv = Q [T, H], K [T, H], V [T, H] = x Wq + bq, x Wk + bk, x Wv + bv (+ gemm scratch)
//   step 1  attention per (sequence, head) on `threads` threads; each thread has its own scratch
//           slice: kernels::attention_scratch_floats(Lmax, head_size) floats (scores and K^T,
//           kernels/attention.h) plus
//           the attention gemms' Matmul scratch; the context of a head overwrites that head's Q
//           columns of the Q block (Q is dead once its scores are computed)
//   step 2  for each chunk of C rows: y [C, H] = ctx Wo (the attention output projection);
//           x = LayerNorm(y + x + bo)
//   step 3  for each chunk of C rows: h [C, F] = GELU(x W1 + b1); y [C, H] = h W2;
//           x = LayerNorm(y + x + b2)
// with C = min(T, chunk_tokens) (chunk_tokens 0 = T; FastEncoder passes FastEncoderOptions::
// chunk_tokens). Buffers of
// steps 2-3 reuse qkv's bytes. Graphs that scale linear inputs per channel (config.scaled_inputs)
// add a scaled copy of x: [T, H] in step 0, [C, H] in step 3 (the attention context and the GELU
// output are scaled in place).
//
// The bound (bytes, each buffer rounded up to 64 bytes, scratch_* = the linear layers' scratch:
// Matmul::scratch_bytes for fp32 layers, EncodedLinear::scratch_bytes(m) for encoded ones, the
// largest over the layers):
//   arena = max(4 * 3TH + threads * (4 * (Lmax + d) * round16(Lmax) + attention gemm scratch),
//               4 * (3TH + CH) + scratch_attention_output,  4 * C(F + H) + scratch_ffn_in + scratch_ffn_out)
// (+ 4TH in the first term and 4CH in the last with config.scaled_inputs)
// (d = head_size; oneDNN 2.6's runtime-shape gemm books no scratch, so those terms are 0 for fp32
// layers; int8 layers need their per-token quantized activations, about m * (K + 12) bytes — see
// kernels/encoded_linear.h for each form's exact figure).
// For MiniLM (H 384, F 1536, d 32) that is about 5TH floats = 7.7 KB per token while T <= C
// (32 sentences of ~25 tokens: 6.5 MB, measured) and 3TH = 4.6 KB per token beyond; the weights
// are 90 MB.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "kernels/kernels.h"
#include "runtime/encoder/encoder_weights.h"

namespace leanembed::runtime::encoder {

struct BatchShape {
  int64_t sequences = 0;  // S
  int64_t tokens = 0;     // T, the sum of the sequence lengths
  int64_t max_len = 0;    // Lmax
};

// The work buffers of a run, in the order the plan lists them.
enum class Buffer : int {
  qkv,                // 3 x [T, H] floats (Q, K, V); Q becomes the attention context
  attention_scratch,  // threads x slices (MemoryPlan::attention_slice_bytes)
  attention_output,   // [C, H] floats: attention output projection of a chunk
  ffn_hidden,         // [C, F] floats
  ffn_out,            // [C, H] floats
  scratch_qkv,        // linear scratch of x Wq (M = T, N = H, K = H), reused for Wk and Wv
  scratch_attention_output,  // linear scratch of ctx Wo (M = C)
  scratch_ffn_in,     // linear scratch of x W1 (M = C, N = F, K = H)
  scratch_ffn_out,    // linear scratch of h W2 (M = C, N = H, K = F)
  scaled_qkv_input,   // [T, H] floats: x times the Q/K/V input scale (only with config.scaled_inputs)
  scaled_ffn_input,   // [C, H] floats: x times W1's input scale (only with config.scaled_inputs)
};
inline constexpr int kBufferCount = 11;
const char* buffer_name(Buffer b);

struct MemoryPlan {
  BatchShape shape;
  int threads = 1;                // attention threads the scratch was planned for
  int64_t chunk = 0;              // C
  std::size_t attention_slice_bytes = 0;       // per thread: own-kernel floats, then gemm scratch
  std::size_t attention_gemm_scratch_offset = 0;  // within a slice
  std::array<std::size_t, kBufferCount> offset{};  // bytes from the arena start (64-byte aligned)
  std::array<std::size_t, kBufferCount> bytes{};   // requested size (0 = unused)
  std::size_t arena_bytes = 0;    // the arena's exact size: max(offset + rounded size)
  std::size_t live_peak_bytes = 0;  // max over steps of the rounded sizes live together (a lower bound)

  std::size_t at(Buffer b) const { return offset[static_cast<int>(b)]; }
};

// The four linear products of a layer, whose scratch the plan books.
enum class LinearSlot { qkv, attention_output, ffn_in, ffn_out };

// Scratch bytes of a linear product for m rows: the largest any layer needs in that slot (a layer
// may run through kernels::Matmul or a kernels::EncodedLinear, see fast_encoder.h).
using LinearScratchBytes = std::function<std::size_t(LinearSlot slot, int64_t m)>;

// The scratch of fp32 layers that all run through `matmul`: Matmul::scratch_bytes of each product.
LinearScratchBytes matmul_scratch(const EncoderConfig& config, const kernels::Matmul& matmul);

// Plans a run of `config` on `shape` with `threads` attention threads and the linear layers'
// scratch from `linear_scratch`. chunk_tokens as above. Pure computation; allocates nothing. Throws
// Error(invalid_argument) for negative sizes or sizes whose byte counts overflow.
// `attention_matmul` (may be null) is the Matmul the attention of sequences of at least
// `attention_gemm_min_len` tokens uses; its scratch is planned per thread for every length up to Lmax.
MemoryPlan plan_encoder_memory(const EncoderConfig& config, const BatchShape& shape, int threads,
                               int64_t chunk_tokens, const LinearScratchBytes& linear_scratch,
                               const kernels::Matmul* attention_matmul = nullptr, int64_t attention_gemm_min_len = 0);

}  // namespace leanembed::runtime::encoder
