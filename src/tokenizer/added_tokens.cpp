#include "tokenizer/added_tokens.h"

#include <algorithm>
#include <cstring>

#include "tokenizer/unicode_classes.h"
#include "tokenizer/utf8.h"

namespace leanembed::tokenizer {

void AddedTokenMatcher::build(const std::vector<const AddedToken*>& tokens,
                              const std::vector<std::string>& patterns) {
  patterns_.clear();
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (!patterns[i].empty()) patterns_.push_back(Pattern{patterns[i], tokens[i]});
  }
  // Stable: among equal patterns the first given wins, like the automaton's lowest pattern id.
  std::stable_sort(patterns_.begin(), patterns_.end(), [](const Pattern& a, const Pattern& b) {
    auto fa = static_cast<unsigned char>(a.text[0]), fb = static_cast<unsigned char>(b.text[0]);
    if (fa != fb) return fa < fb;
    return a.text.size() > b.text.size();
  });
  std::size_t k = 0;
  for (int b = 0; b <= 256; ++b) {
    while (k < patterns_.size() && static_cast<unsigned char>(patterns_[k].text[0]) < b) ++k;
    first_byte_begin_[static_cast<std::size_t>(b)] = static_cast<std::uint32_t>(b == 256 ? patterns_.size() : k);
  }
  single_first_byte_ = -1;
  if (!patterns_.empty() && patterns_.front().text[0] == patterns_.back().text[0]) {
    single_first_byte_ = static_cast<unsigned char>(patterns_.front().text[0]);
  }
}

bool AddedTokenMatcher::find(std::string_view text, std::size_t from, std::size_t& begin,
                             const Pattern*& pattern) const {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t i = from; i < n; ++i) {
    if (single_first_byte_ >= 0) {
      const void* hit = std::memchr(bytes + i, single_first_byte_, n - i);
      if (!hit) return false;
      i = static_cast<std::size_t>(static_cast<const unsigned char*>(hit) - bytes);
    }
    unsigned char b = bytes[i];
    for (std::uint32_t k = first_byte_begin_[b]; k < first_byte_begin_[b + 1]; ++k) {
      const std::string& p = patterns_[k].text;
      if (p.size() <= n - i && std::memcmp(bytes + i, p.data(), p.size()) == 0) {
        begin = i;
        pattern = &patterns_[k];
        return true;
      }
    }
  }
  return false;
}

namespace {
// The code point that ends `text` (valid UTF-8, not empty).
char32_t last_code_point(std::string_view text) {
  std::size_t i = text.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) --i;
  return utf8_decode(text, i);
}
}  // namespace

bool ends_with_word_char(std::string_view text) {
  return !text.empty() && is_word_char(last_code_point(text));
}

bool starts_with_word_char(std::string_view text) {
  std::size_t i = 0;
  return !text.empty() && is_word_char(utf8_decode(text, i));
}

std::size_t trailing_whitespace_begin(std::string_view text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t i = end - 1;
    while (i > 0 && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) --i;
    std::size_t j = i;
    if (!is_whitespace(utf8_decode(text, j))) break;
    end = i;
  }
  return end;
}

std::size_t leading_whitespace_end(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = i;
    if (!is_whitespace(utf8_decode(text, j))) break;
    i = j;
  }
  return i;
}

}  // namespace leanembed::tokenizer
