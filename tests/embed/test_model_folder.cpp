#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "embed/model_folder.h"
#include "leanembed/error.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace leanembed;

namespace {

std::string minilm() { return test::shared_dir() + "/models/minilm-l6-synthetic"; }

fs::path scratch(const std::string& name) { return test::fresh_dir("test_model_folder", name); }

// A minimal folder: tokenizer files linked from the shared model, plus the given extras.
fs::path minimal_folder(const std::string& name) {
  fs::path f = scratch(name);
  fs::create_directories(f / "onnx");
  fs::create_symlink(fs::path(minilm()) / "tokenizer.json", f / "tokenizer.json");
  fs::create_symlink(fs::path(minilm()) / "tokenizer_config.json", f / "tokenizer_config.json");
  fs::create_symlink(fs::path(minilm()) / "config.json", f / "config.json");
  fs::create_symlink(fs::path(minilm()) / "onnx" / "model.onnx", f / "onnx" / "model.onnx");
  return f;
}

ErrorCode error_of(const ModelLocation& where, std::string* message = nullptr) {
  try {
    resolve_model_folder(where);
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "expected an error";
  return ErrorCode::runtime;
}

}  // namespace

TEST(ModelFolder, DtypeNamesMapToTransformersJsFiles) {
  EXPECT_EQ(dtype_file(dtype_from_name("fp32")), "onnx/model.onnx");
  EXPECT_EQ(dtype_file(dtype_from_name("fp16")), "onnx/model_fp16.onnx");
  EXPECT_EQ(dtype_file(dtype_from_name("q8")), "onnx/model_quantized.onnx");
  EXPECT_EQ(dtype_file(dtype_from_name("int8")), "onnx/model_int8.onnx");
  EXPECT_EQ(dtype_file(dtype_from_name("uint8")), "onnx/model_uint8.onnx");
  EXPECT_EQ(dtype_file(dtype_from_name("q4")), "onnx/model_q4.onnx");
  EXPECT_THROW(dtype_from_name("fp8"), Error);
  EXPECT_EQ(pooling_from_name("lasttoken"), Pooling::last_token);
  EXPECT_THROW(pooling_from_name("average"), Error);
}

TEST(ModelFolder, ReadsSentenceTransformersMetadata) {
  ModelFolder m = resolve_model_folder({.model = minilm()});
  EXPECT_EQ(m.onnx_path, minilm() + "/onnx/model.onnx");
  EXPECT_EQ(m.tokenizer_json, minilm() + "/tokenizer.json");
  EXPECT_EQ(m.model_type, "bert");
  EXPECT_EQ(m.hidden_size, 384);
  EXPECT_EQ(m.max_position_embeddings, 512);
  EXPECT_EQ(m.pooling, Pooling::mean);
  EXPECT_TRUE(m.normalize);
  EXPECT_EQ(m.max_length, 256);  // sentence_bert_config.json
  EXPECT_EQ(resolve_model_folder({.model = minilm(), .dtype = Dtype::q8}).onnx_path,
            minilm() + "/onnx/model_quantized.onnx");
}

TEST(ModelFolder, WithoutSentenceTransformersFilesUsesTransformersJsDefaults) {
  fs::path f = minimal_folder("plain");
  ModelFolder m = resolve_model_folder({.model = f.string()});
  EXPECT_EQ(m.pooling, Pooling::mean);
  EXPECT_TRUE(m.normalize);
  EXPECT_EQ(m.max_length, 512);  // tokenizer_config.json model_max_length
  EXPECT_EQ(m.max_length_source, "tokenizer_config.json model_max_length");
}

TEST(ModelFolder, PoolingModuleAndNormalizeAreRead) {
  fs::path f = minimal_folder("cls");
  test::write_text(f / "modules.json", R"([{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                               {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}])");
  test::write_text(f / "1_Pooling" / "config.json", R"({"word_embedding_dimension":384,"pooling_mode_cls_token":true})");
  test::write_text(f / "sentence_bert_config.json", R"({"max_seq_length": 4096})");
  ModelFolder m = resolve_model_folder({.model = f.string()});
  EXPECT_EQ(m.pooling, Pooling::cls);
  EXPECT_FALSE(m.normalize);
  EXPECT_EQ(m.max_length, 512);  // capped by max_position_embeddings
}

TEST(ModelFolder, HubIdIsLookedUpInTheCacheFolder) {
  fs::path cache = scratch("cache");
  fs::create_directories(cache / "Xenova");
  fs::create_directory_symlink(minilm(), cache / "Xenova" / "all-MiniLM-L6-v2");
  ModelFolder m = resolve_model_folder({.model = "Xenova/all-MiniLM-L6-v2", .model_cache_dir = cache.string()});
  EXPECT_EQ(m.folder, (cache / "Xenova" / "all-MiniLM-L6-v2").string());
  // Not there, offline: the error names the files to fetch and where (downloads: tests/hub).
  ::unsetenv("HF_ENDPOINT");
  std::string msg;
  EXPECT_EQ(error_of({.model = "Xenova/other-model", .model_cache_dir = cache.string(), .local_files_only = true}, &msg),
            ErrorCode::io);
  EXPECT_NE(msg.find("https://huggingface.co/Xenova/other-model/resolve/main/tokenizer.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find((cache / "Xenova" / "other-model").string()), std::string::npos) << msg;
}

TEST(ModelFolder, ModelFileOverridesTheDtype) {
  std::string tiny = test::shared_dir() + "/models/tiny-bert-synthetic";
  EXPECT_EQ(resolve_model_folder({.model = tiny, .model_file = "onnx/model_opset17.onnx"}).onnx_path,
            tiny + "/onnx/model_opset17.onnx");
  EXPECT_EQ(resolve_model_folder({.model = minilm(), .model_file = tiny + "/onnx/model_q4.onnx"}).onnx_path,
            tiny + "/onnx/model_q4.onnx");
}

// A dtype we do not make ourselves (q4f16): a missing file is an error. (For the dtypes
// `leanembed quantize` makes, a missing file means quantizing model.onnx at load.)
TEST(ModelFolder, MissingDtypeFileListsTheFolderAndWhatToFetch) {
  std::string msg;
  EXPECT_EQ(error_of({.model = minilm(), .dtype = Dtype::q4f16}, &msg), ErrorCode::io);
  EXPECT_NE(msg.find("onnx/model_q4f16.onnx"), std::string::npos) << msg;
  EXPECT_NE(msg.find("onnx/model_quantized.onnx"), std::string::npos) << msg;  // the listing
  EXPECT_NE(msg.find("fetch"), std::string::npos) << msg;
}

TEST(ModelFolder, MissingFolderAndBadJsonAreClearErrors) {
  std::string msg;
  EXPECT_EQ(error_of({.model = "/nonexistent/model"}, &msg), ErrorCode::io);
  EXPECT_NE(msg.find("/nonexistent/model"), std::string::npos);
  fs::path f = minimal_folder("badjson");
  test::write_text(f / "sentence_bert_config.json", "{\"max_seq_length\": ");
  EXPECT_EQ(error_of({.model = f.string()}, &msg), ErrorCode::model_format);
  EXPECT_NE(msg.find("sentence_bert_config.json"), std::string::npos);
  test::write_text(f / "sentence_bert_config.json", R"({"max_seq_length": "long"})");
  EXPECT_EQ(error_of({.model = f.string()}, &msg), ErrorCode::model_format);
  EXPECT_NE(msg.find("max_seq_length"), std::string::npos);
  test::write_text(f / "sentence_bert_config.json", std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_EQ(error_of({.model = f.string()}, &msg), ErrorCode::model_format);
}

// Issue 16, item 11: a module's path in modules.json stays inside the model folder, as external data
// does: absolute paths, '..' components and symlinks out of the folder are refused, naming the file.
TEST(ModelFolder, ModulePathsAreConfinedToTheFolder) {
  const fs::path outside = scratch("outside-pooling");
  test::write_text(outside / "config.json", R"({"word_embedding_dimension":384,"pooling_mode_cls_token":true})");
  auto modules_with = [](const std::string& path) {
    return R"([{"idx":1,"name":"1","path":")" + path + R"(","type":"sentence_transformers.models.Pooling"}])";
  };
  for (const std::string& path : {outside.string(), std::string("../outside-pooling"), std::string("1_Pooling/../../outside-pooling"),
                                  std::string("escape")}) {
    fs::path f = minimal_folder("confined");
    fs::create_directory_symlink(outside, f / "escape");
    test::write_text(f / "modules.json", modules_with(path));
    std::string message;
    EXPECT_EQ(error_of({.model = f.string()}, &message), ErrorCode::model_format) << path;
    EXPECT_NE(message.find("modules.json"), std::string::npos) << message;
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("inside the model folder"), std::string::npos) << message;
  }
  // A module folder inside (also through a symlink that stays inside) is read.
  fs::path f = minimal_folder("confined-ok");
  test::write_text(f / "pool" / "config.json", R"({"word_embedding_dimension":384,"pooling_mode_cls_token":true})");
  fs::create_directory_symlink(f / "pool", f / "linked");
  test::write_text(f / "modules.json", modules_with("linked"));
  EXPECT_EQ(resolve_model_folder({.model = f.string()}).pooling, Pooling::cls);
}
