// tokenizer.json (Hugging Face tokenizers format) -> Tokenizer::Impl.
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "leanembed/error.h"
#include "tokenizer/loaders.h"
#include "tokenizer/utf8.h"

namespace leanembed::tokenizer {

using nlohmann::json;

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::io, path + ": cannot open for reading");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error(ErrorCode::io, path + ": read error");
  return s.str();
}

void check_json_depth(std::string_view text, const std::string& source, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        throw Error(ErrorCode::model_format, source + ": JSON nests deeper than " + std::to_string(max_depth) +
                                                 " levels (at byte " + std::to_string(i) + ")");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

namespace {

// Reading helpers: every error names the file, the field path, what was expected and found.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(ErrorCode code, const std::string& path, const std::string& message) const {
    throw Error(code, source_ + ": " + path + ": " + message);
  }
  static std::string describe(const json& v) {
    std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
    if (s.size() > 80) s = s.substr(0, 77) + "...";
    return s;
  }
  const json& object(const json& v, const std::string& path) const {
    if (!v.is_object()) fail(ErrorCode::model_format, path, "expected an object, found " + describe(v));
    return v;
  }
  // A member that may be absent or null -> nullptr.
  const json* optional(const json& obj, const char* key) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
  }
  const json& required(const json& obj, const char* key, const std::string& path) const {
    auto it = obj.find(key);
    if (it == obj.end()) fail(ErrorCode::model_format, path + "." + key, "missing");
    return *it;
  }
  bool boolean(const json& obj, const char* key, const std::string& path, bool fallback) const {
    const json* v = optional(obj, key);
    if (!v) return fallback;
    if (!v->is_boolean()) fail(ErrorCode::model_format, path + "." + key, "expected true or false, found " + describe(*v));
    return v->get<bool>();
  }
  std::string string(const json& v, const std::string& path) const {
    if (!v.is_string()) fail(ErrorCode::model_format, path, "expected a string, found " + describe(v));
    return v.get<std::string>();
  }
  std::string string(const json& obj, const char* key, const std::string& path, const char* fallback) const {
    const json* v = optional(obj, key);
    if (!v) return fallback;
    return string(*v, path + "." + key);
  }
  std::uint32_t id(const json& v, const std::string& path) const {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > 0xFFFFFFFFll) {
      fail(ErrorCode::model_format, path, "expected an id (integer 0..4294967295), found " + describe(v));
    }
    return static_cast<std::uint32_t>(v.get<std::int64_t>());
  }
  std::string type(const json& obj, const std::string& path) const {
    const json* t = optional(obj, "type");
    if (!t) fail(ErrorCode::model_format, path + ".type", "missing");
    return string(*t, path + ".type");
  }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

void read_normalizer(const Reader& r, const json& root, Tokenizer::Impl& tok) {
  const json* n = r.optional(root, "normalizer");
  if (!n) return;
  r.object(*n, "normalizer");
  std::string type = r.type(*n, "normalizer");
  if (type != "BertNormalizer") {
    r.fail(ErrorCode::unsupported, "normalizer.type",
           "only BertNormalizer (or null) is supported, found \"" + type + "\"");
  }
  BertNormalizerOptions o;
  o.clean_text = r.boolean(*n, "clean_text", "normalizer", true);
  o.handle_chinese_chars = r.boolean(*n, "handle_chinese_chars", "normalizer", true);
  o.lowercase = r.boolean(*n, "lowercase", "normalizer", true);
  o.strip_accents = r.boolean(*n, "strip_accents", "normalizer", o.lowercase);  // null follows lowercase
  tok.normalizer.emplace(o);
}

void read_pre_tokenizer(const Reader& r, const json& root, Tokenizer::Impl& tok) {
  const json* p = r.optional(root, "pre_tokenizer");
  if (!p) return;
  r.object(*p, "pre_tokenizer");
  std::string type = r.type(*p, "pre_tokenizer");
  if (type != "BertPreTokenizer") {
    r.fail(ErrorCode::unsupported, "pre_tokenizer.type",
           "only BertPreTokenizer (or null) is supported, found \"" + type + "\"");
  }
  tok.bert_pre_tokenizer = true;
}

