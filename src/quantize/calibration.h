// Activation statistics for the quantizer: the fp32 model is run through the interpreter (the
// spec-following reference path) on a few token sequences and, for chosen values (the inputs of
// the weight MatMuls), the per-channel mean square and maximum magnitude over the real tokens are
// kept. quantize.cpp uses them to weigh the weight search and to smooth activations.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "leanembed/tokenizer.h"
#include "onnx/model.h"

namespace leanembed::quantize {

struct ChannelStats {
  std::vector<float> mean_square;  // per channel (the value's last axis): E[x^2] over real tokens
  std::vector<float> max_abs;      // per channel: max |x|
  std::vector<float> rows;         // with keep_rows: every real token's vector, tokens * channels
};

// Runs `model` on `sequences` (token ids; batches of 8 padded with id 0 / attention_mask 0) and
// returns the stats of each of `values` (names of float tensors whose last axis is the channel).
// Rows of padding are left out when the value is [batch, length, channels]. Throws what the
// interpreter throws (Error(unsupported) for a graph it cannot run) and Error(invalid_argument) for
// empty sequences or a value that is not float32.
// With keep_rows, each value's real-token rows are kept too (for GPTQ's X^T X).
// Memory: the interpreter's intermediates for one batch of 8 plus the requested values; with
// keep_rows also (total tokens) * channels floats per value (MiniLM-L6, ~400 tokens: ~25 MB).
std::map<std::string, ChannelStats> activation_stats(const onnx::Model& model, const std::vector<std::string>& values,
                                                     std::span<const std::vector<int64_t>> sequences,
                                                     bool keep_rows = false);

// Built-in calibration text: varied English sentences (plain prose, lists, code-like and numeric
// text), written for this project. The caller tokenizes them with the model's tokenizer.
std::span<const std::string_view> calibration_sentences();

// calibration_sentences() as token ids of `tokenizer` (with its special tokens), each cut at
// max_length tokens.
std::vector<std::vector<int64_t>> calibration_ids(const Tokenizer& tokenizer, std::size_t max_length = 128);

}  // namespace leanembed::quantize
