// vocab.txt + tokenizer_config.json (+ special_tokens_map.json) -> Tokenizer::Impl, configured as
// transformers converts a slow BertTokenizer to a fast one: BertNormalizer(clean_text=true,
// handle_chinese_chars=tokenize_chinese_chars, strip_accents, lowercase=do_lower_case),
// BertPreTokenizer, WordPiece("##", 100 chars), "[CLS] $A [SEP]", special tokens not normalized.
#include <nlohmann/json.hpp>

#include "leanembed/error.h"
#include "tokenizer/loaders.h"
#include "tokenizer/utf8.h"

namespace leanembed::tokenizer {

using nlohmann::json;

namespace {

json read_json_file(const std::string& path) {
  if (path.empty()) return json::object();
  std::string text = read_whole_file(path);
  check_json_depth(text, path);
  json v;
  try {
    v = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(ErrorCode::model_format, path + ": not valid JSON: " + e.what());
  }
  if (!v.is_object()) throw Error(ErrorCode::model_format, path + ": (root): expected an object");
  return v;
}

// A token setting: "[CLS]" or {"content": "[CLS]", ...}; nullopt when absent or null.
std::optional<std::string> token_setting(const json& config, const char* key, const std::string& path) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  throw Error(ErrorCode::model_format, path + ": " + key + ": expected a string or {\"content\": string}, found " +
                                           it->dump(-1, ' ', false, json::error_handler_t::replace));
}

bool bool_setting(const json& config, const char* key, const std::string& path, bool fallback) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    throw Error(ErrorCode::model_format, path + ": " + key + ": expected true or false, found " +
                                             it->dump(-1, ' ', false, json::error_handler_t::replace));
  }
  return it->get<bool>();
}

}  // namespace

std::unique_ptr<Tokenizer::Impl> load_vocab_txt(const std::string& vocab_path, const std::string& config_path,
                                                const std::string& special_tokens_map_path) {
  std::string text = read_whole_file(vocab_path);
  if (utf8_valid_prefix(text) != text.size()) {
    throw Error(ErrorCode::model_format, vocab_path + ": not valid UTF-8 (at byte " +
                                             std::to_string(utf8_valid_prefix(text)) + ")");
  }
  std::vector<std::pair<std::string, std::uint32_t>> vocab;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (vocab.size() >= 0xFFFFFFFFull) throw Error(ErrorCode::model_format, vocab_path + ": too many lines");
    vocab.emplace_back(std::string(line), static_cast<std::uint32_t>(vocab.size()));
    pos = end + 1;
  }

  json config = read_json_file(config_path);
  json special_map = read_json_file(special_tokens_map_path);
  if (auto it = config.find("tokenizer_class"); it != config.end() && it->is_string()) {
    static const char* const known[] = {"BertTokenizer", "BertTokenizerFast", "DistilBertTokenizer",
                                        "DistilBertTokenizerFast", "ElectraTokenizer", "ElectraTokenizerFast"};
    std::string cls = it->get<std::string>();
    bool ok = false;
    for (const char* k : known) ok = ok || cls == k;
    if (!ok) {
      throw Error(ErrorCode::unsupported, config_path + ": tokenizer_class: only BERT-style WordPiece tokenizers "
                                                        "are supported without tokenizer.json, found \"" + cls + "\"");
    }
  }
  // A token named in tokenizer_config.json, else in special_tokens_map.json, else the BERT default.
  auto token = [&](const char* key, const char* fallback) {
    if (auto v = token_setting(config, key, config_path)) return *v;
    if (auto v = token_setting(special_map, key, special_tokens_map_path)) return *v;
    return std::string(fallback);
  };
  std::string unk = token("unk_token", "[UNK]"), sep = token("sep_token", "[SEP]"),
              pad = token("pad_token", "[PAD]"), cls = token("cls_token", "[CLS]"),
              mask = token("mask_token", "[MASK]");

  auto tok = std::make_unique<Tokenizer::Impl>();
  tok->source = vocab_path;
  tok->model = std::make_unique<WordPiece>(std::move(vocab), unk, "##", 100, vocab_path);

  bool basic = bool_setting(config, "do_basic_tokenize", config_path, true);
  BertNormalizerOptions o;
  o.clean_text = true;
  o.handle_chinese_chars = basic && bool_setting(config, "tokenize_chinese_chars", config_path, true);
  o.lowercase = basic && bool_setting(config, "do_lower_case", config_path, true);
  o.strip_accents = basic && bool_setting(config, "strip_accents", config_path, o.lowercase);
  tok->normalizer.emplace(o);
  tok->bert_pre_tokenizer = true;

  auto special_id = [&](const std::string& name, const char* role) {
    std::int64_t id = tok->model->token_to_id(name);
    if (id < 0) {
      throw Error(ErrorCode::model_format, vocab_path + ": the " + std::string(role) + " \"" + name +
                                               "\" is not in the vocabulary");
    }
    return id;
  };
  tok->prefix = {{special_id(cls, "cls_token"), cls, 0}};
  tok->suffix = {{special_id(sep, "sep_token"), sep, 0}};

  std::vector<AddedToken> added;
  for (const std::string* name : {&pad, &unk, &cls, &sep, &mask}) {
    AddedToken t;
    t.content = *name;
    t.special = true;
    t.normalized = false;
    added.push_back(t);
  }
  for (const json* source : {&config, &special_map}) {
    auto it = source->find("additional_special_tokens");
    if (it == source->end() || !it->is_array()) continue;
    for (const json& v : *it) {
      AddedToken t;
      if (v.is_string()) {
        t.content = v.get<std::string>();
      } else if (v.is_object() && v.contains("content") && v["content"].is_string()) {
        t.content = v["content"].get<std::string>();
      } else {
        continue;
      }
      t.special = true;
      t.normalized = false;
      added.push_back(t);
    }
  }
  tok->add_tokens(added);
  return tok;
}

}  // namespace leanembed::tokenizer
