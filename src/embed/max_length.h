// The maximum length (in tokens, special tokens included) a model folder asks for, and which file
// said so. In this order, the first that gives a value wins:
//   1. sentence_bert_config.json "max_seq_length"      (what sentence-transformers truncates at)
//   2. tokenizer_config.json "model_max_length"         (what transformers / transformers.js truncate
//      at; the "unbounded" sentinels > 1e6 that tokenizers write are skipped)
//   3. tokenizer.json "truncation": {"max_length": N}   (what the Rust tokenizers apply when they load
//      the file; Brainy's folders have only this one: 128)
//   4. 512
// then capped by config.json's max_position_embeddings (when known, > 0). tokenizer.json's "padding"
// is never read: the engine does not pad.
#pragma once

#include <cstdint>
#include <string>

namespace leanembed {

struct MaxLength {
  int64_t tokens = 512;
  std::string source;  // e.g. "sentence_bert_config.json max_seq_length", "default, capped by ..."
};

// Files that are "" or absent are skipped. Throws Error(model_format) naming the file and field
// when a file does not parse or the field is not a number.
MaxLength decide_max_length(const std::string& sentence_bert_config, const std::string& tokenizer_config,
                            const std::string& tokenizer_json, int64_t max_position_embeddings);

}  // namespace leanembed