void read_model(const Reader& r, const json& root, Tokenizer::Impl& tok) {
  const json& m = r.object(r.required(root, "model", "(root)"), "model");
  std::string type = r.type(m, "model");
  if (type != "WordPiece") {
    r.fail(ErrorCode::unsupported, "model.type", "only WordPiece is supported, found \"" + type + "\"");
  }
  const json& vocab = r.required(m, "vocab", "model");
  if (!vocab.is_object()) r.fail(ErrorCode::model_format, "model.vocab", "expected an object {token: id}, found " + Reader::describe(vocab));
  std::vector<std::pair<std::string, std::uint32_t>> entries;
  entries.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    entries.emplace_back(it.key(), r.id(it.value(), "model.vocab[\"" + it.key() + "\"]"));
  }
  std::string unk = r.string(m, "unk_token", "model", "[UNK]");
  std::string prefix = r.string(m, "continuing_subword_prefix", "model", "##");
  std::size_t max_chars = 100;
  if (const json* v = r.optional(m, "max_input_chars_per_word")) {
    if (!v->is_number_unsigned()) {
      r.fail(ErrorCode::model_format, "model.max_input_chars_per_word", "expected a non-negative integer, found " + Reader::describe(*v));
    }
    max_chars = v->get<std::size_t>();
  }
  tok.model = std::make_unique<WordPiece>(std::move(entries), std::move(unk), std::move(prefix), max_chars,
                                          r.source());
}

std::vector<AddedToken> read_added_tokens(const Reader& r, const json& root) {
  std::vector<AddedToken> tokens;
  const json* list = r.optional(root, "added_tokens");
  if (!list) return tokens;
  if (!list->is_array()) r.fail(ErrorCode::model_format, "added_tokens", "expected an array, found " + Reader::describe(*list));
  for (std::size_t i = 0; i < list->size(); ++i) {
    std::string path = "added_tokens[" + std::to_string(i) + "]";
    const json& t = r.object((*list)[i], path);
    AddedToken a;
    a.content = r.string(r.required(t, "content", path), path + ".content");
    a.id = r.id(r.required(t, "id", path), path + ".id");
    a.special = r.boolean(t, "special", path, false);
    a.single_word = r.boolean(t, "single_word", path, false);
    a.lstrip = r.boolean(t, "lstrip", path, false);
    a.rstrip = r.boolean(t, "rstrip", path, false);
    a.normalized = r.boolean(t, "normalized", path, !a.special);
    tokens.push_back(std::move(a));
  }
  return tokens;
}

// One piece of a TemplateProcessing template: a special token (by name) or the sequence.
struct TemplatePiece {
  bool sequence = false;
  std::string name;  // special token name, or "A"/"B"
  std::int64_t type_id = 0;
};

TemplatePiece parse_piece_string(const Reader& r, const std::string& text, const std::string& path) {
  // "[CLS]", "[CLS]:0", "$A", "$B:1", "$", "$1" (type id of sequence A)
  auto bad = [&] { r.fail(ErrorCode::model_format, path, "cannot read template piece \"" + text + "\""); };
  std::string id = text;
  std::int64_t type_id = 0;
  auto colon = text.find(':');
  if (colon != std::string::npos) {
    id = text.substr(0, colon);
    std::string t = text.substr(colon + 1);
    if (t.empty() || t.size() > 9 || t.find_first_not_of("0123456789") != std::string::npos) bad();
    type_id = std::stoll(t);
  }
  TemplatePiece p;
  p.type_id = type_id;
  if (!id.empty() && id[0] == '$') {
    std::string rest = id.substr(1);
    p.sequence = true;
    if (rest.empty() || rest == "A" || rest == "a") {
      p.name = "A";
    } else if (rest == "B" || rest == "b") {
      p.name = "B";
    } else if (rest.size() <= 9 && rest.find_first_not_of("0123456789") == std::string::npos) {
      p.name = "A";
      if (colon == std::string::npos) p.type_id = std::stoll(rest);
    } else {
      bad();
    }
  } else {
    p.name = id;
  }
  return p;
}

std::vector<TemplatePiece> read_template(const Reader& r, const json& v, const std::string& path) {
  std::vector<TemplatePiece> pieces;
  if (v.is_string()) {
    std::istringstream words(v.get<std::string>());
    std::string w;
    while (words >> w) pieces.push_back(parse_piece_string(r, w, path));
    return pieces;
  }
  if (!v.is_array()) r.fail(ErrorCode::model_format, path, "expected a template (array or string), found " + Reader::describe(v));
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::string ipath = path + "[" + std::to_string(i) + "]";
    const json& item = v[i];
    if (item.is_string()) {
      pieces.push_back(parse_piece_string(r, item.get<std::string>(), ipath));
      continue;
    }
    r.object(item, ipath);
    TemplatePiece p;
    const json* body = nullptr;
    if (const json* s = r.optional(item, "SpecialToken")) {
      body = s;
      ipath += ".SpecialToken";
    } else if (const json* q = r.optional(item, "Sequence")) {
      body = q;
      p.sequence = true;
      ipath += ".Sequence";
    } else {
      r.fail(ErrorCode::model_format, ipath, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}, found " + Reader::describe(item));
    }
    r.object(*body, ipath);
    p.name = r.string(r.required(*body, "id", ipath), ipath + ".id");
    if (const json* t = r.optional(*body, "type_id")) p.type_id = r.id(*t, ipath + ".type_id");
    if (p.sequence && p.name != "A" && p.name != "B") {
      r.fail(ErrorCode::model_format, ipath + ".id", "expected \"A\" or \"B\", found \"" + p.name + "\"");
    }
    pieces.push_back(std::move(p));
  }
  return pieces;
}

