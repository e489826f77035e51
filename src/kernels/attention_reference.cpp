// Attention of one head (attention.h) for baseline x86-64: the loops of attention_loops.h compiled
// without extension flags — the reference table, and what runs under LEANEMBED_ISA=ref.
#include "kernels/attention_loops.h"
#include "kernels/dispatch.h"

namespace leanembed::kernels {

int64_t attention_scratch_floats(int64_t L, int64_t d) {
  const int64_t Lp = (L + kAttentionLanes - 1) / kAttentionLanes * kAttentionLanes;
  return (L + d) * Lp;
}

const AttentionKernels& attention_kernels() { return *kernel_config().attention; }

const AttentionKernels& attention_kernels_reference() {
  static constexpr AttentionKernels table{"ref", attention_head_loops};
  return table;
}

}  // namespace leanembed::kernels
