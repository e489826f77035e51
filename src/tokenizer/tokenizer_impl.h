// The loaded tokenizer's parts (shared by the loaders and the encoder).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "leanembed/tokenizer.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bert_normalizer.h"
#include "tokenizer/wordpiece.h"

namespace leanembed {

struct Tokenizer::Impl {
  // One special token the post-processor places before or after the sequence.
  struct SpecialPiece {
    std::int64_t id;
    std::string token;
    std::int64_t type_id;
  };

  std::string source;
  std::optional<tokenizer::BertNormalizer> normalizer;  // none: text is used as is
  bool bert_pre_tokenizer = false;                        // false: each piece is one word
  std::unique_ptr<tokenizer::WordPiece> model;
  std::vector<tokenizer::AddedToken> added_tokens;  // unique contents, in file order
  std::unordered_map<std::string, std::size_t> added_index;  // content -> index in added_tokens
  tokenizer::AddedTokenMatcher raw_matcher;         // normalized == false tokens, on raw text
  tokenizer::AddedTokenMatcher normalized_matcher;  // normalized == true tokens, on normalized text
  std::vector<SpecialPiece> prefix, suffix;         // post-processor: prefix + sequence + suffix
  std::int64_t sequence_type_id = 0;

  // Adds tokens as the Rust library's deserializer does (existing id if the content is already
  // known, else the next free id), then builds the matchers. Call once, after model/normalizer.
  void add_tokens(const std::vector<tokenizer::AddedToken>& tokens);
};

}  // namespace leanembed