void read_post_processor(const Reader& r, const json& root, Tokenizer::Impl& tok) {
  const json* p = r.optional(root, "post_processor");
  if (!p) return;
  r.object(*p, "post_processor");
  std::string type = r.type(*p, "post_processor");
  if (type == "BertProcessing") {
    auto pair = [&](const char* key) {
      std::string path = std::string("post_processor.") + key;
      const json& v = r.required(*p, key, "post_processor");
      if (!v.is_array() || v.size() != 2) r.fail(ErrorCode::model_format, path, "expected [token, id], found " + Reader::describe(v));
      return Tokenizer::Impl::SpecialPiece{r.id(v[1], path + "[1]"), r.string(v[0], path + "[0]"), 0};
    };
    tok.prefix = {pair("cls")};
    tok.suffix = {pair("sep")};
    return;
  }
  if (type != "TemplateProcessing") {
    r.fail(ErrorCode::unsupported, "post_processor.type",
           "only TemplateProcessing, BertProcessing (or null) are supported, found \"" + type + "\"");
  }
  std::vector<TemplatePiece> single = read_template(r, r.required(*p, "single", "post_processor"), "post_processor.single");
  const json* specials = r.optional(*p, "special_tokens");
  if (specials) r.object(*specials, "post_processor.special_tokens");
  bool seen_sequence = false;
  for (std::size_t i = 0; i < single.size(); ++i) {
    const TemplatePiece& piece = single[i];
    std::string path = "post_processor.single[" + std::to_string(i) + "]";
    if (piece.sequence) {
      if (piece.name != "A" || seen_sequence) {
        r.fail(ErrorCode::unsupported, path, "a single-sequence template must use $A exactly once, found $" + piece.name);
      }
      seen_sequence = true;
      tok.sequence_type_id = piece.type_id;
      continue;
    }
    const json* st = specials ? r.optional(*specials, piece.name.c_str()) : nullptr;
    if (!st) {
      r.fail(ErrorCode::model_format, "post_processor.special_tokens",
             "the template uses \"" + piece.name + "\" but special_tokens does not define it");
    }
    std::string spath = "post_processor.special_tokens[\"" + piece.name + "\"]";
    r.object(*st, spath);
    const json& ids = r.required(*st, "ids", spath);
    const json& tokens = r.required(*st, "tokens", spath);
    if (!ids.is_array() || !tokens.is_array() || ids.size() != tokens.size()) {
      r.fail(ErrorCode::model_format, spath, "expected \"ids\" and \"tokens\" arrays of the same length");
    }
    auto& side = seen_sequence ? tok.suffix : tok.prefix;
    for (std::size_t k = 0; k < ids.size(); ++k) {
      side.push_back(Tokenizer::Impl::SpecialPiece{r.id(ids[k], spath + ".ids[" + std::to_string(k) + "]"),
                                                   r.string(tokens[k], spath + ".tokens[" + std::to_string(k) + "]"),
                                                   piece.type_id});
    }
  }
  if (!seen_sequence) {
    r.fail(ErrorCode::model_format, "post_processor.single", "the template has no $A (the sequence)");
  }
}

}  // namespace

std::unique_ptr<Tokenizer::Impl> load_tokenizer_json(std::string_view text, const std::string& source) {
  check_json_depth(text, source);
  json root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw Error(ErrorCode::model_format, source + ": not valid JSON: " + e.what());
  }
  Reader r(source);
  r.object(root, "(root)");
  auto tok = std::make_unique<Tokenizer::Impl>();
  tok->source = source;
  try {
    read_model(r, root, *tok);
    read_normalizer(r, root, *tok);
    read_pre_tokenizer(r, root, *tok);
    read_post_processor(r, root, *tok);
    tok->add_tokens(read_added_tokens(r, root));
  } catch (const json::exception& e) {  // a type error the checks above missed
    throw Error(ErrorCode::model_format, source + ": " + e.what());
  }
  // The decoder only matters for decoding, which this library does not do; truncation and
  // padding are decided by the caller (see tokenizer.h).
  return tok;
}

}  // namespace leanembed::tokenizer
