// Model-folder metadata that is wrong or unusual (issue 16): every numeric field range-checked
// before it is converted, every error naming file, field, value and what was expected;
// sentence-transformers modules we cannot honour refused, never silently ignored.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "embed/model_folder.h"
#include "leanembed/error.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace leanembed;

namespace {

std::string minilm() { return test::shared_dir() + "/models/minilm-l6-synthetic"; }

fs::path scratch(const std::string& name) {
  fs::path p = fs::path(test::binary_dir()) / "test_model_folder_values" / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// A folder with the shared MiniLM's files linked in; config.json copied (tests rewrite it).
fs::path folder(const std::string& name) {
  fs::path f = scratch(name);
  fs::create_directories(f / "onnx");
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "config.json"})
    fs::copy_file(fs::path(minilm()) / file, f / file);
  fs::create_symlink(fs::path(minilm()) / "onnx" / "model.onnx", f / "onnx" / "model.onnx");
  return f;
}

struct Failure {
  ErrorCode code = ErrorCode::runtime;
  std::string message;
};

Failure failure_of(const fs::path& f) {
  try {
    resolve_model_folder({.model = f.string()});
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  ADD_FAILURE() << "expected an error for " << f;
  return {};
}

void expect_names(const Failure& e, std::initializer_list<const char*> parts) {
  for (const char* p : parts) EXPECT_NE(e.message.find(p), std::string::npos) << "missing '" << p << "' in: " << e.message;
}

}  // namespace

TEST(ModelFolderValues, MaxSeqLengthOutOfRangeOrFractionalIsAnErrorNamingFileFieldValue) {
  fs::path f = folder("max_seq_length");
  write(f / "sentence_bert_config.json", R"({"max_seq_length": 1e30})");
  Failure e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  expect_names(e, {"sentence_bert_config.json", "max_seq_length", "1e+30", "expected"});
  EXPECT_EQ(e.message.find("-9223372036854775808"), std::string::npos) << e.message;

  write(f / "sentence_bert_config.json", R"({"max_seq_length": 2.9})");
  e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  expect_names(e, {"sentence_bert_config.json", "max_seq_length", "2.9", "whole number"});

  write(f / "sentence_bert_config.json", R"({"max_seq_length": -5})");
  e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  expect_names(e, {"sentence_bert_config.json", "max_seq_length", "-5"});

  write(f / "sentence_bert_config.json", R"({"max_seq_length": 128.0})");  // a whole number written as a float
  EXPECT_EQ(resolve_model_folder({.model = f.string()}).max_length, 128);
}

TEST(ModelFolderValues, ConfigJsonFiguresAreRangeChecked) {
  fs::path f = folder("config");
  write(f / "config.json", R"({"model_type":"bert","hidden_size":1e300,"max_position_embeddings":512})");
  Failure e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  expect_names(e, {"config.json", "hidden_size", "1e+300"});
  write(f / "config.json", R"({"model_type":"bert","hidden_size":384,"max_position_embeddings":-1})");
  e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  expect_names(e, {"config.json", "max_position_embeddings", "-1"});
  write(f / "config.json", R"({"model_type":"bert","hidden_size":384.5,"max_position_embeddings":512})");
  e = failure_of(f);
  expect_names(e, {"config.json", "hidden_size", "384.5"});
}

TEST(ModelFolderValues, TokenizerConfigModelMaxLength) {
  fs::path f = folder("model_max_length");
  // The "unbounded" sentinel tokenizers write (int(1e30)) is ignored, as before.
  write(f / "tokenizer_config.json", R"({"model_max_length": 1000000000000000019884624838656})");
  EXPECT_EQ(resolve_model_folder({.model = f.string()}).max_length_source, "default");
  write(f / "tokenizer_config.json", R"({"model_max_length": 300.5})");
  Failure e = failure_of(f);
  EXPECT_EQ(e.code, ErrorCode::model_format);
  expect_names(e, {"tokenizer_config.json", "model_max_length", "300.5"});
  write(f / "tokenizer_config.json", R"({"model_max_length": 0})");
  e = failure_of(f);
  expect_names(e, {"tokenizer_config.json", "model_max_length"});
}
