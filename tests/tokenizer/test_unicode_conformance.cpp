// Every code point through the BERT normalizer steps, the pre-tokenizer's classes and NFD,
// compared with the Rust library (peers/tokenizer_reference.js unicode). This is what checks the
// Unicode-version tables in src/tokenizer/unicode_classes.cpp.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "peer_reference.h"
#include "test_support.h"
#include "tokenizer/bert_normalizer.h"
#include "tokenizer/unicode_classes.h"
#include "tokenizer/utf8.h"

namespace leanembed::test {
namespace {

using namespace leanembed::tokenizer;

std::string hex_code_points(const std::string& utf8) {
  if (utf8.empty()) return "-";
  std::ostringstream s;
  s << std::hex;
  bool first = true;
  for (std::size_t i = 0; i < utf8.size();) {
    if (!first) s << '.';
    first = false;
    s << static_cast<std::uint32_t>(utf8_decode(utf8, i));
  }
  return s.str();
}

std::string our_line(char32_t c) {
  std::string text;
  utf8_append(c, text);
  auto normalized = [&](bool clean, bool chinese, bool strip, bool lower) {
    std::string out;
    BertNormalizer({clean, chinese, strip, lower}).normalize(text, out);
    return out;
  };
  auto nfd_of = [](const std::string& s) {
    std::string out;
    nfd(s, out);
    return hex_code_points(out);
  };
  std::ostringstream line;
  line << std::hex << static_cast<std::uint32_t>(c) << ' ' << hex_code_points(normalized(true, false, false, false)) << ' '
       << hex_code_points(normalized(false, false, true, false)) << ' '
       << hex_code_points(normalized(false, false, false, true)) << ' '
       << (normalized(false, true, false, false).size() > text.size() ? '1' : '0') << ' '
       << (is_whitespace(c) ? '2' : is_bert_punctuation(c) ? '3' : '1') << ' ' << nfd_of(text) << ' '
       << nfd_of("a\u0301" + text) << ' ' << nfd_of("a" + text + "\u0334");
  return line.str();
}

TEST(UnicodeConformance, EveryCodePointMatchesTheRustLibrary) {
  if (std::system("node --version > /dev/null 2>&1") != 0) FAIL() << "node is not on PATH: this test needs it";
  const std::string script = peers_dir() + "/tokenizer_reference.js";
  ASSERT_TRUE(std::filesystem::exists(script)) << "peer script missing: " << script;
  const std::string out_path = conformance_work_path("unicode_reference.txt");
  std::filesystem::remove(out_path);
  ASSERT_EQ(std::system(("node '" + script + "' unicode '" + out_path + "'").c_str()), 0) << "the peer failed";
  std::istringstream reference(read_file(out_path));
  std::size_t lines = 0, mismatches = 0;
  for (std::string expected; std::getline(reference, expected);) {
    char32_t c = static_cast<char32_t>(std::stoul(expected.substr(0, expected.find(' ')), nullptr, 16));
    std::string ours = our_line(c);
    ++lines;
    if (ours != expected && ++mismatches <= 20) ADD_FAILURE() << "peer: " << expected << "\nours: " << ours;
  }
  EXPECT_EQ(lines, 0x110000u - 0x800u);  // every scalar value
  EXPECT_EQ(mismatches, 0u);
  std::cout << "[unicode] " << lines << " code points compared, " << mismatches << " mismatches\n";
}

}  // namespace
}  // namespace leanembed::test
