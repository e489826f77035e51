#include "adversarial_texts.h"

#include <cstdint>

namespace leanembed::test {
namespace {

std::string utf8(char32_t c) {
  std::string s;
  if (c < 0x80) {
    s += char(c);
  } else if (c < 0x800) {
    s += char(0xC0 | (c >> 6));
    s += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += char(0xE0 | (c >> 12));
    s += char(0x80 | ((c >> 6) & 0x3F));
    s += char(0x80 | (c & 0x3F));
  } else {
    s += char(0xF0 | (c >> 18));
    s += char(0x80 | ((c >> 12) & 0x3F));
    s += char(0x80 | ((c >> 6) & 0x3F));
    s += char(0x80 | (c & 0x3F));
  }
  return s;
}

std::string repeat(const std::string& s, int n) {
  std::string r;
  for (int i = 0; i < n; ++i) r += s;
  return r;
}

// Small deterministic generator (the standard distributions are not portable).
struct Lcg {
  std::uint64_t state;
  std::uint32_t next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::uint32_t>(state >> 33);
  }
  std::uint32_t below(std::uint32_t n) { return next() % n; }
};

const std::vector<std::string>& fragments() {
  static const std::vector<std::string> f = {
      // accents and combining marks
      "Café", "naïve", "résumé", "ÀÉÎÕÜ àéîõü", "Ångström", "\u212B", "e\u0301", "a\u0316\u0301",
      "o\u0301\u0316\u0323", "\u01D5", "\u1F82", "\u0301start", "ﬁ ﬂ", "Zürich Straße", "crème brûlée",
      "ǅ ǆ Ǆ", "\u05E9\u05B8\u05C1\u05DC\u05D5\u05B9\u05DD", "\u0E01\u0E34\u0E4A", "क्षत्रिय",
      // CJK
      "中文字符测试", "日本語のテキスト", "한국어 텍스트", "\U00020000\U00020001\U0002A6D6", "\U0002A700",
      "\U0002B820\U0002B920\U0002CEAF\U0002CEB0", "㐀㐁", "豈更", "\U0002F800", "\U00030000", "ｱｲｳ ＡＢＣ",
      // emoji
      "👍", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇫🇷🇩🇪", "1️⃣", "😀😃😄",
      // zero-width, controls, spaces
      "a\u200Bb", "\u200C\u200D", "\uFEFFbom", "x\u00ADy", "\x01\x02\x03", "\x7F", "\x0B\x0C", "\u0085",
      "\x1C\x1D\x1E\x1F", "\t\n\r", "a\u00A0b", "\u202F", "\u3000", "\u2009thin", "\u1680", "\u2028\u2029",
      "\u061C", "\u2066rtl\u2069", "\uE000\uF8FF", "\U000F0000", "\uFFFD", std::string("\0nul", 4),
      // long words and punctuation
      repeat("a", 99), repeat("a", 100), repeat("a", 101), repeat("supercalifragilistic", 6),
      repeat("é", 101), repeat("x", 250), "!!!???...---", "«»„“”‘’", "(((())))", "a.b,c;d:e", "$100 + 5% = ~",
      "^_^ `code` |pipe| <tag>", "###", "##ing", "C++ / C# / F#", "https://example.com/path?q=1&x=y#frag",
      "user@example.org", "3.14159 1,000,000 1e-9", "—–‐‑‒―", "¿¡", "…", "‼⁉", "§¶†‡", "\u2E52\u2E43",
      // mixed scripts
      "Привет мир", "Ελληνικά κείμενα", "עברית", "العربية", "हिन्दी", "ไทย", "ქართული", "Հայերեն",
      "ᏣᎳᎩ", "ትግርኛ", "Tiếng Việt", "ꓘ", "\U00010D50\U00010D51",
      // Greek sigma and Turkish I
      "ΟΔΟΣ ΟΔΥΣΣΕΥΣ", "σς Σ", "ΣΑΣ", "İstanbul", "DİYARBAKIR", "ıi İI", "\u0130\u0301",
      // special tokens in text
      "[SEP]", "hello[SEP]world", "[CLS][MASK]", "[sep]", "[ SEP ]", "[SEP", "[[SEP]]", "x[UNK]y", "[PAD]",
      "[MASK]ed", " [SEP] ", "[SEP][SEP]", "[UNK]",
      // Unicode-version corner cases (tables in unicode_classes.cpp)
      "\u1734", "\U00013430x", "\uA7CB\uA7DC", "\U00011938", "\u08D4x", "\u166D", "\U000111C9", "\U00016FF0",
      "\u1C89", "\U00010D50",
      // numbers and ordinary text
      "The quick brown fox jumps over the lazy dog.", "It's 5 o'clock; don't be late!", "HELLO World",
      "unaffable", "tokenization", "embeddings", "GPU-accelerated", "e-mail", "COVID-19", "don’t",
  };
  return f;
}

const std::vector<std::string>& invalid_utf8() {
  static const std::vector<std::string> v = {
      "\xFF", "\xC3", "\xC3\x28", "\xED\xA0\x80", "\xF0\x9F\x98", "a\x80" "b", "\xE0\x80\xAF", "[SE\xFFP]",
      "\xF4\x90\x80\x80", "\xC0\xAF", "\xF0\x80\x80\x80", "caf\xE9", "\xE2\x82", "\xF8\x88\x80\x80\x80",
  };
  return v;
}

const std::vector<std::string>& separators() {
  static const std::vector<std::string> s = {" ", "", "  ", "\t", "\n", "\u00A0", "-", ".", "\u3000", "\u200B", "[SEP]"};
  return s;
}

// A code point from a range picked for being interesting to the tokenizer.
char32_t interesting_code_point(Lcg& rng) {
  static const char32_t ranges[][2] = {
      {0x20, 0x7E},       {0x00, 0x1F},       {0x80, 0x24F},      {0x300, 0x36F},     {0x370, 0x3FF},
      {0x400, 0x4FF},     {0x590, 0x6FF},     {0x900, 0x97F},     {0x1100, 0x11FF},   {0x1AB0, 0x1AFF},
      {0x1DC0, 0x1DFF},   {0x2000, 0x206F},   {0x2E00, 0x2E7F},   {0x3000, 0x30FF},   {0x3400, 0x4DBF},
      {0x4E00, 0x9FFF},   {0xA700, 0xA7FF},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFB00, 0xFDFF},
      {0xFE00, 0xFE0F},   {0xFF00, 0xFFEF},   {0x10D00, 0x10D8F}, {0x11000, 0x11FFF}, {0x13430, 0x1345F},
      {0x16E40, 0x16FFF}, {0x1D100, 0x1D1FF}, {0x1E000, 0x1E9FF}, {0x1F300, 0x1FAFF}, {0x20000, 0x2FA1F},
      {0xE0000, 0xE007F}, {0xF0000, 0xF00FF},
  };
  const auto& r = ranges[rng.below(sizeof(ranges) / sizeof(ranges[0]))];
  return r[0] + rng.below(r[1] - r[0] + 1);
}

}  // namespace

