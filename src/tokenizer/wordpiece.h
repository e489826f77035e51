// WordPiece: greedy longest-match-first segmentation of one pre-tokenized word, exactly as the
// Rust library's WordPiece model (a word whose characters exceed max_input_chars_per_word, or
// any part of which matches nothing, becomes the unknown token).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/vocab_table.h"

namespace leanembed::tokenizer {

class WordPiece {
 public:
  // `vocab`: token -> id. Throws Error(model_format) (naming `source`) if unk_token is not in it.
  WordPiece(std::vector<std::pair<std::string, std::uint32_t>> vocab, std::string unk_token,
            std::string continuing_subword_prefix, std::size_t max_input_chars_per_word,
            const std::string& source);

  // One piece of a word's segmentation: its id, and its text without the continuing prefix.
  struct Piece {
    std::int64_t id;
    std::size_t begin, end;  // byte range in the word; begin==end==0 and id==unk for [UNK]
    bool continuation;
  };
  // Segments `word` (valid UTF-8, n_chars code points) into `pieces` (cleared first).
  // Cost: at most max_key_length lookups of at most max_key_length bytes per piece.
  void tokenize(std::string_view word, std::size_t n_chars, std::vector<Piece>& pieces) const;

  std::int64_t token_to_id(std::string_view token) const { return vocab_.find(token); }
  // The token with this id, or nullptr.
  const std::string* id_to_token(std::int64_t id) const;
  std::size_t size() const { return vocab_.size(); }  // distinct tokens
  std::int64_t unk_id() const { return unk_id_; }
  const std::string& unk_token() const { return unk_token_; }
  const std::string& continuing_subword_prefix() const { return prefix_; }
  std::size_t max_input_chars_per_word() const { return max_input_chars_per_word_; }
  // Bytes held on the heap: the id-ordered entries (strings beyond the small-string buffer
  // included) and both lookup tables.
  std::size_t memory_bytes() const noexcept;

 private:
  std::vector<std::pair<std::string, std::uint32_t>> entries_;  // sorted by id
  VocabTable vocab_;         // every entry, verbatim
  VocabTable continuation_;  // entries that start with the prefix, keyed without it
  std::string unk_token_;
  std::string prefix_;
  std::size_t max_input_chars_per_word_;
  std::int64_t unk_id_ = -1;
};

}  // namespace leanembed::tokenizer
