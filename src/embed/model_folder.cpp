#include "embed/model_folder.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "leanembed/error.h"
#include "quantize/quantize.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace leanembed {
namespace {

struct DtypeEntry {
  Dtype dtype;
  const char* name;
  const char* suffix;
};
constexpr DtypeEntry kDtypes[] = {
    {Dtype::fp32, "fp32", ""},         {Dtype::fp16, "fp16", "_fp16"}, {Dtype::q8, "q8", "_quantized"},
    {Dtype::int8, "int8", "_int8"},    {Dtype::uint8, "uint8", "_uint8"}, {Dtype::q4, "q4", "_q4"},
    {Dtype::q4f16, "q4f16", "_q4f16"}, {Dtype::bnb4, "bnb4", "_bnb4"},
};

struct PoolingEntry {
  Pooling pooling;
  const char* name;
};
constexpr PoolingEntry kPoolings[] = {
    {Pooling::mean, "mean"}, {Pooling::cls, "cls"}, {Pooling::max, "max"},
    {Pooling::last_token, "lasttoken"}, {Pooling::mean_sqrt_len, "mean_sqrt_len"},
};

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// Reads a small JSON file; Error(model_format) naming the file when it does not parse.
json read_json(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(ErrorCode::io, "cannot read '" + p.string() + "'");
  std::ostringstream s;
  s << in.rdbuf();
  const std::string text = s.str();
  // Metadata files are small and flat; refuse deep nesting before the recursive parser sees it.
  int depth = 0;
  for (char c : text) {
    if (c == '{' || c == '[') {
      if (++depth > 64) throw Error(ErrorCode::model_format, "'" + p.string() + "': JSON nested deeper than 64 levels");
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw Error(ErrorCode::model_format, "'" + p.string() + "' is not valid JSON");
  if (!j.is_object()) throw Error(ErrorCode::model_format, "'" + p.string() + "': expected a JSON object at the top");
  return j;
}

// An optional integer field: absent/null → nullopt; a number → its value; else a format error.
std::optional<double> number_field(const json& j, const char* field, const fs::path& file) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) {
    throw Error(ErrorCode::model_format, "'" + file.string() + "': field \"" + field + "\" should be a number, found " +
                                             std::string(it->type_name()));
  }
  return it->get<double>();
}

bool bool_field(const json& j, const char* field, const fs::path& file) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) {
    throw Error(ErrorCode::model_format, "'" + file.string() + "': field \"" + field + "\" should be true or false");
  }
  return it->get<bool>();
}

std::string listing(const fs::path& folder) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (it.depth() > 1) continue;
    if (it->is_regular_file(ec)) names.push_back(fs::relative(it->path(), folder, ec).string());
    if (names.size() > 50) break;
  }
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) out += "\n  " + n;
  return names.empty() ? " (nothing)" : out;
}

// A module's folder from modules.json's "path": inside the model folder, as external data must be
// (relative, no ".." component, its real path — symlinks resolved — under the folder's).
// Error(model_format) naming modules.json, the module and the path otherwise.
fs::path module_folder(const fs::path& folder, const std::string& path, const std::string& type, const fs::path& modules) {
  auto refuse = [&](const std::string& why) -> fs::path {
    throw Error(ErrorCode::model_format, "'" + modules.string() + "': module " + type + " has \"path\": \"" + path +
                                             "\", " + why + "; a module's path must be a folder inside the model folder");
  };
  const fs::path p(path);
  if (path.find('\0') != std::string::npos) return refuse("which contains a NUL byte");
  if (p.is_absolute()) return refuse("an absolute path");
  for (const auto& part : p)
    if (part == "..") return refuse("which contains a '..' component");
  std::error_code ec;
  const fs::path real_folder = fs::weakly_canonical(folder, ec);
  const fs::path real = fs::weakly_canonical(folder / p, ec);
  if (!ec) {
    const auto [end, unused] = std::mismatch(real_folder.begin(), real_folder.end(), real.begin(), real.end());
    if (end != real_folder.end()) return refuse("which resolves to '" + real.string() + "', outside '" + real_folder.string() + "'");
  }
  return folder / p;
}

bool looks_like_hub_id(const std::string& s) {
  if (s.empty() || s[0] == '.' || s[0] == '/' || s.find("..") != std::string::npos) return false;
  return std::count(s.begin(), s.end(), '/') == 1 && s.back() != '/';
}

