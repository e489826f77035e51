#include "embed/max_length.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <cmath>
#include <optional>
#include <sstream>

#include "leanembed/error.h"

namespace leanembed {
namespace {

using nlohmann::json;

bool is_file(const std::string& p) {
  std::error_code ec;
  return !p.empty() && std::filesystem::is_regular_file(p, ec);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::io, "cannot read '" + path + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// `field` of the small JSON object in `path`: nullopt when absent or null.
std::optional<double> top_level_number(const std::string& path, const char* field) {
  json j = json::parse(read_text(path), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw Error(ErrorCode::model_format, "'" + path + "' is not a JSON object");
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number())
    throw Error(ErrorCode::model_format, "'" + path + "': field \"" + std::string(field) + "\" should be a number, found " +
                                             std::string(it->type_name()));
  return it->get<double>();
}

// tokenizer.json is large (the vocabulary): a SAX pass that keeps only truncation.max_length,
// allocating nothing for the rest.
class TruncationReader : public nlohmann::json_sax<json> {
 public:
  std::optional<double> max_length;
  bool malformed = false;  // truncation.max_length is there but not a number

  bool null() override { return value(std::nullopt, true); }
  bool boolean(bool) override { return value(std::nullopt, false); }
  bool number_integer(number_integer_t v) override { return value(static_cast<double>(v), false); }
  bool number_unsigned(number_unsigned_t v) override { return value(static_cast<double>(v), false); }
  bool number_float(number_float_t v, const string_t&) override { return value(v, false); }
  bool string(string_t&) override { return value(std::nullopt, false); }
  bool binary(binary_t&) override { return value(std::nullopt, false); }
  bool start_object(std::size_t) override { return open(); }
  bool start_array(std::size_t) override { return open(); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    if (depth_ == 1) in_truncation_ = k == "truncation";
    if (depth_ == 2 && in_truncation_) at_max_length_ = k == "max_length";
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  bool value(std::optional<double> v, bool is_null) {
    if (depth_ == 2 && in_truncation_ && at_max_length_) {
      if (v) max_length = v;
      else if (!is_null) malformed = true;
      at_max_length_ = false;
    }
    if (depth_ == 1) in_truncation_ = false;  // "truncation": null
    return true;
  }
  bool open() {
    ++depth_;
    if (depth_ == 3) at_max_length_ = false;
    return depth_ <= 256;  // refuse absurd nesting instead of growing without bound
  }
  bool close() {
    --depth_;
    if (depth_ == 1) in_truncation_ = false;
    return true;
  }
  int depth_ = 0;
  bool in_truncation_ = false, at_max_length_ = false;
};

std::optional<double> tokenizer_json_truncation(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::io, "cannot read '" + path + "'");
  TruncationReader reader;
  if (!json::sax_parse(in, &reader))
    throw Error(ErrorCode::model_format, "'" + path + "' is not valid JSON (reading truncation.max_length)");
  if (reader.malformed)
    throw Error(ErrorCode::model_format, "'" + path + "': truncation.max_length should be a number");
  return reader.max_length;
}

// A length field's value as a whole number in [1, hi]: checked before the conversion (a double
// outside int64_t's range converts with undefined behaviour), never rounded.
int64_t checked_length(double v, const std::string& path, const char* field, double hi) {
  const std::string value = json(v).dump();
  const std::string expected = "expected a whole number from 1 to " + json(hi).dump();
  if (!std::isfinite(v) || v < 1 || v > hi)
    throw Error(ErrorCode::model_format, "'" + path + "': field \"" + field + "\" is " + value + ", out of range; " + expected);
  if (v != std::floor(v))
    throw Error(ErrorCode::model_format, "'" + path + "': field \"" + field + "\" is " + value +
                                             ", not a whole number (it is not rounded); " + expected);
  return static_cast<int64_t>(v);
}

// Tokenizers write a huge "unbounded" sentinel (int(1e30)) when the model sets no limit: ignored.
constexpr double kUnboundedSentinel = 1e6;
// The largest sequence length sentence_bert_config.json may name (capped by the model's positions).
constexpr double kMaxLengthField = 2147483648.0;

}  // namespace

MaxLength decide_max_length(const std::string& sentence_bert_config, const std::string& tokenizer_config,
                            const std::string& tokenizer_json, int64_t max_position_embeddings) {
  MaxLength m;
  if (is_file(sentence_bert_config)) {
    if (auto v = top_level_number(sentence_bert_config, "max_seq_length")) {
      m.tokens = checked_length(*v, sentence_bert_config, "max_seq_length", kMaxLengthField);
      m.source = "sentence_bert_config.json max_seq_length";
    }
  }
  if (m.source.empty() && is_file(tokenizer_config)) {
    if (auto v = top_level_number(tokenizer_config, "model_max_length"); v && *v <= kUnboundedSentinel) {
      m.tokens = checked_length(*v, tokenizer_config, "model_max_length", kUnboundedSentinel);
      m.source = "tokenizer_config.json model_max_length";
    }
  }
  if (m.source.empty() && is_file(tokenizer_json)) {
    if (auto v = tokenizer_json_truncation(tokenizer_json); v && *v <= kUnboundedSentinel) {
      m.tokens = checked_length(*v, tokenizer_json, "truncation.max_length", kUnboundedSentinel);
      m.source = "tokenizer.json truncation.max_length";
    }
  }
  if (m.source.empty()) m.source = "default";
  if (max_position_embeddings > 0 && m.tokens > max_position_embeddings) {
    m.tokens = max_position_embeddings;
    m.source += ", capped by config.json max_position_embeddings";
  }
  return m;
}

}  // namespace leanembed
