// The character classes Hugging Face tokenizers' BERT components use, reproduced exactly.
//
// The Rust library takes them from three places of different Unicode ages:
//   - Rust's std (char::is_whitespace, char::to_lowercase, char::is_alphanumeric): Unicode 16;
//   - the unicode_categories crate (is_other = Cc|Cf|Co, is_punctuation = P*, is_mark_nonspacing
//     = Mn): Unicode 8.0 tables;
//   - unicode-normalization-alignments (NFD: decompositions, canonical combining classes): old
//     tables that lack the marks and decompositions added since.
// We use utf8proc (Debian 12: 2.8.0, Unicode 15.0) plus small tables of the code points where
// those ages disagree with it. The tables were found by running every code point through the Rust
// library (peers/tokenizer_reference.js --unicode) and are checked code point by code point by
// tests/tokenizer/test_unicode_conformance.cpp; see unicode_classes.cpp.
#pragma once

#include <cstddef>

namespace leanembed::tokenizer {

// Rust's char::is_whitespace (the White_Space property; also regex \s).
bool is_whitespace(char32_t c) noexcept;
// BertNormalizer's is_control: Cc, Cf or Co (Unicode 8.0 tables), except \t \n \r.
bool is_bert_control(char32_t c) noexcept;
// BertPreTokenizer's punctuation: ASCII punctuation (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~) or a P*
// category (Unicode 8.0 tables).
bool is_bert_punctuation(char32_t c) noexcept;
// BertNormalizer's "chinese character" ranges (CJK unified ideographs, extensions A-E subsets,
// compatibility ideographs), exactly as the Rust library lists them.
bool is_chinese_char(char32_t c) noexcept;
// Mn (Unicode 8.0 tables): what strip_accents removes after NFD.
bool is_nonspacing_mark(char32_t c) noexcept;
// Canonical combining class as the Rust library's NFD sees it.
int combining_class(char32_t c) noexcept;
// Full canonical decomposition of c as the Rust library's NFD sees it, written to out (at most
// max_decomposition code points, not reordered); returns the count (1 if c does not decompose).
inline constexpr std::size_t max_decomposition = 8;
std::size_t decompose(char32_t c, char32_t* out) noexcept;
// Rust's char::to_lowercase (full mapping, may expand: U+0130 -> "i\u0307"), written to out
// (at most 3 code points); returns the count.
std::size_t to_lowercase(char32_t c, char32_t* out) noexcept;
// Regex \w (Unicode): letters, marks, decimal digits, letter numbers, connector punctuation,
// join controls, the Other_Alphabetic symbols. Used by single_word added tokens only.
bool is_word_char(char32_t c) noexcept;

}  // namespace leanembed::tokenizer
