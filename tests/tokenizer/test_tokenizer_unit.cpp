// Hand-checked tokenizations: a tiny tokenizer.json written here, and the MiniLM vocabulary with
// expected ids read from vocab.txt's line numbers (not from the code under test).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "leanembed/error.h"
#include "leanembed/tokenizer.h"
#include "peer_reference.h"
#include "test_support.h"

namespace leanembed::test {
namespace {

std::string minilm_dir() { return shared_dir() + "/models/minilm-l6-synthetic"; }

// token -> id from vocab.txt (id = line number).
std::map<std::string, std::int64_t> minilm_vocab() {
  std::istringstream in(read_file(minilm_dir() + "/vocab.txt"));
  std::map<std::string, std::int64_t> v;
  std::int64_t id = 0;
  for (std::string line; std::getline(in, line);) v[line] = id++;
  return v;
}

std::vector<std::int64_t> ids_of(const std::vector<std::string>& tokens) {
  static const auto vocab = minilm_vocab();
  std::vector<std::int64_t> ids;
  for (const auto& t : tokens) ids.push_back(vocab.at(t));
  return ids;
}

const Tokenizer& minilm() {
  static const Tokenizer tok = Tokenizer::load(minilm_dir());
  return tok;
}

TEST(Tokenizer, SimpleSentence) {
  Encoding e = minilm().encode("Hello, World!", 128, true);
  std::vector<std::string> expected = {"[CLS]", "hello", ",", "world", "!", "[SEP]"};
  EXPECT_EQ(e.tokens, expected);
  EXPECT_EQ(e.ids, ids_of(expected));
  EXPECT_EQ(e.attention_mask, std::vector<std::int64_t>(6, 1));
  EXPECT_EQ(e.token_type_ids, std::vector<std::int64_t>(6, 0));
}

TEST(Tokenizer, EmptyTextIsClsSep) {
  EXPECT_EQ(minilm().encode("", 128).ids, ids_of({"[CLS]", "[SEP]"}));
  EXPECT_EQ(minilm().encode(" \t\n", 128).ids, ids_of({"[CLS]", "[SEP]"}));
  EXPECT_EQ(minilm().encode("\xFF\xFE", 128).ids, ids_of({"[CLS]", "[SEP]"}));  // U+FFFD removed by clean_text
}

TEST(Tokenizer, AccentsAreStrippedAndLowercased) {
  // strip_accents is null in the file and lowercase true: accents go.
  EXPECT_EQ(minilm().encode("CAFÉ Naïve", 128, true).tokens,
            (std::vector<std::string>{"[CLS]", "cafe", "naive", "[SEP]"}));
}

TEST(Tokenizer, ChineseCharactersAreSplit) {
  Encoding e = minilm().encode("中文", 128, true);
  EXPECT_EQ(e.tokens, (std::vector<std::string>{"[CLS]", "中", "文", "[SEP]"}));
}

TEST(Tokenizer, SpecialTokensInTextAreMatchedBeforeNormalization) {
  Encoding e = minilm().encode("a[SEP]b [MASK]", 128, true);
  EXPECT_EQ(e.tokens, (std::vector<std::string>{"[CLS]", "a", "[SEP]", "b", "[MASK]", "[SEP]"}));
  // Lowercase "[sep]" is not the special token: it is punctuation and a word.
  EXPECT_EQ(minilm().encode("[sep]", 128, true).tokens,
            (std::vector<std::string>{"[CLS]", "[", "sep", "]", "[SEP]"}));
  // An invalid byte inside breaks the match (it becomes U+FFFD before matching).
  EXPECT_EQ(minilm().encode("[SE\xFFP]", 128, true).tokens,
            (std::vector<std::string>{"[CLS]", "[", "sep", "]", "[SEP]"}));
}

TEST(Tokenizer, TruncationKeepsClosingSep) {
  Encoding e = minilm().encode("one two three four five", 4, true);
  EXPECT_EQ(e.tokens, (std::vector<std::string>{"[CLS]", "one", "two", "[SEP]"}));
  EXPECT_EQ(minilm().encode("one two", 2).ids, ids_of({"[CLS]", "[SEP]"}));
  EXPECT_EQ(minilm().encode("one two", no_truncation).ids.size(), 4u);
  try {
    minilm().encode("x", 1);
    FAIL() << "max_length 1 accepted";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::invalid_argument);
  }
}

TEST(Tokenizer, LongWordBecomesUnk) {
  EXPECT_EQ(minilm().encode(std::string(101, 'a'), 128, true).tokens,
            (std::vector<std::string>{"[CLS]", "[UNK]", "[SEP]"}));
  EXPECT_GT(minilm().encode(std::string(100, 'a'), 128).ids.size(), 3u);  // 100 chars: WordPiece runs
}

TEST(Tokenizer, BatchEqualsSingle) {
  std::vector<std::string> texts = {"first text", "", "[SEP]", "a much longer text with several words in it"};
  auto batch = minilm().encode_batch(texts, 8);
  ASSERT_EQ(batch.size(), texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(batch[i].ids, minilm().encode(texts[i], 8).ids);
}

TEST(Tokenizer, VocabularyQueries) {
  EXPECT_EQ(minilm().vocab_size(), 30522u);
  EXPECT_EQ(minilm().num_special_tokens(), 2u);
  EXPECT_EQ(minilm().token_to_id("[CLS]"), ids_of({"[CLS]"})[0]);
  EXPECT_EQ(minilm().token_to_id("##ing"), ids_of({"##ing"})[0]);
  EXPECT_EQ(minilm().token_to_id("no-such-token"), std::nullopt);
  EXPECT_EQ(minilm().id_to_token(ids_of({"world"})[0]), "world");
  EXPECT_EQ(minilm().id_to_token(999999), std::nullopt);
}

TEST(Tokenizer, ConcurrentEncodesAgree) {
  std::vector<std::string> texts = {"Concurrency is fine", "中文 and Ελληνικά", "[CLS] x", std::string(300, 'b')};
  std::vector<std::vector<std::int64_t>> expected;
  for (const auto& t : texts) expected.push_back(minilm().encode(t, 64).ids);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&] {
      for (int round = 0; round < 200; ++round) {
        for (std::size_t i = 0; i < texts.size(); ++i) failures += minilm().encode(texts[i], 64).ids != expected[i];
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// --- a tiny tokenizer.json, every expectation worked out by hand ---

std::string write_file(const std::string& name, const std::string& content) {
  std::string path = conformance_work_path(name);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::string tiny_json(const std::string& normalizer, int max_chars = 100) {
  return R"({"version":"1.0","truncation":null,"padding":null,
    "added_tokens":[{"id":1,"content":"[CLS]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
                    {"id":2,"content":"[SEP]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
    "normalizer":)" + normalizer + R"(,
    "pre_tokenizer":{"type":"BertPreTokenizer"},
    "post_processor":{"type":"BertProcessing","sep":["[SEP]",2],"cls":["[CLS]",1]},
    "decoder":null,
    "model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":)" +
         std::to_string(max_chars) + R"(,
      "vocab":{"[UNK]":0,"[CLS]":1,"[SEP]":2,"un":3,"##aff":4,"##able":5,"aff":6,"a":7,"##a":8,"!":9,"café":10,"cafe":11,"Un":12}}})";
}

std::vector<std::int64_t> tiny_ids(const Tokenizer& t, const std::string& text) { return t.encode(text, 64).ids; }

TEST(TinyTokenizer, GreedyLongestMatchFirst) {
  auto tok = Tokenizer::load(write_file("tiny.json", tiny_json(R"({"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true})")));
  EXPECT_EQ(tiny_ids(tok, "unaffable"), (std::vector<std::int64_t>{1, 3, 4, 5, 2}));
  EXPECT_EQ(tiny_ids(tok, "UNAFFABLE!"), (std::vector<std::int64_t>{1, 3, 4, 5, 9, 2}));
  EXPECT_EQ(tiny_ids(tok, "unaffablex"), (std::vector<std::int64_t>{1, 0, 2}));  // any unmatched part: whole word [UNK]
  EXPECT_EQ(tiny_ids(tok, "aaa aff"), (std::vector<std::int64_t>{1, 7, 8, 8, 6, 2}));
  EXPECT_EQ(tiny_ids(tok, "Café"), (std::vector<std::int64_t>{1, 11, 2}));  // accent stripped (null follows lowercase)
}

TEST(TinyTokenizer, MaxInputCharsPerWord) {
  auto tok = Tokenizer::load(write_file("tiny5.json", tiny_json("null", 5)));
  EXPECT_EQ(tiny_ids(tok, "aaaaa"), (std::vector<std::int64_t>{1, 7, 8, 8, 8, 8, 2}));
  EXPECT_EQ(tiny_ids(tok, "aaaaaa"), (std::vector<std::int64_t>{1, 0, 2}));
}

TEST(TinyTokenizer, NormalizerOptions) {
  auto cased = Tokenizer::load(write_file("tiny_cased.json", tiny_json(R"({"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":false})")));
  EXPECT_EQ(tiny_ids(cased, "Café"), (std::vector<std::int64_t>{1, 0, 2}));  // "Café" not in vocab
  EXPECT_EQ(tiny_ids(cased, "café"), (std::vector<std::int64_t>{1, 10, 2}));  // accent kept
  EXPECT_EQ(tiny_ids(cased, "Un"), (std::vector<std::int64_t>{1, 12, 2}));
  auto strip = Tokenizer::load(write_file("tiny_strip.json", tiny_json(R"({"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":true,"lowercase":false})")));
  EXPECT_EQ(tiny_ids(strip, "cafe\u0301"), (std::vector<std::int64_t>{1, 11, 2}));
  auto none = Tokenizer::load(write_file("tiny_none.json", tiny_json("null")));
  EXPECT_EQ(tiny_ids(none, "a\x01" "a"), (std::vector<std::int64_t>{1, 0, 2}));  // control char kept, word unknown
}

// --- vocab.txt fallback ---

TEST(VocabTxt, FolderWithoutTokenizerJsonUsesVocabTxt) {
  namespace fs = std::filesystem;
  fs::path dir = conformance_work_path("vocab_only");
  fs::create_directories(dir);
  fs::copy_file(minilm_dir() + "/vocab.txt", dir / "vocab.txt", fs::copy_options::overwrite_existing);
  fs::copy_file(minilm_dir() + "/tokenizer_config.json", dir / "tokenizer_config.json", fs::copy_options::overwrite_existing);
  fs::remove(dir / "tokenizer.json");
  auto tok = Tokenizer::load(dir.string());
  EXPECT_EQ(tok.source(), (dir / "vocab.txt").string());
  Encoding e = tok.encode("Hello, World! [SEP] Café", 128, true);
  EXPECT_EQ(e.tokens, (std::vector<std::string>{"[CLS]", "hello", ",", "world", "!", "[SEP]", "cafe", "[SEP]"}));
  EXPECT_EQ(e.ids, ids_of(e.tokens));
}

TEST(VocabTxt, ConfigOptionsAreHonoured) {
  std::string vocab = write_file("tiny_vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nHello\nhello\ncafé\r\ncafe\n");
  std::string cased = write_file("tiny_cased_config.json", R"({"do_lower_case": false, "tokenizer_class": "BertTokenizer"})");
  auto tok = Tokenizer::from_vocab_txt(vocab, cased);
  EXPECT_EQ(tok.encode("Hello hello café", 16).ids, (std::vector<std::int64_t>{2, 5, 6, 7, 3}));
  auto uncased = Tokenizer::from_vocab_txt(vocab);  // no config: BERT defaults (lowercase, strip accents)
  EXPECT_EQ(uncased.encode("Hello café [MASK]", 16).ids, (std::vector<std::int64_t>{2, 6, 8, 4, 3}));
}

// --- pathological inputs: give the obvious answer (the time is printed, never asserted; ctest's
// timeout is the guard against a quadratic blow-up) ---

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(Pathological, OneMegabyteWithoutSpaces) {
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(minilm().encode(std::string(1 << 20, 'x'), 128).ids, ids_of({"[CLS]", "[UNK]", "[SEP]"}));
  std::string words;
  for (int i = 0; i < (1 << 20) / 100; ++i) words += std::string(99, 'q') + " ";  // 99-char words: WordPiece runs
  EXPECT_EQ(minilm().encode(words, no_truncation).ids.size() > 10000u, true);
  std::printf("[ figure ] %s: %.2f s\n", ::testing::UnitTest::GetInstance()->current_test_info()->name(), seconds_since(t0));
}

TEST(Pathological, MillionCjkCharacters) {
  std::string text;
  for (int i = 0; i < 1000000; ++i) text += "\xE4\xB8\xAD";  // 中
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(minilm().encode(text, 128).ids.size(), 128u);
  Encoding all = minilm().encode(text, no_truncation);
  EXPECT_EQ(all.ids.size(), 1000002u);
  EXPECT_EQ(all.ids[1], ids_of({"中"})[0]);
  std::printf("[ figure ] %s: %.2f s\n", ::testing::UnitTest::GetInstance()->current_test_info()->name(), seconds_since(t0));
}

TEST(Pathological, HundredThousandCombiningMarks) {
  std::string text = "a";
  for (int i = 0; i < 100000; ++i) text += (i % 2 ? "\xCC\x81" : "\xCC\x96");  // U+0301 / U+0316 alternating
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(minilm().encode(text, 128).ids, ids_of({"[CLS]", "a", "[SEP]"}));  // all stripped
  std::printf("[ figure ] %s: %.2f s\n", ::testing::UnitTest::GetInstance()->current_test_info()->name(), seconds_since(t0));
}

}  // namespace
}  // namespace leanembed::test
