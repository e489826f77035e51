#include "tokenizer/utf8.h"

#include <cstring>

namespace leanembed::tokenizer {
namespace {

// Length of the well-formed sequence at p[0..n), or 0 if p starts an ill-formed subsequence;
// in that case *subpart gets the length of its maximal subpart (>= 1) — the longest prefix that
// could still have begun a well-formed sequence (Unicode Table 3-7).
std::size_t sequence_length(const unsigned char* p, std::size_t n, std::size_t* subpart) noexcept {
  unsigned char b0 = p[0];
  std::size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *subpart = 1;
    return 0;
  }
  std::size_t k = 1;
  for (; k < need; ++k) {
    if (k >= n) break;
    unsigned char b = p[k];
    bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) break;
  }
  if (k == need) return need;
  *subpart = k;
  return 0;
}

}  // namespace

std::size_t utf8_valid_prefix(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size(), i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    if (p[i] < 0x80) { ++i; continue; }
    std::size_t subpart = 0;
    std::size_t len = sequence_length(p + i, n - i, &subpart);
    if (len == 0) return i;
    i += len;
  }
  return n;
}

void utf8_append_lossy(std::string_view text, std::string& dst) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size(), i = 0;
  while (i < n) {
    std::size_t subpart = 0;
    std::size_t len = sequence_length(p + i, n - i, &subpart);
    if (len) {
      dst.append(text.data() + i, len);
      i += len;
    } else {
      dst.append("\xEF\xBF\xBD", 3);
      i += subpart;
    }
  }
}

}  // namespace leanembed::tokenizer