fs::path find_folder(const ModelLocation& where) {
  if (where.model.empty()) throw Error(ErrorCode::invalid_argument, "no model given: pass a folder or a Hugging Face id");
  std::error_code ec;
  fs::path as_path(where.model);
  if (fs::is_directory(as_path, ec)) return as_path;
  std::string cache = where.model_cache_dir;
  if (cache.empty()) {
    const char* env = std::getenv("LEANEMBED_MODEL_CACHE_DIR");
    if (!env || !*env) env = std::getenv("LEANEMBED_CACHE_DIR");  // the older name
    cache = env && *env ? env : "./models";
  }
  if (looks_like_hub_id(where.model)) {
    fs::path in_cache = fs::path(cache) / where.model;
    if (fs::is_directory(in_cache, ec)) return in_cache;
    throw Error(ErrorCode::io,
                "model '" + where.model + "' is not a folder and is not in the cache folder '" + cache +
                    "' (looked for '" + in_cache.string() +
                    "'). leanembed does not download: put the model's files there as transformers.js lays them "
                    "out (config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx …), or pass the folder "
                    "path, or set the model cache folder (model_cache_dir / LEANEMBED_MODEL_CACHE_DIR).");
  }
  throw Error(ErrorCode::io, "model folder '" + where.model + "' does not exist");
}

}  // namespace

Dtype dtype_from_name(const std::string& name) {
  for (const auto& e : kDtypes)
    if (name == e.name) return e.dtype;
  std::string valid;
  for (const auto& e : kDtypes) valid += std::string(valid.empty() ? "" : ", ") + e.name;
  throw Error(ErrorCode::invalid_argument, "unknown dtype '" + name + "' (expected one of: " + valid + ")");
}

const char* dtype_name(Dtype dtype) noexcept {
  for (const auto& e : kDtypes)
    if (dtype == e.dtype) return e.name;
  return "?";
}

std::string dtype_file(Dtype dtype) {
  for (const auto& e : kDtypes)
    if (dtype == e.dtype) return std::string("onnx/model") + e.suffix + ".onnx";
  return "onnx/model.onnx";
}

Pooling pooling_from_name(const std::string& name) {
  for (const auto& e : kPoolings)
    if (name == e.name) return e.pooling;
  throw Error(ErrorCode::invalid_argument,
              "unknown pooling '" + name + "' (expected one of: mean, cls, max, lasttoken, mean_sqrt_len)");
}

const char* pooling_name(Pooling pooling) noexcept {
  for (const auto& e : kPoolings)
    if (pooling == e.pooling) return e.name;
  return "?";
}

