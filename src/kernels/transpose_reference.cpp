// Transposition (transpose.h) in plain loops, one element at a time, read with memcpy (any byte
// address): the spec, and what runs under LEANEMBED_ISA=ref. dst is written in order; src is read
// down its columns.
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/transpose.h"

namespace leanembed::kernels {
namespace {

void copy32(const std::byte* src, int64_t rows, int64_t cols, uint32_t* dst) {
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r) std::memcpy(&dst[c * rows + r], src + 4 * (r * cols + c), 4);
}

void copy16(const std::byte* src, int64_t rows, int64_t cols, uint16_t* dst) {
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r) std::memcpy(&dst[c * rows + r], src + 2 * (r * cols + c), 2);
}

void bf16_to_f32(const std::byte* src, int64_t rows, int64_t cols, uint32_t* dst) {
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r) {
      uint16_t bits;
      std::memcpy(&bits, src + 2 * (r * cols + c), 2);
      dst[c * rows + r] = static_cast<uint32_t>(bits) << 16;
    }
}

}  // namespace

const TransposeKernels& transpose_kernels() { return *kernel_config().transpose; }

const TransposeKernels& transpose_kernels_reference() {
  static constexpr TransposeKernels table{"ref", copy32, copy16, bf16_to_f32};
  return table;
}

}  // namespace leanembed::kernels
