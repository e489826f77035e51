// Token ids, type ids, masks and tokens identical to the Rust Hugging Face tokenizers
// (@anush008/tokenizers, through peers/tokenizer_reference.js) for the shared corpus, an
// adversarial set, and variants of the MiniLM tokenizer.json that switch each option.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

#include "adversarial_texts.h"
#include "leanembed/tokenizer.h"
#include "peer_reference.h"
#include "test_support.h"

namespace leanembed::test {
namespace {

std::string minilm_tokenizer_json() { return shared_dir() + "/models/minilm-l6-synthetic/tokenizer.json"; }

std::vector<std::string> read_lines(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string describe_ids(const std::vector<std::int64_t>& ids) {
  std::string s;
  for (std::size_t i = 0; i < ids.size() && i < 40; ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  if (ids.size() > 40) s += " ... (" + std::to_string(ids.size()) + ")";
  return s;
}

std::size_t parse_length(const std::string& l) { return l == "none" ? no_truncation : std::stoul(l); }

// Compares every text at every length; returns the number of texts compared.
void expect_same_as_reference(const Tokenizer& tok, const std::string& reference_json,
                              const std::vector<std::string>& texts, const std::vector<std::string>& lengths,
                              const std::string& tag) {
  auto reference = run_reference(reference_json, texts, lengths, tag);
  std::size_t mismatches = 0, tokens = 0;
  for (const auto& l : lengths) {
    const auto& refs = reference.at(l);
    for (std::size_t i = 0; i < texts.size(); ++i) {
      Encoding e = tok.encode(texts[i], parse_length(l), true);
      const ReferenceEncoding& r = refs[i];
      tokens += r.ids.size();
      bool same = e.ids == r.ids && e.token_type_ids == r.type_ids && e.attention_mask == r.mask && e.tokens == r.tokens;
      if (!same && ++mismatches <= 8) {
        ADD_FAILURE() << tag << " max_length " << l << " text #" << i << " (hex " << to_hex(texts[i]).substr(0, 200)
                      << ")\n  ours:   " << describe_ids(e.ids) << "\n  peer:   " << describe_ids(r.ids)
                      << (e.ids == r.ids ? "\n  (ids equal; tokens, type ids or mask differ)" : "");
      }
    }
  }
  EXPECT_EQ(mismatches, 0u) << tag;
  std::cout << "[conformance] " << tag << ": " << texts.size() << " texts x " << lengths.size() << " lengths, "
            << tokens << " reference tokens, " << mismatches << " mismatches\n";
}

TEST(TokenizerConformance, SentencesCorpus) {
  auto tok = Tokenizer::load(minilm_tokenizer_json());
  auto texts = read_lines(shared_dir() + "/corpus/sentences.txt");
  ASSERT_GT(texts.size(), 4000u);
  expect_same_as_reference(tok, minilm_tokenizer_json(), texts, {"128", "512"}, "sentences");
}

TEST(TokenizerConformance, DocsCorpus) {
  auto tok = Tokenizer::load(minilm_tokenizer_json());
  auto texts = read_lines(shared_dir() + "/corpus/docs.txt");
  ASSERT_GT(texts.size(), 300u);
  expect_same_as_reference(tok, minilm_tokenizer_json(), texts, {"128", "512", "none"}, "docs");
}

TEST(TokenizerConformance, AdversarialTexts) {
  auto tok = Tokenizer::load(minilm_tokenizer_json());
  auto texts = adversarial_texts();
  ASSERT_GT(texts.size(), 300u);
  expect_same_as_reference(tok, minilm_tokenizer_json(), texts, {"128", "512"}, "adversarial");
}

// Long texts: several documents glued, so truncation at 512 cuts inside real text.
TEST(TokenizerConformance, LongTextsTruncated) {
  auto tok = Tokenizer::load(minilm_tokenizer_json());
  auto docs = read_lines(shared_dir() + "/corpus/docs.txt");
  std::vector<std::string> texts;
  for (std::size_t i = 0; i + 3 < docs.size() && texts.size() < 40; i += 7) {
    texts.push_back(docs[i] + " " + docs[i + 1] + "\n" + docs[i + 2] + "[SEP]" + docs[i + 3]);
  }
  expect_same_as_reference(tok, minilm_tokenizer_json(), texts, {"2", "3", "128", "512", "none"}, "long");
}

// The vocab.txt + tokenizer_config.json fallback gives what the folder's tokenizer.json gives.
TEST(TokenizerConformance, VocabTxtFallbackMatchesPeer) {
  std::string dir = shared_dir() + "/models/minilm-l6-synthetic";
  auto tok = Tokenizer::from_vocab_txt(dir + "/vocab.txt", dir + "/tokenizer_config.json", dir + "/special_tokens_map.json");
  auto texts = adversarial_texts(150);
  auto sentences = read_lines(shared_dir() + "/corpus/sentences.txt");
  texts.insert(texts.end(), sentences.begin(), sentences.begin() + 300);
  expect_same_as_reference(tok, minilm_tokenizer_json(), texts, {"512"}, "vocab_txt");
}

// --- variants of the MiniLM tokenizer.json, each checked against the peer on the same file ---

nlohmann::json minilm_json() { return nlohmann::json::parse(read_file(minilm_tokenizer_json())); }

void check_variant(const nlohmann::json& variant, const std::string& tag) {
  const std::string path = conformance_work_path(tag + "_tokenizer.json");
  {
    std::ofstream f(path);
    f << variant.dump();
  }
  auto tok = Tokenizer::load(path);
  auto texts = adversarial_texts(250);
  auto sentences = read_lines(shared_dir() + "/corpus/sentences.txt");
  texts.insert(texts.end(), sentences.begin(), sentences.begin() + 100);
  texts.push_back("Hello World! hello world HELLO WORLD <special> x <special>y z<special> <special>");
  texts.push_back("cat concat cat. (cat) cats _cat cat_ écat catà [cat] \u00A0cat\u3000");
  texts.push_back("  <special>  [MASK]  [MASK]x  x[MASK] \t[MASK]\t <new token>   ");
  texts.push_back("Çat CAT ÇAT çat <zz> x<zz>y");
  expect_same_as_reference(tok, path, texts, {"512", "17"}, tag);
}

TEST(TokenizerConformance, VariantCased) {
  auto j = minilm_json();
  j["normalizer"]["lowercase"] = false;  // strip_accents null follows lowercase: off
  check_variant(j, "variant_cased");
}

TEST(TokenizerConformance, VariantStripAccentsWithoutLowercase) {
  auto j = minilm_json();
  j["normalizer"]["lowercase"] = false;
  j["normalizer"]["strip_accents"] = true;
  check_variant(j, "variant_strip_only");
}

TEST(TokenizerConformance, VariantLowercaseWithoutStripAccents) {
  auto j = minilm_json();
  j["normalizer"]["strip_accents"] = false;
  check_variant(j, "variant_lower_only");
}

TEST(TokenizerConformance, VariantNoCleanTextNoChinese) {
  auto j = minilm_json();
  j["normalizer"]["clean_text"] = false;
  j["normalizer"]["handle_chinese_chars"] = false;
  check_variant(j, "variant_raw_text");
}

TEST(TokenizerConformance, VariantAddedTokenFlags) {
  auto j = minilm_json();
  auto token = [](const char* content, int id, bool single_word, bool lstrip, bool rstrip, bool normalized, bool special) {
    return nlohmann::json{{"id", id},         {"content", content}, {"single_word", single_word}, {"lstrip", lstrip},
                          {"rstrip", rstrip}, {"normalized", normalized}, {"special", special}};
  };
  j["added_tokens"][4]["lstrip"] = true;  // [MASK], as RoBERTa-style tokenizers have it
  j["added_tokens"].push_back(token("<special>", 30522, false, true, true, false, true));
  j["added_tokens"].push_back(token("Hello World", 30523, false, false, false, true, false));
  j["added_tokens"].push_back(token("cat", 30524, true, false, false, true, false));
  j["added_tokens"].push_back(token("ÇAT", 30525, false, false, false, true, false));
  j["added_tokens"].push_back(token("<new token>", 30526, true, false, false, false, false));
  j["added_tokens"].push_back(token("hello", 7592, false, false, false, false, false));  // already in the vocab
  // The file's id is only a hint: the Rust library gives the next free id (here 30527).
  j["added_tokens"].push_back(token("<zz>", 50000, false, false, false, false, true));
  check_variant(j, "variant_added_tokens");
}

TEST(TokenizerConformance, VariantBertProcessingNoPreTokenizer) {
  auto j = minilm_json();
  j["post_processor"] = {{"type", "BertProcessing"}, {"sep", {"[SEP]", 102}}, {"cls", {"[CLS]", 101}}};
  j["pre_tokenizer"] = nullptr;
  j["model"]["max_input_chars_per_word"] = 30;
  check_variant(j, "variant_bert_processing");
}

TEST(TokenizerConformance, VariantNoNormalizerNoPostProcessor) {
  auto j = minilm_json();
  j["normalizer"] = nullptr;
  j["post_processor"] = nullptr;
  j["model"]["continuing_subword_prefix"] = "@@";
  check_variant(j, "variant_bare");
}

TEST(TokenizerConformance, VariantTemplateTypeIds) {
  auto j = minilm_json();
  j["post_processor"]["single"] = nlohmann::json::array(
      {{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 1}}}},
       {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 0}}}},
       {{"Sequence", {{"id", "A"}, {"type_id", 2}}}},
       {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 3}}}}});
  check_variant(j, "variant_template");
}

}  // namespace
}  // namespace leanembed::test
