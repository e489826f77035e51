// Attention of one head (attention.h): the loops of attention_loops.h compiled with -mavx2 (see
// CMakeLists.txt) — the avx2 table. dispatch.cpp calls into it only after its CPU check.
#include "kernels/attention_loops.h"

namespace leanembed::kernels {

const AttentionKernels& attention_kernels_avx2() {
  static constexpr AttentionKernels table{"avx2", attention_head_loops};
  return table;
}

}  // namespace leanembed::kernels
