// UTF-8 helpers for the tokenizer: validation, lossy repair (as Rust's String::from_utf8_lossy),
// decoding one code point from valid text, encoding one code point.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace leanembed::tokenizer {

// Length of the valid UTF-8 prefix of `text` (== text.size() when all of it is valid).
// Valid means well-formed per Unicode (no overlongs, no surrogates, nothing above U+10FFFF).
std::size_t utf8_valid_prefix(std::string_view text) noexcept;

// Appends `text` to `dst` with every maximal ill-formed subpart replaced by U+FFFD (EF BF BD):
// the "substitution of maximal subparts" practice Rust's String::from_utf8_lossy and the WHATWG
// decoder follow. `dst` grows by at most 3 bytes per input byte.
void utf8_append_lossy(std::string_view text, std::string& dst);

// Decodes the code point starting at text[i] of VALID UTF-8 text and advances i past it.
inline char32_t utf8_decode(std::string_view text, std::size_t& i) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data()) + i;
  unsigned char b0 = p[0];
  if (b0 < 0x80) { i += 1; return b0; }
  if (b0 < 0xE0) { i += 2; return (char32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F); }
  if (b0 < 0xF0) {
    i += 3;
    return (char32_t(b0 & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  i += 4;
  return (char32_t(b0 & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) |
         (p[3] & 0x3F);
}

// Number of bytes of the UTF-8 sequence whose lead byte is `b0` (valid text only).
inline std::size_t utf8_length(unsigned char b0) noexcept {
  return b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
}

// Appends the UTF-8 encoding of `cp` (a scalar value) to `dst`.
inline void utf8_append(char32_t cp, std::string& dst) {
  if (cp < 0x80) {
    dst.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    char b[2] = {char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
    dst.append(b, 2);
  } else if (cp < 0x10000) {
    char b[3] = {char(0xE0 | (cp >> 12)), char(0x80 | ((cp >> 6) & 0x3F)), char(0x80 | (cp & 0x3F))};
    dst.append(b, 3);
  } else {
    char b[4] = {char(0xF0 | (cp >> 18)), char(0x80 | ((cp >> 12) & 0x3F)),
                 char(0x80 | ((cp >> 6) & 0x3F)), char(0x80 | (cp & 0x3F))};
    dst.append(b, 4);
  }
}

}  // namespace leanembed::tokenizer
