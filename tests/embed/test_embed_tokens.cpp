// Embedder::embed_tokens, tokenize with a truncation side, and the public l2_normalize: what the
// server needs to embed token-id inputs, truncate on the left and apply per-request dimensions.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "embed_test_support.h"
#include "leanembed/embedder.h"
#include "leanembed/error.h"

using namespace leanembed;
using test::options_for;

namespace {

bool bitwise_equal(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::string long_text() {
  std::string t;
  for (int i = 0; i < 300; ++i) t += "word" + std::to_string(i) + " ";
  return t;
}

void expect_invalid(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(EmbedTokens, SameVectorsAsTheTextsBitwise) {
  Embedder e(options_for("tiny-bert-synthetic"));
  const std::vector<std::string> texts = {"A sentence to embed.", "", "Another, longer sentence with more words in it.",
                                          long_text()};
  std::vector<std::vector<int64_t>> ids;
  for (const auto& t : texts) ids.push_back(e.tokenize(t).ids);
  std::vector<std::span<const int64_t>> views(ids.begin(), ids.end());
  std::vector<float> from_ids(texts.size() * e.dims());
  e.embed_tokens(views, from_ids);
  std::vector<std::vector<float>> from_texts = e.embed(texts);
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_TRUE(bitwise_equal(std::span<const float>(from_ids).subspan(i * e.dims(), e.dims()), from_texts[i])) << i;
  }
}

TEST(EmbedTokens, RefusesEmptyTooLongAndOutOfVocabularySequences) {
  Embedder e(options_for("tiny-bert-synthetic"));
  const int64_t max_length = e.info().max_length;
  std::vector<float> out(e.dims());
  auto one = [&](std::vector<int64_t> ids) {
    std::span<const int64_t> v(ids);
    e.embed_tokens(std::span<const std::span<const int64_t>>(&v, 1), out);
  };
  expect_invalid([&] { one({}); }, "sequence 0 is empty");
  expect_invalid([&] { one(std::vector<int64_t>(max_length + 1, 5)); }, "more than max_length");
  expect_invalid([&] { one({101, -1, 102}); }, "token id -1 at position 1");
  expect_invalid([&] { one({101, 10000000, 102}); }, "outside the vocabulary");
  std::vector<float> small(1);
  std::vector<int64_t> ok = {101, 102};
  std::span<const int64_t> v(ok);
  expect_invalid([&] { e.embed_tokens(std::span<const std::span<const int64_t>>(&v, 1), small); }, "out holds 1 floats");
}

TEST(EmbedTokens, TruncationSides) {
  Embedder e(options_for("tiny-bert-synthetic"));
  const auto max_length = static_cast<size_t>(e.info().max_length);
  const std::string text = long_text();
  Tokenized all = e.tokenize(text, Truncation::none);
  Tokenized right = e.tokenize(text, Truncation::right);
  Tokenized left = e.tokenize(text, Truncation::left);
  ASSERT_GT(all.ids.size(), max_length);
  EXPECT_EQ(right.ids, e.tokenize(text).ids);
  ASSERT_EQ(right.ids.size(), max_length);
  ASSERT_EQ(left.ids.size(), max_length);
  // Both keep [CLS] ... [SEP]; right keeps the first tokens, left the last ones.
  EXPECT_EQ(left.ids.front(), all.ids.front());
  EXPECT_EQ(left.ids.back(), all.ids.back());
  EXPECT_EQ(right.ids.back(), all.ids.back());
  EXPECT_TRUE(std::equal(right.ids.begin(), right.ids.end() - 1, all.ids.begin()));
  EXPECT_TRUE(std::equal(left.ids.begin() + 1, left.ids.end(), all.ids.end() - (max_length - 1)));
  EXPECT_EQ(left.tokens.size(), left.ids.size());
  EXPECT_EQ(left.tokens.back(), all.tokens.back());
  EXPECT_TRUE(e.tokenize(text, Truncation::left, false).tokens.empty());
  EXPECT_GT(e.info().vocab_size, *std::max_element(all.ids.begin(), all.ids.end()));
  // A short text is the same whichever side.
  EXPECT_EQ(e.tokenize("short", Truncation::left).ids, e.tokenize("short", Truncation::none).ids);
}

TEST(EmbedTokens, PublicL2NormalizeIsWhatEmbedApplies) {
  EmbedderOptions raw_options = options_for("tiny-bert-synthetic");
  raw_options.normalize = false;
  Embedder raw(raw_options);
  EmbedderOptions normalized_options = options_for("tiny-bert-synthetic");
  normalized_options.normalize = true;
  Embedder normalized(normalized_options);
  std::vector<float> v = raw.embed_one("Normalise me.");
  l2_normalize(v);
  EXPECT_TRUE(bitwise_equal(v, normalized.embed_one("Normalise me.")));
}