ModelFolder resolve_model_folder(const ModelLocation& where) {
  ModelFolder m;
  const fs::path folder = find_folder(where);
  m.folder = folder.string();

  // The ONNX file.
  fs::path onnx = where.model_file.empty() ? folder / dtype_file(where.dtype) : fs::path(where.model_file);
  if (onnx.is_relative() && !where.model_file.empty()) onnx = folder / onnx;
  if (!is_file(onnx) && where.model_file.empty() && quantize::can_quantize_to(where.dtype) &&
      is_file(folder / dtype_file(Dtype::fp32))) {
    onnx = folder / dtype_file(Dtype::fp32);  // no file for this dtype: quantize the fp32 model at load
    m.quantize_at_load = true;
  }
  if (!is_file(onnx)) {
    std::string wanted = where.model_file.empty() ? dtype_file(where.dtype) : where.model_file;
    throw Error(ErrorCode::io,
                "model file '" + onnx.string() + "' not found" +
                    (where.model_file.empty() ? std::string(" (dtype ") + dtype_name(where.dtype) + ")" : std::string()) +
                    ". The folder '" + m.folder + "' holds:" + listing(folder) +
                    "\nleanembed does not download: fetch '" + wanted + "' from the model's Hugging Face repository into '" +
                    (folder / wanted).parent_path().string() + "/', or choose another --dtype or --model-file.");
  }
  m.onnx_path = onnx.string();

  // Tokenizer files.
  if (is_file(folder / "tokenizer.json")) m.tokenizer_json = (folder / "tokenizer.json").string();
  if (is_file(folder / "vocab.txt")) m.vocab_txt = (folder / "vocab.txt").string();
  if (is_file(folder / "tokenizer_config.json")) m.tokenizer_config_json = (folder / "tokenizer_config.json").string();
  if (m.tokenizer_json.empty() && m.vocab_txt.empty()) {
    throw Error(ErrorCode::io, "model folder '" + m.folder + "' has no tokenizer.json and no vocab.txt; it holds:" +
                                   listing(folder) + "\nfetch tokenizer.json (and tokenizer_config.json) into '" + m.folder + "/'");
  }

  // config.json: architecture figures.
  const fs::path config = folder / "config.json";
  if (is_file(config)) {
    json j = read_json(config);
    if (auto it = j.find("model_type"); it != j.end() && it->is_string()) m.model_type = it->get<std::string>();
    if (auto v = number_field(j, "hidden_size", config)) m.hidden_size = static_cast<int64_t>(*v);
    if (auto v = number_field(j, "max_position_embeddings", config)) m.max_position_embeddings = static_cast<int64_t>(*v);
  }

  // sentence-transformers modules: pooling and normalisation.
  const fs::path modules = folder / "modules.json";
  if (is_file(modules)) {
    std::ifstream in(modules);
    json list = json::parse(in, nullptr, false);
    if (list.is_discarded() || !list.is_array()) {
      throw Error(ErrorCode::model_format, "'" + modules.string() + "': expected a JSON array of modules");
    }
    m.normalize = false;
    for (const auto& mod : list) {
      if (!mod.is_object() || !mod.contains("type") || !mod["type"].is_string()) {
        throw Error(ErrorCode::model_format, "'" + modules.string() + "': every module needs a string field \"type\"");
      }
      const std::string type = mod["type"].get<std::string>();
      const std::string path = mod.value("path", std::string());
      if (type.ends_with(".Normalize")) m.normalize = true;
      if (type.ends_with(".Pooling")) {
        const fs::path pcfg = module_folder(folder, path, type, modules) / "config.json";
        if (!is_file(pcfg)) {
          throw Error(ErrorCode::io, "'" + modules.string() + "' lists a Pooling module at '" + path +
                                         "' but '" + pcfg.string() + "' does not exist");
        }
        json p = read_json(pcfg);
        int modes = 0;
        if (bool_field(p, "pooling_mode_mean_tokens", pcfg)) { m.pooling = Pooling::mean; ++modes; }
        if (bool_field(p, "pooling_mode_cls_token", pcfg)) { m.pooling = Pooling::cls; ++modes; }
        if (bool_field(p, "pooling_mode_max_tokens", pcfg)) { m.pooling = Pooling::max; ++modes; }
        if (bool_field(p, "pooling_mode_lasttoken", pcfg)) { m.pooling = Pooling::last_token; ++modes; }
        if (bool_field(p, "pooling_mode_mean_sqrt_len_tokens", pcfg)) { m.pooling = Pooling::mean_sqrt_len; ++modes; }
        if (bool_field(p, "pooling_mode_weightedmean_tokens", pcfg)) {
          throw Error(ErrorCode::unsupported, "'" + pcfg.string() + "': pooling_mode_weightedmean_tokens is not supported");
        }
        if (modes > 1) {
          throw Error(ErrorCode::unsupported, "'" + pcfg.string() +
                                                  "': several pooling modes at once (concatenated vectors) are not supported");
        }
      }
    }
  }

  // Maximum length.
  const fs::path sbert = folder / "sentence_bert_config.json";
  const fs::path tcfg = folder / "tokenizer_config.json";
  if (is_file(sbert)) {
    if (auto v = number_field(read_json(sbert), "max_seq_length", sbert)) {
      m.max_length = static_cast<int64_t>(*v);
      m.max_length_source = "sentence_bert_config.json max_seq_length";
    }
  }
  if (m.max_length_source.empty() && is_file(tcfg)) {
    if (auto v = number_field(read_json(tcfg), "model_max_length", tcfg); v && *v > 0 && *v <= 1e6) {
      m.max_length = static_cast<int64_t>(*v);
      m.max_length_source = "tokenizer_config.json model_max_length";
    }
  }
  if (m.max_length_source.empty()) m.max_length_source = "default";
  if (m.max_position_embeddings > 0 && m.max_length > m.max_position_embeddings) {
    m.max_length = m.max_position_embeddings;
    m.max_length_source += ", capped by config.json max_position_embeddings";
  }
  if (m.max_length < 2) {
    throw Error(ErrorCode::model_format, "model folder '" + m.folder + "': maximum length " + std::to_string(m.max_length) +
                                             " (from " + m.max_length_source + ") leaves no room for [CLS] and [SEP]");
  }
  return m;
}

}  // namespace leanembed