std::vector<std::string> adversarial_texts(int n_random) {
  std::vector<std::string> texts = {"", " ", "   \t  ", "a", "."};
  for (const auto& f : fragments()) texts.push_back(f);
  for (const auto& f : invalid_utf8()) texts.push_back(f);
  // Pathological but still small enough for the peer to answer quickly.
  texts.push_back(repeat("x", 5000));
  texts.push_back(repeat("中", 3000));
  texts.push_back("a" + repeat("\u0301", 2000));
  texts.push_back(repeat("!", 700));
  texts.push_back(repeat("word ", 700));
  texts.push_back(repeat("[SEP]", 300));
  Lcg rng{20251124};
  const auto& frag = fragments();
  const auto& bad = invalid_utf8();
  const auto& sep = separators();
  for (int i = 0; i < n_random; ++i) {
    std::string t;
    int parts = 1 + static_cast<int>(rng.below(8));
    for (int p = 0; p < parts; ++p) {
      if (p > 0) t += sep[rng.below(static_cast<std::uint32_t>(sep.size()))];
      switch (rng.below(6)) {
        case 0:
        case 1:
        case 2: t += frag[rng.below(static_cast<std::uint32_t>(frag.size()))]; break;
        case 3: t += bad[rng.below(static_cast<std::uint32_t>(bad.size()))]; break;
        default: {
          int n = 1 + static_cast<int>(rng.below(6));
          for (int k = 0; k < n; ++k) {
            char32_t c = interesting_code_point(rng);
            if (c >= 0xD800 && c <= 0xDFFF) c = 'x';
            t += utf8(c);
          }
        }
      }
    }
    texts.push_back(std::move(t));
  }
  return texts;
}

}  // namespace leanembed::test
