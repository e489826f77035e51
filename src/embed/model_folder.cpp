#include "embed/model_folder.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "embed/max_length.h"
#include "leanembed/error.h"
#include "hub/hub.h"
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

// An optional whole-number field in [lo, hi]: absent/null → nullopt. Checked as a double before
// it is converted (an out-of-range double → int64 conversion is undefined behaviour), and never
// rounded: 2.9 is an error, 128.0 is 128. Errors name the file, the field, the value as written and
// what was expected.
std::optional<int64_t> integer_field(const json& j, const char* field, const fs::path& file, int64_t lo, int64_t hi) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::nullopt;
  const std::string expected = "expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
  if (!it->is_number()) {
    throw Error(ErrorCode::model_format, "'" + file.string() + "': field \"" + field + "\" is " + it->dump() + " (" +
                                             std::string(it->type_name()) + "); " + expected);
  }
  if (it->is_number_integer()) {
    // Exact for every integer JSON can hold in 64 bits.
    if (it->is_number_unsigned() ? it->get<uint64_t>() <= static_cast<uint64_t>(hi) && static_cast<int64_t>(it->get<uint64_t>()) >= lo
                                  : it->get<int64_t>() >= lo && it->get<int64_t>() <= hi) {
      return it->is_number_unsigned() ? static_cast<int64_t>(it->get<uint64_t>()) : it->get<int64_t>();
    }
  } else {
    const double v = it->get<double>();
    if (std::isfinite(v) && v == std::floor(v) && v >= static_cast<double>(lo) && v <= static_cast<double>(hi)) {
      return static_cast<int64_t>(v);
    }
    if (std::isfinite(v) && v != std::floor(v) && v >= static_cast<double>(lo) && v <= static_cast<double>(hi)) {
      throw Error(ErrorCode::model_format, "'" + file.string() + "': field \"" + field + "\" is " + it->dump() +
                                               ", not a whole number (it is not rounded); " + expected);
    }
  }
  throw Error(ErrorCode::model_format, "'" + file.string() + "': field \"" + field + "\" is " + it->dump() +
                                           ", out of range; " + expected);
}

// The largest sequence length a field may name (lengths beyond the model's positions are capped).
constexpr int64_t kMaxLengthField = int64_t{1} << 31;

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

// A Pooling module's config.json: exactly one known pooling mode set (none, an unknown one or
// several at once are errors), and its dimension matching config.json's hidden size.
void read_pooling_config(const fs::path& pcfg, const fs::path& modules, const std::string& path, ModelFolder& m) {
  if (!is_file(pcfg)) {
    throw Error(ErrorCode::io, "'" + modules.string() + "' lists a Pooling module at '" + path + "' but '" + pcfg.string() +
                                   "' does not exist");
  }
  const json p = read_json(pcfg);
  static const std::pair<const char*, Pooling> kModes[] = {
      {"pooling_mode_mean_tokens", Pooling::mean},      {"pooling_mode_cls_token", Pooling::cls},
      {"pooling_mode_max_tokens", Pooling::max},        {"pooling_mode_lasttoken", Pooling::last_token},
      {"pooling_mode_mean_sqrt_len_tokens", Pooling::mean_sqrt_len},
  };
  int modes = 0;
  for (const auto& [field, pooling] : kModes) {
    if (bool_field(p, field, pcfg)) {
      m.pooling = pooling;
      ++modes;
    }
  }
  for (const auto& [key, value] : p.items()) {
    if (!key.starts_with("pooling_mode_")) continue;
    bool known = false;
    for (const auto& [field, pooling] : kModes) known = known || key == field;
    if (known || !value.is_boolean() || !value.get<bool>()) continue;
    throw Error(ErrorCode::unsupported, "'" + pcfg.string() + "': \"" + key +
                                            "\": true is a pooling mode leanembed does not implement (it has mean, cls, "
                                            "max, lasttoken and mean_sqrt_len)");
  }
  if (modes == 0) {
    throw Error(ErrorCode::model_format, "'" + pcfg.string() + "' sets no pooling mode (every pooling_mode_* field is "
                                             "false or absent); expected one of pooling_mode_mean_tokens, "
                                             "pooling_mode_cls_token, pooling_mode_max_tokens, pooling_mode_lasttoken, "
                                             "pooling_mode_mean_sqrt_len_tokens set to true");
  }
  if (modes > 1) {
    throw Error(ErrorCode::unsupported, "'" + pcfg.string() +
                                            "': several pooling modes at once (concatenated vectors) are not supported");
  }
  if (auto d = integer_field(p, "word_embedding_dimension", pcfg, 1, int64_t{1} << 20);
      d && m.hidden_size > 0 && *d != m.hidden_size) {
    throw Error(ErrorCode::model_format, "'" + pcfg.string() + "': word_embedding_dimension " + std::to_string(*d) +
                                             " does not match config.json's hidden_size " + std::to_string(m.hidden_size));
  }
}

