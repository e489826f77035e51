// Attention of one head (attention.h): the loops of attention_loops.h compiled with -mavx512f (see
// CMakeLists.txt) — the avx512 table. dispatch.cpp calls into it only after its CPU check.
#include "kernels/attention_loops.h"

namespace leanembed::kernels {

const AttentionKernels& attention_kernels_avx512() {
  static constexpr AttentionKernels table{"avx512", attention_head_loops};
  return table;
}

}  // namespace leanembed::kernels
