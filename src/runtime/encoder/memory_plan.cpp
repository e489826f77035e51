#include "runtime/encoder/memory_plan.h"

#include <algorithm>
#include <limits>
#include <string>

#include "kernels/attention.h"
#include "leanembed/error.h"

namespace leanembed::runtime::encoder {

const char* buffer_name(Buffer b) {
  switch (b) {
    case Buffer::qkv: return "qkv";
    case Buffer::attention_scratch: return "attention_scratch";
    case Buffer::attention_output: return "attention_output";
    case Buffer::ffn_hidden: return "ffn_hidden";
    case Buffer::ffn_out: return "ffn_out";
    case Buffer::scratch_qkv: return "scratch_qkv";
    case Buffer::scratch_attention_output: return "scratch_attention_output";
    case Buffer::scratch_ffn_in: return "scratch_ffn_in";
    case Buffer::scratch_ffn_out: return "scratch_ffn_out";
    case Buffer::scaled_qkv_input: return "scaled_qkv_input";
    case Buffer::scaled_ffn_input: return "scaled_ffn_input";
  }
  return "?";
}

namespace {

constexpr std::size_t kAlign = 64;
constexpr int kSteps = 4;

std::size_t round_up(std::size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// a * b * ... in bytes of floats, refusing overflow.
std::size_t float_bytes(std::initializer_list<int64_t> factors) {
  std::size_t n = sizeof(float);
  for (int64_t f : factors) {
    if (f < 0) throw Error(ErrorCode::invalid_argument, "memory plan: negative size");
    if (f != 0 && n > std::numeric_limits<std::size_t>::max() / 2 / static_cast<std::size_t>(f))
      throw Error(ErrorCode::invalid_argument, "memory plan: buffer size overflows");
    n *= static_cast<std::size_t>(f);
  }
  return n;
}

}  // namespace

LinearScratchBytes matmul_scratch(const EncoderConfig& c, const kernels::Matmul& matmul) {
  const int64_t H = c.hidden, F = c.ffn;
  return [&matmul, H, F](LinearSlot slot, int64_t m) -> std::size_t {
    switch (slot) {
      case LinearSlot::qkv: return matmul.scratch_bytes(m, H, H, false, false);
      case LinearSlot::attention_output: return matmul.scratch_bytes(m, H, H, false, false);
      case LinearSlot::ffn_in: return matmul.scratch_bytes(m, F, H, false, false);
      case LinearSlot::ffn_out: return matmul.scratch_bytes(m, H, F, false, false);
    }
    return 0;
  };
}

MemoryPlan plan_encoder_memory(const EncoderConfig& c, const BatchShape& shape, int threads, int64_t chunk_tokens,
                               const LinearScratchBytes& linear_scratch, const kernels::Matmul* attention_matmul,
                               int64_t attention_gemm_min_len) {
  if (shape.sequences < 0 || shape.tokens < 0 || shape.max_len < 0 || threads < 1 || chunk_tokens < 0)
    throw Error(ErrorCode::invalid_argument,
                "memory plan: sequences " + std::to_string(shape.sequences) + ", tokens " + std::to_string(shape.tokens) +
                    ", max_len " + std::to_string(shape.max_len) + ", threads " + std::to_string(threads) +
                    " (all must be >= 0, threads >= 1)");
  const int64_t T = shape.tokens, H = c.hidden, F = c.ffn, L = shape.max_len;
  const int64_t C = chunk_tokens == 0 ? T : std::min(T, chunk_tokens);
  MemoryPlan plan;
  plan.shape = shape;
  plan.threads = threads;
  plan.chunk = C;
  std::size_t gemm_scratch = 0;  // the attention gemms' scratch, for every length they may see
  if (attention_matmul)
    for (int64_t len = std::max<int64_t>(attention_gemm_min_len, 1); len <= L; ++len)
      gemm_scratch = std::max({gemm_scratch, attention_matmul->scratch_bytes(len, len, c.head_size, false, true),
                               attention_matmul->scratch_bytes(len, c.head_size, len, false, false)});
  plan.attention_gemm_scratch_offset = round_up(float_bytes({kernels::attention_scratch_floats(L, c.head_size)}));
  plan.attention_slice_bytes = plan.attention_gemm_scratch_offset + round_up(gemm_scratch);
  if (plan.attention_slice_bytes > std::numeric_limits<std::size_t>::max() / 2 / static_cast<std::size_t>(threads))
    throw Error(ErrorCode::invalid_argument, "memory plan: attention scratch overflows");

  struct Need {
    Buffer buffer;
    std::size_t bytes;
    int first, last;  // steps it is live in
  };
  const Need needs[kBufferCount] = {
      {Buffer::qkv, float_bytes({T, 3, H}), 0, 2},
      {Buffer::attention_scratch, plan.attention_slice_bytes * static_cast<std::size_t>(threads), 1, 1},
      {Buffer::attention_output, float_bytes({C, H}), 2, 2},
      {Buffer::ffn_hidden, float_bytes({C, F}), 3, 3},
      {Buffer::ffn_out, float_bytes({C, H}), 3, 3},
      {Buffer::scratch_qkv, linear_scratch(LinearSlot::qkv, T), 0, 0},
      {Buffer::scratch_attention_output, linear_scratch(LinearSlot::attention_output, C), 2, 2},
      {Buffer::scratch_ffn_in, linear_scratch(LinearSlot::ffn_in, C), 3, 3},
      {Buffer::scratch_ffn_out, linear_scratch(LinearSlot::ffn_out, C), 3, 3},
      {Buffer::scaled_qkv_input, c.scaled_inputs ? float_bytes({T, H}) : 0, 0, 0},
      {Buffer::scaled_ffn_input, c.scaled_inputs ? float_bytes({C, H}) : 0, 3, 3},
  };
  if (T == 0) {  // nothing runs
    for (const Need& n : needs) plan.bytes[static_cast<int>(n.buffer)] = 0;
    return plan;
  }

  // Greedy placement, largest first: the lowest offset that overlaps no placed buffer whose lifetime
  // overlaps this one's.
  int order[kBufferCount];
  for (int i = 0; i < kBufferCount; ++i) order[i] = i;
  std::sort(order, order + kBufferCount, [&](int a, int b) { return needs[a].bytes > needs[b].bytes; });
  bool placed[kBufferCount] = {};
  for (int oi = 0; oi < kBufferCount; ++oi) {
    const Need& n = needs[order[oi]];
    const int id = static_cast<int>(n.buffer);
    plan.bytes[id] = n.bytes;
    const std::size_t size = round_up(n.bytes);
    std::size_t offset = 0;
    for (bool moved = true; moved && size > 0;) {
      moved = false;
      for (int j = 0; j < kBufferCount; ++j) {
        if (!placed[j]) continue;
        const Need& o = needs[j];
        const int oid = static_cast<int>(o.buffer);
        bool same_time = n.first <= o.last && o.first <= n.last;
        std::size_t o_begin = plan.offset[oid], o_end = o_begin + round_up(o.bytes);
        if (same_time && o_end > o_begin && offset < o_end && o_begin < offset + size) {
          offset = o_end;
          moved = true;
        }
      }
    }
    plan.offset[id] = offset;
    placed[order[oi]] = true;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + size);
  }
  for (int step = 0; step < kSteps; ++step) {
    std::size_t live = 0;
    for (const Need& n : needs)
      if (n.first <= step && step <= n.last) live += round_up(n.bytes);
    plan.live_peak_bytes = std::max(plan.live_peak_bytes, live);
  }
  return plan;
}

}  // namespace leanembed::runtime::encoder
