// libFuzzer target: the model folder's JSON files (config.json, modules.json, 1_Pooling/config.json,
// sentence_bert_config.json, tokenizer_config.json, tokenizer.json's truncation, a Dense module's
// config.json), read by resolve_model_folder (src/embed/model_folder.h). The input's first byte
// picks the file; the rest becomes its contents, in a copy of a valid folder (tiny-bert-synthetic's
// small files, with a Dense module and placeholder model files: resolution does not read those).
// Any input must resolve or throw leanembed::Error, and a resolved folder must hold values in range.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "embed/model_folder.h"
#include "leanembed/error.h"

namespace fs = std::filesystem;

namespace {

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The valid folder's files (relative path → contents), the fuzzed file replaced in each run.
struct Folder {
  fs::path dir;
  std::vector<std::pair<std::string, std::string>> files;
};

const Folder& folder() {
  static const Folder f = [] {
    Folder f;
    f.dir = fs::temp_directory_path() / ("leanembed-fuzz-folder-" + std::to_string(::getpid()));
    const fs::path model = fs::path(LEANEMBED_SHARED_DIR) / "models" / "tiny-bert-synthetic";
    for (const char* name : {"config.json", "1_Pooling/config.json", "sentence_bert_config.json", "tokenizer_config.json",
                             "special_tokens_map.json"}) {
      f.files.emplace_back(name, read(model / name));
    }
    // Resolution reads only tokenizer.json's truncation: a small one keeps each run fast.
    f.files.emplace_back("tokenizer.json", R"({"version":"1.0","truncation":{"direction":"Right","max_length":128,)"
                                           R"("strategy":"LongestFirst","stride":0},"padding":null,)"
                                           R"("model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0}}})");
    f.files.emplace_back("modules.json",
                         R"([{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},)"
                         R"({"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},)"
                         R"({"idx":2,"name":"2","path":"2_Dense","type":"sentence_transformers.models.Dense"},)"
                         R"({"idx":3,"name":"3","path":"3_Normalize","type":"sentence_transformers.models.Normalize"}])");
    f.files.emplace_back("2_Dense/config.json",
                         R"({"in_features":64,"out_features":16,"bias":true,"activation_function":"torch.nn.modules.activation.Tanh"})");
    f.files.emplace_back("2_Dense/model.safetensors", "");
    f.files.emplace_back("onnx/model.onnx", "");
    return f;
  }();
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const Folder& f = folder();
  const std::size_t fuzzed = data[0] % f.files.size();
  // Every file once, then only the fuzzed one and the one fuzzed before (restored).
  static std::size_t previous = f.files.size();
  if (previous == f.files.size())
    for (const auto& [name, text] : f.files) write(f.dir / name, text);
  else if (previous != fuzzed)
    write(f.dir / f.files[previous].first, f.files[previous].second);
  write(f.dir / f.files[fuzzed].first, std::string(reinterpret_cast<const char*>(data + 1), size - 1));
  previous = fuzzed;
  leanembed::ModelLocation where;
  where.model = f.dir.string();
  try {
    const leanembed::ModelFolder m = leanembed::resolve_model_folder(where);
    if (m.max_length <= 0 || m.hidden_size < 0 || m.max_position_embeddings < 0) __builtin_trap();
    for (const auto& d : m.dense)
      if (d.in_features <= 0 || d.out_features <= 0) __builtin_trap();
  } catch (const leanembed::Error&) {
  }
  return 0;
}
