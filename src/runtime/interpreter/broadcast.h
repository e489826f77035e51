// Numpy-style broadcasting (the ONNX "multidirectional broadcasting" rule) and a walker that visits
// the output in runs of its innermost dimension, giving each input's offset and stride.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "runtime/interpreter/tensor.h"

namespace leanembed::interp {

// The broadcast shape of `a` and `b` (dims aligned from the right; equal, or one of them 1).
// Throws Error(runtime) naming both shapes when they are incompatible.
std::vector<int64_t> broadcast_shapes(std::span<const int64_t> a, std::span<const int64_t> b);

// Element strides of a row-major tensor of `shape` when read as if broadcast to `out`
// (rank(out) >= rank(shape), shapes compatible): 0 on broadcast dimensions. Size rank(out).
std::vector<int64_t> broadcast_strides(std::span<const int64_t> shape, std::span<const int64_t> out);

// Calls run(offsets, out_offset, count, steps) for every run of the innermost dimension of
// `out_shape`, in row-major order: for i in [0, count) element out_offset + i of the output reads
// element offsets[k] + i * steps[k] of input k. `strides[k]` come from broadcast_strides.
// A rank-0 output is one run of count 1; an empty output makes no call.
template <std::size_t N, typename Run>
void broadcast_for_each(std::span<const int64_t> out_shape, const std::array<std::vector<int64_t>, N>& strides,
                        Run&& run) {
  const std::size_t rank = out_shape.size();
  for (int64_t d : out_shape)
    if (d == 0) return;
  std::array<int64_t, N> steps{};
  const int64_t count = rank == 0 ? 1 : out_shape[rank - 1];
  for (std::size_t k = 0; k < N; ++k) steps[k] = rank == 0 ? 0 : strides[k][rank - 1];
  const std::size_t outer_rank = rank == 0 ? 0 : rank - 1;
  std::vector<int64_t> index(outer_rank, 0);
  std::array<int64_t, N> offsets{};
  int64_t out_offset = 0;
  for (;;) {
    run(offsets.data(), out_offset, count, steps.data());
    out_offset += count;
    // Advance the outer multi-index like an odometer, updating offsets incrementally.
    std::size_t d = outer_rank;
    for (;;) {
      if (d == 0) return;
      --d;
      if (++index[d] < out_shape[d]) {
        for (std::size_t k = 0; k < N; ++k) offsets[k] += strides[k][d];
        break;
      }
      for (std::size_t k = 0; k < N; ++k) offsets[k] -= strides[k][d] * (index[d] - 1);
      index[d] = 0;
    }
  }
}

}  // namespace leanembed::interp
