// Added tokens (special tokens such as [CLS], [SEP], [MASK] and user-added tokens) and the
// splitting of a text around them, as the Rust library's AddedVocabulary::find_matches does:
// leftmost-longest, non-overlapping matches (Aho-Corasick semantics), then the single_word,
// lstrip and rstrip rules.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace leanembed::tokenizer {

struct AddedToken {
  std::string content;
  std::int64_t id = 0;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

class AddedTokenMatcher {
 public:
  // `patterns[i]` is the text to find for `tokens[i]` (its content, or its normalized content).
  // Empty patterns are ignored. The tokens must outlive the matcher.
  void build(const std::vector<const AddedToken*>& tokens, const std::vector<std::string>& patterns);
  bool empty() const { return patterns_.empty(); }

  // Splits `text` into consecutive pieces, calling on_piece(begin, end, token) for each, where
  // token is the matched AddedToken or nullptr for text between matches. Pieces are never empty;
  // with rstrip a token piece may overlap the next one, exactly as in the Rust library.
  // on_piece returns false to stop early. Time: O(text size x patterns sharing a first byte x
  // their length) — linear for a fixed tokenizer.
  template <class OnPiece>
  void split(std::string_view text, OnPiece&& on_piece) const;

 private:
  struct Pattern {
    std::string text;
    const AddedToken* token;
  };
  // Position and pattern of the leftmost-longest match at or after `from`, or false.
  bool find(std::string_view text, std::size_t from, std::size_t& begin, const Pattern*& pattern) const;

  std::vector<Pattern> patterns_;                    // sorted by first byte, then longest first
  std::array<std::uint32_t, 257> first_byte_begin_{};  // patterns_ index range per first byte
  int single_first_byte_ = -1;                         // the only first byte, if just one (memchr)
};

// Helpers shared with the loader: the Unicode rules find_matches uses on raw text.
bool ends_with_word_char(std::string_view text);
bool starts_with_word_char(std::string_view text);
std::size_t trailing_whitespace_begin(std::string_view text);  // start of the final \s* run
std::size_t leading_whitespace_end(std::string_view text);     // end of the initial \s* run

template <class OnPiece>
void AddedTokenMatcher::split(std::string_view text, OnPiece&& on_piece) const {
  if (text.empty()) return;
  std::size_t start_offset = 0, search_from = 0;
  std::size_t begin;
  const Pattern* pattern;
  while (!patterns_.empty() && search_from < text.size() && find(text, search_from, begin, pattern)) {
    std::size_t start = begin, stop = begin + pattern->text.size();
    search_from = stop;  // the automaton resumes after the match, kept or not
    const AddedToken& token = *pattern->token;
    if (token.single_word) {
      bool start_space = start == 0 || !ends_with_word_char(text.substr(0, start));
      bool stop_space = stop == text.size() || !starts_with_word_char(text.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (token.lstrip) {
      // max(start of the whitespace before the match, start_offset): scan only down to start_offset.
      if (start > start_offset) {
        start = start_offset + trailing_whitespace_begin(text.substr(start_offset, start - start_offset));
      }
    }
    if (token.rstrip) stop += leading_whitespace_end(text.substr(stop));
    if (start_offset < start && !on_piece(start_offset, start, static_cast<const AddedToken*>(nullptr))) return;
    if (start < stop && !on_piece(start, stop, &token)) return;
    start_offset = stop;
  }
  if (start_offset < text.size()) on_piece(start_offset, text.size(), static_cast<const AddedToken*>(nullptr));
}

}  // namespace leanembed::tokenizer
