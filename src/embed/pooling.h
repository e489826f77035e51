// Sentence vectors from token vectors: pooling over each sequence's real tokens, Matryoshka
// truncation and L2 normalisation. Works on the packed layout the engine produces (no padding).
#pragma once

#include <cstdint>
#include <span>

#include "leanembed/model_options.h"

namespace leanembed {

// hidden: packed token vectors, size offsets.back() * hidden_size; sequence s owns rows
// [offsets[s], offsets[s+1]) (each non-empty). out: size (offsets.size() - 1) * dims, where
// 0 < dims <= hidden_size keeps the first `dims` components of each pooled vector (Matryoshka).
// Sums are accumulated in double. Allocates nothing. Throws Error(invalid_argument) on bad sizes.
void pool_sequences(Pooling pooling, std::span<const float> hidden, int64_t hidden_size,
                    std::span<const int64_t> offsets, int64_t dims, std::span<float> out);

// v /= max(||v||_2, 1e-12), as torch.nn.functional.normalize (sentence-transformers' Normalize).
void l2_normalize(std::span<float> v);

}  // namespace leanembed
