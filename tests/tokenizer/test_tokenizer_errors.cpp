// Unsupported components are Error(unsupported) and malformed files Error(model_format), each
// naming the file, the field and what was found; missing files are Error(io).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "leanembed/error.h"
#include "leanembed/tokenizer.h"
#include "test_support.h"

namespace leanembed::test {
namespace {

nlohmann::json minilm_json() {
  static const nlohmann::json j =
      nlohmann::json::parse(read_file(shared_dir() + "/models/minilm-l6-synthetic/tokenizer.json"));
  return j;
}

// Loads `text` and expects an Error of `code` whose message contains every one of `parts`.
void expect_error(const std::string& text, ErrorCode code, const std::vector<std::string>& parts) {
  try {
    Tokenizer::from_tokenizer_json_text(text, "test/tokenizer.json");
    ADD_FAILURE() << "loaded without error; expected " << error_code_name(code);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    std::string message = e.what();
    EXPECT_NE(message.find("test/tokenizer.json"), std::string::npos) << message;
    for (const auto& p : parts) EXPECT_NE(message.find(p), std::string::npos) << "'" << p << "' not in: " << message;
  }
}

TEST(TokenizerErrors, UnsupportedComponentsNameFieldAndValue) {
  auto j = minilm_json();
  j["model"]["type"] = "BPE";
  expect_error(j.dump(), ErrorCode::unsupported, {"model.type", "BPE"});
  j = minilm_json();
  j["model"]["type"] = "Unigram";
  expect_error(j.dump(), ErrorCode::unsupported, {"model.type", "Unigram"});
  j = minilm_json();
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", nlohmann::json::array()}};
  expect_error(j.dump(), ErrorCode::unsupported, {"normalizer.type", "Sequence"});
  j = minilm_json();
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "_"}};
  expect_error(j.dump(), ErrorCode::unsupported, {"pre_tokenizer.type", "Metaspace"});
  j = minilm_json();
  j["pre_tokenizer"] = {{"type", "ByteLevel"}};
  expect_error(j.dump(), ErrorCode::unsupported, {"pre_tokenizer.type", "ByteLevel"});
  j = minilm_json();
  j["post_processor"] = {{"type", "RobertaProcessing"}};
  expect_error(j.dump(), ErrorCode::unsupported, {"post_processor.type", "RobertaProcessing"});
}

TEST(TokenizerErrors, MalformedFieldsNameFieldAndExpectation) {
  expect_error("{not json", ErrorCode::model_format, {"not valid JSON"});
  expect_error("[1, 2]", ErrorCode::model_format, {"expected an object"});
  expect_error("{}", ErrorCode::model_format, {"model", "missing"});
  auto j = minilm_json();
  j["model"]["vocab"] = nlohmann::json::array();
  expect_error(j.dump(), ErrorCode::model_format, {"model.vocab", "expected an object"});
  j = minilm_json();
  j["model"]["vocab"]["hello"] = -4;
  expect_error(j.dump(), ErrorCode::model_format, {"model.vocab[\"hello\"]", "-4"});
  j = minilm_json();
  j["model"]["unk_token"] = "<unk>";
  expect_error(j.dump(), ErrorCode::model_format, {"unk_token", "<unk>"});
  j = minilm_json();
  j["normalizer"]["lowercase"] = "yes";
  expect_error(j.dump(), ErrorCode::model_format, {"normalizer.lowercase", "\"yes\""});
  j = minilm_json();
  j["added_tokens"][0].erase("content");
  expect_error(j.dump(), ErrorCode::model_format, {"added_tokens[0].content", "missing"});
  j = minilm_json();
  j["post_processor"]["special_tokens"].erase("[SEP]");
  expect_error(j.dump(), ErrorCode::model_format, {"post_processor.special_tokens", "[SEP]"});
  j = minilm_json();
  j["model"].erase("type");
  expect_error(j.dump(), ErrorCode::model_format, {"model.type", "missing"});
}

TEST(TokenizerErrors, DeepNestingIsRejectedWithoutRecursion) {
  std::string deep = "{\"model\": ";
  deep.append(100000, '[');
  deep.append(100000, ']');
  deep += "}";
  expect_error(deep, ErrorCode::model_format, {"deeper than"});
  // Brackets inside strings do not count.
  auto j = minilm_json();
  j["added_tokens"].push_back({{"id", 5}, {"content", std::string(200, '[')}, {"special", true}, {"normalized", false}});
  EXPECT_NO_THROW(Tokenizer::from_tokenizer_json_text(j.dump(), "brackets.json"));
}

TEST(TokenizerErrors, MissingFilesAreIoErrors) {
  for (const std::string path : {"/nonexistent/tokenizer.json", "/nonexistent-folder/"}) {
    try {
      Tokenizer::load(path);
      ADD_FAILURE() << "loaded " << path;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::io) << e.what();
      EXPECT_NE(std::string(e.what()).find("/nonexistent"), std::string::npos) << e.what();
    }
  }
  try {
    Tokenizer::from_vocab_txt("/nonexistent/vocab.txt");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io);
  }
}

}  // namespace
}  // namespace leanembed::test
