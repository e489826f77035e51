// Matrix transposition with the element conversions a weight loader needs: a kernel family of its
// own (dispatch.h). The safetensors loader turns torch's nn.Linear weights [out, in] into the
// [in, out] layout the fast path's products read (runtime/encoder/bert_safetensors.cpp).
//
//   transpose_reference.cpp   plain loops, memcpy per element: the spec, and the `ref` table
//   transpose_avx2.cpp        8 x 8 in-register transposes (-mavx2): the `avx2` table
//
// Every function writes dst[c * rows + r] = f(src element [r, c]) for r < rows, c < cols: src is
// rows x cols row-major, dst cols x rows row-major. Only bits move (no floating-point arithmetic),
// so every table gives the same bytes, NaN payloads included. src may start at any byte address
// (tensors viewed in place in a mapped file); dst too (the tables use unaligned stores). src and dst
// must not overlap. Runs on the calling thread; allocates nothing; rows or cols 0: nothing written.
#pragma once

#include <cstddef>
#include <cstdint>

namespace leanembed::kernels {

struct TransposeKernels {
  const char* isa;  // "ref", "avx2"
  // 32-bit elements copied (F32 weights).
  void (*copy32)(const std::byte* src, int64_t rows, int64_t cols, uint32_t* dst);
  // 16-bit elements copied (F16 weights kept as binary16).
  void (*copy16)(const std::byte* src, int64_t rows, int64_t cols, uint16_t* dst);
  // bfloat16 elements widened to fp32 bits (bits << 16: exact, core/float16.h's bfloat16_to_float).
  void (*bf16_to_f32)(const std::byte* src, int64_t rows, int64_t cols, uint32_t* dst);
};

// The table in effect (kernel_config().transpose).
const TransposeKernels& transpose_kernels();

// Each ISA's table (for dispatch.cpp and the tests): the avx2 one only when cpu_has_avx2_fma().
const TransposeKernels& transpose_kernels_reference();
const TransposeKernels& transpose_kernels_avx2();

}  // namespace leanembed::kernels