// A Dense module's config.json (in/out features, bias, activation) and where its weights are.
DenseModuleInfo read_dense_config(const fs::path& dir, const fs::path& modules, const std::string& path) {
  const fs::path cfg = dir / "config.json";
  if (!is_file(cfg)) {
    throw Error(ErrorCode::io, "'" + modules.string() + "' lists a Dense module at '" + path + "' but '" + cfg.string() +
                                   "' does not exist");
  }
  const json j = read_json(cfg);
  DenseModuleInfo d;
  d.folder = dir.string();
  auto features = [&](const char* field) {
    auto v = integer_field(j, field, cfg, 1, int64_t{1} << 20);
    if (!v) throw Error(ErrorCode::model_format, "'" + cfg.string() + "': field \"" + field + "\" is missing");
    return *v;
  };
  d.in_features = features("in_features");
  d.out_features = features("out_features");
  if (auto it = j.find("bias"); it != j.end() && !it->is_null()) d.bias = bool_field(j, "bias", cfg);
  d.activation_name = "torch.nn.modules.activation.Tanh";  // sentence-transformers' default
  if (auto it = j.find("activation_function"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) {
      throw Error(ErrorCode::model_format, "'" + cfg.string() + "': field \"activation_function\" should be a string");
    }
    d.activation_name = it->get<std::string>();
  }
  const std::string act = d.activation_name.substr(d.activation_name.rfind('.') + 1);
  static const std::pair<const char*, DenseActivation> kActivations[] = {
      {"Identity", DenseActivation::identity}, {"Tanh", DenseActivation::tanh}, {"ReLU", DenseActivation::relu},
      {"Sigmoid", DenseActivation::sigmoid},   {"GELU", DenseActivation::gelu},
  };
  bool found = false;
  for (const auto& [name, a] : kActivations) {
    if (act == name) {
      d.activation = a;
      found = true;
    }
  }
  if (!found) {
    throw Error(ErrorCode::unsupported, "'" + cfg.string() + "': activation_function \"" + d.activation_name +
                                            "\" is not supported (Identity, Tanh, ReLU, Sigmoid, GELU are)");
  }
  if (is_file(dir / "model.safetensors")) {
    d.weights_file = (dir / "model.safetensors").string();
  } else if (is_file(dir / "pytorch_model.bin")) {
    throw Error(ErrorCode::unsupported, "'" + (dir / "pytorch_model.bin").string() +
                                            "': the Dense module's weights are a PyTorch pickle, which leanembed does not "
                                            "read; put them in '" + (dir / "model.safetensors").string() +
                                            "' (linear.weight, linear.bias; the Hugging Face repository of most models has it)");
  } else {
    throw Error(ErrorCode::io, "the Dense module '" + dir.string() + "' has no model.safetensors; it holds:" + listing(dir));
  }
  return d;
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
    // The hub id's folder in the cache, with what a load needs: fetched from the hub when missing.
    std::vector<std::string> model_files;  // in order of preference
    if (where.model_file.empty() && where.format == ModelFormat::safetensors) {
      model_files.push_back("model.safetensors");
    } else if (where.model_file.empty()) {
      model_files.push_back(dtype_file(where.dtype));
      if (quantize::can_quantize_to(where.dtype)) model_files.push_back(dtype_file(Dtype::fp32));  // quantized at load
      // A repository without ONNX files (sentence-transformers publish model.safetensors first).
      if (where.format == ModelFormat::automatic && where.dtype == Dtype::fp32) model_files.push_back("model.safetensors");
    } else if (fs::path(where.model_file).is_relative()) {
      model_files.push_back(where.model_file);
    }
    return hub::fetch_model(where, cache, model_files);
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

ModelFormat model_format_from_name(const std::string& name) {
  if (name == "auto" || name == "automatic") return ModelFormat::automatic;
  if (name == "onnx") return ModelFormat::onnx;
  if (name == "safetensors") return ModelFormat::safetensors;
  throw Error(ErrorCode::invalid_argument, "unknown model format '" + name + "' (expected one of: auto, onnx, safetensors)");
}

const char* model_format_name(ModelFormat format) noexcept {
  switch (format) {
    case ModelFormat::automatic: return "auto";
    case ModelFormat::onnx: return "onnx";
    case ModelFormat::safetensors: return "safetensors";
  }
  return "?";
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

  // The model file: the dtype's ONNX file as transformers.js picks it, or model.safetensors.
  fs::path onnx = where.model_file.empty() ? folder / dtype_file(where.dtype) : fs::path(where.model_file);
  if (onnx.is_relative() && !where.model_file.empty()) onnx = folder / onnx;
  const fs::path safetensors = where.model_file.empty() ? folder / "model.safetensors" : onnx;
  const bool named_safetensors = !where.model_file.empty() && (where.format == ModelFormat::safetensors ||
                                                               (where.format == ModelFormat::automatic &&
                                                                onnx.extension() == ".safetensors"));
  if (!is_file(onnx) && where.model_file.empty() && where.format != ModelFormat::safetensors &&
      quantize::can_quantize_to(where.dtype) && is_file(folder / dtype_file(Dtype::fp32))) {
    onnx = folder / dtype_file(Dtype::fp32);  // no file for this dtype: quantize the fp32 model at load
    m.quantize_at_load = true;
  }
  const bool use_safetensors = named_safetensors ||
                               (where.model_file.empty() && where.format == ModelFormat::safetensors) ||
                               (where.model_file.empty() && where.format == ModelFormat::automatic && !is_file(onnx) &&
                                !is_file(folder / dtype_file(Dtype::fp32)) && is_file(safetensors));
  if (is_file(folder / "config.json")) m.config_json = (folder / "config.json").string();
  if (use_safetensors) {
    if (where.model_file.empty() && where.dtype != Dtype::fp32) {
      const std::string wanted = dtype_file(where.dtype);
      throw Error(ErrorCode::unsupported,
                  std::string("dtype ") + dtype_name(where.dtype) + " needs '" + wanted + "' (or onnx/model.onnx, which is " +
                      "then quantized at load), and '" + m.folder + "' has " +
                      (is_file(safetensors) ? "model.safetensors instead" : "neither") +
                      ": leanembed's quantizer rewrites ONNX graphs and does not take bare weights. Fetch '" + wanted +
                      "' (or onnx/model.onnx) from the model's Hugging Face repository (e.g. Xenova/<model> publishes them) into '" +
                      (folder / "onnx").string() + "/', or use dtype fp32 to run model.safetensors as it is stored (F32, F16 or BF16)");
    }
    m.quantize_at_load = false;
    if (!is_file(safetensors)) {
      throw Error(ErrorCode::io, "model file '" + safetensors.string() + "' not found. The folder '" + m.folder +
                                     "' holds:" + listing(folder) +
                                     "\nfetch model.safetensors and config.json from the model's "
                                     "Hugging Face repository, or choose the ONNX format.");
    }
    if (m.config_json.empty()) {
      throw Error(ErrorCode::io, "'" + safetensors.string() + "' needs the model's config.json beside it (the architecture: " +
                                     "hidden_size, num_hidden_layers, ...), and '" + m.folder + "' has none; fetch config.json "
                                     "from the model's Hugging Face repository");
    }
    m.format = ModelFormat::safetensors;
    m.safetensors_path = safetensors.string();
    m.format_reason = named_safetensors ? "model_file names a safetensors file"
                      : where.format == ModelFormat::safetensors
                          ? "format safetensors asked for"
                          : "the folder has no " + dtype_file(where.dtype) + " (nor onnx/model.onnx), and has model.safetensors";
  } else {
    if (!is_file(onnx)) {
      std::string wanted = where.model_file.empty() ? dtype_file(where.dtype) : where.model_file;
      throw Error(ErrorCode::io,
                  "model file '" + onnx.string() + "' not found" +
                      (where.model_file.empty() ? std::string(" (dtype ") + dtype_name(where.dtype) + ")" : std::string()) +
                      ". The folder '" + m.folder + "' holds:" + listing(folder) +
                      "\nfetch '" + wanted + "' from the model's Hugging Face repository into '" +
                      (folder / wanted).parent_path().string() + "/', or choose another --dtype or --model-file" +
                      (where.format == ModelFormat::automatic ? " (model.safetensors with config.json loads too)." : "."));
    }
    m.format = ModelFormat::onnx;
    m.onnx_path = onnx.string();
    m.format_reason = !where.model_file.empty() ? "model_file names it"
                      : m.quantize_at_load     ? std::string("the folder has no ") + dtype_file(where.dtype) +
                                                 ": onnx/model.onnx, quantized at load"
                                               : std::string("the ") + dtype_name(where.dtype) + " ONNX file";
    if (where.model_file.empty() && where.format == ModelFormat::automatic && is_file(folder / "model.safetensors"))
      m.format_reason += " (ONNX is preferred; format safetensors loads model.safetensors instead)";
    else if (where.format == ModelFormat::onnx)
      m.format_reason += ", format onnx asked for";
  }

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
    if (auto v = integer_field(j, "hidden_size", config, 1, int64_t{1} << 20)) m.hidden_size = *v;
    if (auto v = integer_field(j, "max_position_embeddings", config, 1, kMaxLengthField)) m.max_position_embeddings = *v;
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
    bool pooled = false;
    for (const auto& mod : list) {
      if (!mod.is_object() || !mod.contains("type") || !mod["type"].is_string()) {
        throw Error(ErrorCode::model_format, "'" + modules.string() + "': every module needs a string field \"type\"");
      }
      const std::string type = mod["type"].get<std::string>();
      const std::string path = mod.value("path", std::string());
      const std::string kind = type.substr(type.rfind('.') + 1);
      if (kind == "Transformer") continue;
      if (kind == "Normalize") {
        m.normalize = true;
        continue;
      }
      if (kind == "Pooling") {
        read_pooling_config(module_folder(folder, path, type, modules) / "config.json", modules, path, m);
        pooled = true;
        continue;
      }
      if (kind == "Dense") {
        if (!pooled || m.normalize) {
          throw Error(ErrorCode::unsupported, "'" + modules.string() + "': a Dense module (at '" + path + "') " +
                                                  (pooled ? "after Normalize" : "before Pooling") +
                                                  " is not supported (leanembed runs Transformer, Pooling, Dense..., Normalize in that order)");
        }
        m.dense.push_back(read_dense_config(module_folder(folder, path, type, modules), modules, path));
        continue;
      }
      throw Error(ErrorCode::unsupported, "'" + modules.string() + "' lists a module of type \"" + type + "\" (at '" + path +
                                              "'), which leanembed does not implement: it runs Transformer, Pooling, Dense "
                                              "and Normalize modules");
    }
  }

  // sentence_bert_config.json: do_lower_case.
  const fs::path sbert = folder / "sentence_bert_config.json";
  if (is_file(sbert)) {
    if (bool_field(read_json(sbert), "do_lower_case", sbert)) {
      throw Error(ErrorCode::unsupported,
                  "'" + sbert.string() + "': \"do_lower_case\": true (sentence-transformers lowercases each text with "
                  "Python's str.lower() before the tokenizer) is not supported; if the tokenizer lowercases anyway "
                  "(tokenizer.json's normalizer has \"lowercase\": true) and your texts hold no special-token strings "
                  "such as [MASK], setting it to false gives the same vectors");
    }
  }

  // Maximum length (the order is max_length.h's).
  const MaxLength length = decide_max_length((folder / "sentence_bert_config.json").string(), m.tokenizer_config_json,
                                             m.tokenizer_json, m.max_position_embeddings);
  m.max_length = length.tokens;
  m.max_length_source = length.source;
  if (m.max_length < 2) {
    throw Error(ErrorCode::model_format, "model folder '" + m.folder + "': maximum length " + std::to_string(m.max_length) +
                                             " (from " + m.max_length_source + ") leaves no room for [CLS] and [SEP]; expected at least 3");
  }
  return m;
}

}  // namespace leanembed
