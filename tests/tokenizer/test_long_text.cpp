// Tokenizer::shorten_partial_text: a long text fed in pieces and shortened along the way must give
// exactly the tokens of the whole text, and stay small when its bytes give few tokens.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "leanembed/tokenizer.h"
#include "test_support.h"
#include "tokenizer/unicode_classes.h"
#include "tokenizer/utf8.h"

using leanembed::Encoding;
using leanembed::Tokenizer;
namespace fs = std::filesystem;

namespace {

std::string minilm() { return leanembed::test::shared_dir() + "/models/minilm-l6-synthetic"; }

const Tokenizer& uncased() {
  static const Tokenizer t = Tokenizer::load(minilm());
  return t;
}

// The same vocabulary, cased and keeping accents (do_lower_case false): nonspacing marks are word
// characters there, not removed.
const Tokenizer& cased() {
  static const Tokenizer t = [] {
    fs::path dir = fs::path(leanembed::test::binary_dir()) / "test_long_text";
    fs::create_directories(dir);
    std::ofstream(dir / "tokenizer_config.json") << R"({"do_lower_case": false, "strip_accents": false})";
    return Tokenizer::from_vocab_txt(minilm() + "/vocab.txt", (dir / "tokenizer_config.json").string());
  }();
  return t;
}

struct Fed {
  std::string kept;
  bool done = false;
  std::size_t largest = 0;  // the most bytes kept at any time
};

// Feeds `text` in pieces of `piece` bytes as the CLI does: shortens whenever 4 KiB more arrived.
Fed feed(const Tokenizer& tok, const std::string& text, std::size_t max_length, std::size_t piece) {
  Fed f;
  std::size_t next_check = 4096;
  for (std::size_t at = 0; at < text.size() && !f.done; at += piece) {
    f.kept.append(text, at, piece);
    f.largest = std::max(f.largest, f.kept.size());
    if (f.kept.size() >= next_check) {
      f.done = tok.shorten_partial_text(f.kept, max_length);
      next_check = std::max<std::size_t>(4096, 2 * f.kept.size());
    }
  }
  if (!f.done) f.done = tok.shorten_partial_text(f.kept, max_length);
  return f;
}

void expect_same_tokens(const Tokenizer& tok, const std::string& text, std::size_t max_length, std::size_t piece,
                        const std::string& what, std::size_t kept_bound = 0) {
  const Fed f = feed(tok, text, max_length, piece);
  const Encoding whole = tok.encode(text, max_length, true);
  const Encoding shortened = tok.encode(f.kept, max_length, true);
  EXPECT_EQ(shortened.ids, whole.ids) << what << " (max_length " << max_length << ", pieces of " << piece << ")";
  if (kept_bound) {
    EXPECT_LE(f.largest, kept_bound) << what;
  }
}

std::string repeat(const std::string& s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

}  // namespace

TEST(LongText, LongLinesKeepTheirTokensAndStaySmall) {
  const std::string acute = "\xCC\x81";  // U+0301, a nonspacing mark
  const struct {
    std::string what, text;
  } cases[] = {
      {"words", repeat("hello world ", 500000)},
      {"spaces then words", std::string(3 << 20, ' ') + "hello world"},
      {"tabs and spaces then words", repeat(" \t", 1 << 20) + "hello world"},
      {"controls without a space, then a word", std::string(2 << 20, '\x01') + " hello"},
      {"controls inside a word", "ab" + std::string(1 << 20, '\x01') + "cd hello"},
      {"accents only", repeat(acute, 1 << 20)},
      {"accents then a word", repeat(acute, 1 << 20) + "hello there"},
      {"a word with a million accents", "a" + repeat(acute, 1 << 20) + "b hello"},
      {"invalid UTF-8 bytes", std::string(1 << 20, '\xff') + " hi"},
      {"a long ASCII word", std::string(2 << 20, 'x') + " hello"},
      {"a long ASCII word then an added token", std::string(2 << 20, 'x') + "[MASK] hello"},
      {"an added token broken by controls", "[MA" + std::string(1 << 20, '\x01') + "SK] hello"},
      {"CJK without spaces", repeat("\xE4\xB8\xAD\xE6\x96\x87", 500000)},
      {"punctuation", repeat(".,", 1 << 20)},
      {"NUL bytes", std::string(1 << 20, '\0') + "hello"},
  };
  for (const auto& c : cases) {
    for (std::size_t max_length : {16, 256}) {
      // The kept bytes stay within a few pieces of 64 KiB (a checked prefix grows to twice itself).
      expect_same_tokens(uncased(), c.text, max_length, 65536, "uncased: " + c.what, 4 * 65536);
      expect_same_tokens(cased(), c.text, max_length, 65536, "cased: " + c.what);
    }
  }
}

TEST(LongText, SplitUtf8SequencesArePutBackTogether) {
  // Pieces of 7 bytes cut 2-, 3- and 4-byte sequences in every way.
  const std::string text = repeat("é中😀 ", 20000) + "end";
  expect_same_tokens(uncased(), text, 256, 7, "split sequences");
  expect_same_tokens(uncased(), text, 100000, 7, "split sequences, no truncation reached");
}

// Random texts over an alphabet made of what the rules touch: cut characters, removable ones,
// letters, an added token's pieces, CJK, invalid bytes. Whatever the pieces, the tokens are the same.
TEST(LongText, RandomTextsFromTheRulesAlphabetKeepTheirTokens) {
  const std::vector<std::string> alphabet = {" ",  "  ", "\t", ".",  ",", "[",  "]",  "MASK", "[MASK]", "[UNK]",
                                             "x",  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "a", "hello", "\x01",
                                             "\xCC\x81", "\xC3\xA9", "\xE4\xB8\xAD", "\xff", "\xE2\x82", "\xA0",
                                             "\xE3\x80\x80", "\r", "\0"};
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    const std::size_t parts = 50 + rng() % 3000;
    // Long runs of one element now and then (what the compression rules act on).
    for (std::size_t k = 0; k < parts; ++k) {
      const std::string& a = alphabet[rng() % alphabet.size()];
      const std::size_t times = rng() % 8 == 0 ? 1 + rng() % 400 : 1;
      for (std::size_t t = 0; t < times; ++t) text += a;
    }
    const std::size_t max_length = trial % 3 == 0 ? 8 : trial % 3 == 1 ? 64 : 512;
    const std::size_t piece = 1 + rng() % 3000;
    const Tokenizer& tok = trial % 2 ? cased() : uncased();
    const Fed f = [&] {
      Fed fed;
      std::size_t next_check = 64;  // check often: every rule runs many times per text
      for (std::size_t at = 0; at < text.size() && !fed.done; at += piece) {
        fed.kept.append(text, at, piece);
        if (fed.kept.size() >= next_check) {
          fed.done = tok.shorten_partial_text(fed.kept, max_length);
          next_check = std::max<std::size_t>(64, 2 * fed.kept.size());
        }
      }
      if (!fed.done) tok.shorten_partial_text(fed.kept, max_length);
      return fed;
    }();
    ASSERT_EQ(tok.encode(f.kept, max_length).ids, tok.encode(text, max_length).ids)
        << "trial " << trial << ", max_length " << max_length << ", pieces of " << piece;
  }
}

// The removable class the rules use never keeps a character the normalizer would output.
TEST(LongText, EveryRemovableCharacterNormalizesToNothing) {
  const Tokenizer& tok = uncased();
  std::size_t checked = 0;
  for (char32_t c = 1; c < 0x110000; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    const bool control = c == 0xFFFD || leanembed::tokenizer::is_bert_control(c);
    const bool mark = c >= 0x300 && leanembed::tokenizer::is_nonspacing_mark(c);
    if (!(control || mark) || leanembed::tokenizer::is_whitespace(c)) continue;
    std::string s;
    leanembed::tokenizer::utf8_append(c, s);
    // "a" + c + "b" must tokenize as "ab": c vanished without splitting the word.
    ASSERT_EQ(tok.encode("a" + s + "b", 16).ids, tok.encode("ab", 16).ids) << "U+" << std::hex << static_cast<uint32_t>(c);
    ++checked;
  }
  EXPECT_GT(checked, 1000u);
}
