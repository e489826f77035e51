// UTF-8 validation and the U+FFFD policy (maximal subparts, as Rust's String::from_utf8_lossy).
#include <gtest/gtest.h>

#include "tokenizer/utf8.h"

namespace leanembed::tokenizer {
namespace {

const std::string fffd = "\xEF\xBF\xBD";

std::string lossy(const std::string& s) {
  std::string out;
  utf8_append_lossy(s, out);
  return out;
}

TEST(Utf8, ValidTextIsUnchanged) {
  for (std::string s : {std::string(""), std::string("plain ascii"), std::string("caf\xC3\xA9"),
                        std::string("\xE4\xB8\xAD\xE6\x96\x87"), std::string("\xF0\x9F\x91\x8D"),
                        std::string("\xF4\x8F\xBF\xBF"), std::string("a\0b", 3)}) {
    EXPECT_EQ(utf8_valid_prefix(s), s.size());
    EXPECT_EQ(lossy(s), s);
  }
}

// Expected values worked out by hand from Unicode Table 3-7 (well-formed byte sequences).
TEST(Utf8, OneReplacementPerMaximalSubpart) {
  EXPECT_EQ(lossy("\xFF"), fffd);
  EXPECT_EQ(lossy("\xC3"), fffd);                                     // truncated 2-byte
  EXPECT_EQ(lossy("\xC3\x28"), fffd + "(");                           // bad continuation
  EXPECT_EQ(lossy("\xE2\x82"), fffd);                                 // truncated 3-byte: one subpart
  EXPECT_EQ(lossy("\xF0\x9F\x98"), fffd);                             // truncated 4-byte: one subpart
  EXPECT_EQ(lossy("\xF0\x9F\x98x"), fffd + "x");
  EXPECT_EQ(lossy("\xED\xA0\x80"), fffd + fffd + fffd);               // surrogate: ED then A0 is not allowed
  EXPECT_EQ(lossy("\xE0\x80\xAF"), fffd + fffd + fffd);               // overlong 3-byte
  EXPECT_EQ(lossy("\xC0\xAF"), fffd + fffd);                          // C0 never valid
  EXPECT_EQ(lossy("\xF0\x80\x80\x80"), fffd + fffd + fffd + fffd);    // overlong 4-byte
  EXPECT_EQ(lossy("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);    // above U+10FFFF
  EXPECT_EQ(lossy("\xF8\x88\x80\x80\x80"), fffd + fffd + fffd + fffd + fffd);
  EXPECT_EQ(lossy("a\x80" "b"), "a" + fffd + "b");
  EXPECT_EQ(lossy("caf\xE9!"), "caf" + fffd + "!");
  EXPECT_EQ(utf8_valid_prefix("abc\xFF"), 3u);
  EXPECT_EQ(utf8_valid_prefix("abcdefghij\xC3"), 10u);
}

TEST(Utf8, DecodeAndEncodeRoundTrip) {
  for (char32_t c : {char32_t(0), char32_t('A'), char32_t(0x7F), char32_t(0x80), char32_t(0x7FF), char32_t(0x800),
                     char32_t(0xFFFD), char32_t(0xFFFF), char32_t(0x10000), char32_t(0x10FFFF)}) {
    std::string s;
    utf8_append(c, s);
    EXPECT_EQ(utf8_valid_prefix(s), s.size());
    std::size_t i = 0;
    EXPECT_EQ(utf8_decode(s, i), c);
    EXPECT_EQ(i, s.size());
  }
}

}  // namespace
}  // namespace leanembed::tokenizer
