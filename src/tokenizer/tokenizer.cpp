// Tokenizer: the public API and the encoding pipeline
//   raw text -> (repair invalid UTF-8) -> split out non-normalized added tokens
//   -> per remaining piece: normalize -> split out normalized added tokens
//   -> per remaining piece: pre-tokenize (BertPreTokenizer) -> WordPiece per word
//   -> post-process ([CLS] ... [SEP]), truncating to max_length.
// Tokens are produced left to right, so once max_length is reached the rest of the text is not
// looked at: the result is the same as tokenizing everything and truncating, as the Rust
// library does.
#include "leanembed/tokenizer.h"

#include <algorithm>
#include <filesystem>

#include "leanembed/error.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode_classes.h"
#include "tokenizer/utf8.h"

namespace leanembed {

using tokenizer::AddedToken;
using tokenizer::WordPiece;

void Tokenizer::Impl::add_tokens(const std::vector<AddedToken>& tokens) {
  const std::int64_t vocab_size = static_cast<std::int64_t>(model->size());
  std::int64_t max_added_id = -1;
  for (const AddedToken& t : added_tokens) max_added_id = std::max(max_added_id, t.id);
  for (const AddedToken& given : tokens) {
    if (given.content.empty()) continue;
    AddedToken token = given;
    auto known = added_index.find(token.content);
    if (known != added_index.end()) {
      AddedToken* existing = &added_tokens[known->second];
      token.id = existing->id;
      token.special = token.special || existing->special;
      *existing = token;  // the later flags win
      continue;
    }
    std::int64_t id = model->token_to_id(token.content);
    if (id < 0) {
      // As the Rust library: one past the largest added id if that is already past the
      // vocabulary, else the vocabulary size.
      id = max_added_id < 0 ? vocab_size : (max_added_id >= vocab_size || vocab_size == 0) ? max_added_id + 1 : vocab_size;
    }
    token.id = id;
    max_added_id = std::max(max_added_id, id);
    added_index.emplace(token.content, added_tokens.size());
    added_tokens.push_back(token);
  }
  std::vector<const AddedToken*> raw, normalized;
  std::vector<std::string> raw_patterns, normalized_patterns;
  // Special tokens first, then the others (the order the Rust library builds its automata in).
  for (int pass = 0; pass < 2; ++pass) {
    for (const AddedToken& t : added_tokens) {
      if (t.special != (pass == 0)) continue;
      if (t.normalized) {
        std::string pattern;
        if (normalizer) {
          normalizer->normalize(t.content, pattern);
        } else {
          pattern = t.content;
        }
        normalized.push_back(&t);
        normalized_patterns.push_back(std::move(pattern));
      } else {
        raw.push_back(&t);
        raw_patterns.push_back(t.content);
      }
    }
  }
  raw_matcher.build(raw, raw_patterns);
  normalized_matcher.build(normalized, normalized_patterns);
}

namespace {

enum class CharClass : unsigned char { word, space, punct };

struct AsciiClasses {
  CharClass cls[128];
  AsciiClasses() {
    for (char32_t c = 0; c < 128; ++c) {
      cls[c] = tokenizer::is_whitespace(c)         ? CharClass::space
               : tokenizer::is_bert_punctuation(c) ? CharClass::punct
                                                   : CharClass::word;
    }
  }
};
const AsciiClasses ascii_classes;

// Appends tokens of the sequence to an Encoding until it holds `limit` ids.
class Sink {
 public:
  Sink(const Tokenizer::Impl& tok, Encoding& out, std::size_t limit, bool with_tokens)
      : tok_(tok), out_(out), limit_(limit), with_tokens_(with_tokens) {}

  bool full() const { return out_.ids.size() >= limit_; }

  void push_added(const AddedToken& token, std::string_view matched) {
    if (full()) return;
    out_.ids.push_back(token.id);
    if (with_tokens_) out_.tokens.emplace_back(matched);
  }

  // Pre-tokenizes a normalized piece and runs WordPiece on each word.
  void push_text(std::string_view text) {
    if (!tok_.bert_pre_tokenizer) {
      std::size_t n_chars = 0;
      for (unsigned char b : text) n_chars += (b & 0xC0) != 0x80;
      push_word(text, n_chars);
      return;
    }
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    std::size_t i = 0, word_begin = 0, n_chars = 0;
    bool in_word = false;
    while (i < n) {
      CharClass cls;
      std::size_t next = i;
      if (bytes[i] < 0x80) {
        cls = ascii_classes.cls[bytes[i]];
        next = i + 1;
      } else {
        char32_t c = tokenizer::utf8_decode(text, next);
        cls = tokenizer::is_whitespace(c)         ? CharClass::space
              : tokenizer::is_bert_punctuation(c) ? CharClass::punct
                                                  : CharClass::word;
      }
      if (cls == CharClass::word) {
        if (!in_word) {
          in_word = true;
          word_begin = i;
          n_chars = 0;
        }
        ++n_chars;
      } else {
        if (in_word) {
          in_word = false;
          push_word(text.substr(word_begin, i - word_begin), n_chars);
        }
        if (full()) return;
        if (cls == CharClass::punct) push_word(text.substr(i, next - i), 1);
      }
      i = next;
    }
    if (in_word) push_word(text.substr(word_begin, n - word_begin), n_chars);
  }

 private:
  void push_word(std::string_view word, std::size_t n_chars) {
    if (full()) return;
    const WordPiece& model = *tok_.model;
    model.tokenize(word, n_chars, pieces_);
    for (const WordPiece::Piece& p : pieces_) {
      if (full()) return;
      out_.ids.push_back(p.id);
      if (!with_tokens_) continue;
      if (p.begin == p.end) {
        out_.tokens.push_back(model.unk_token());
      } else if (p.continuation) {
        out_.tokens.push_back(model.continuing_subword_prefix() + std::string(word.substr(p.begin, p.end - p.begin)));
      } else {
        out_.tokens.emplace_back(word.substr(p.begin, p.end - p.begin));
      }
    }
  }

  const Tokenizer::Impl& tok_;
  Encoding& out_;
  std::size_t limit_;
  bool with_tokens_;
  std::vector<WordPiece::Piece>& pieces_ = thread_pieces();

  static std::vector<WordPiece::Piece>& thread_pieces() {
    thread_local std::vector<WordPiece::Piece> pieces;
    return pieces;
  }
};

std::string& thread_buffer(int which) {
  thread_local std::string buffers[2];
  return buffers[which];
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json", ec)) return from_tokenizer_json((dir / "tokenizer.json").string());
    if (fs::exists(dir / "vocab.txt", ec)) {
      auto optional_file = [&](const char* name) {
        return fs::exists(dir / name, ec) ? (dir / name).string() : std::string();
      };
      return from_vocab_txt((dir / "vocab.txt").string(), optional_file("tokenizer_config.json"),
                            optional_file("special_tokens_map.json"));
    }
    throw Error(ErrorCode::io, path + ": no tokenizer.json or vocab.txt in this folder");
  }
  return from_tokenizer_json(path);
}

Tokenizer Tokenizer::from_tokenizer_json(const std::string& path) {
  return Tokenizer(tokenizer::load_tokenizer_json(tokenizer::read_whole_file(path), path));
}

Tokenizer Tokenizer::from_tokenizer_json_text(std::string_view json, const std::string& source_name) {
  return Tokenizer(tokenizer::load_tokenizer_json(json, source_name));
}

Tokenizer Tokenizer::from_vocab_txt(const std::string& vocab_path, const std::string& config_path,
                                    const std::string& special_tokens_map_path) {
  return Tokenizer(tokenizer::load_vocab_txt(vocab_path, config_path, special_tokens_map_path));
}

Encoding Tokenizer::encode(std::string_view text, std::size_t max_length, bool with_tokens) const {
  Encoding e;
  encode_into(text, max_length, e, with_tokens);
  return e;
}

void Tokenizer::encode_into(std::string_view text, std::size_t max_length, Encoding& out,
                            bool with_tokens) const {
  const Impl& tok = *impl_;
  const std::size_t n_special = tok.prefix.size() + tok.suffix.size();
  if (max_length == 0 || max_length < n_special) {
    throw Error(ErrorCode::invalid_argument,
                "Tokenizer::encode: max_length " + std::to_string(max_length) + " is too small: the " +
                    std::to_string(n_special) + " special tokens of " + tok.source + " need at least " +
                    std::to_string(n_special > 0 ? n_special : 1));
  }
  out.ids.clear();
  out.tokens.clear();
  for (const auto& p : tok.prefix) {
    out.ids.push_back(p.id);
    if (with_tokens) out.tokens.push_back(p.token);
  }
  const std::size_t limit = max_length == no_truncation ? no_truncation : max_length - tok.suffix.size();
  Sink sink(tok, out, limit, with_tokens);

  // Invalid UTF-8 -> U+FFFD per maximal subpart (String::from_utf8_lossy).
  std::string_view raw = text;
  if (tokenizer::utf8_valid_prefix(text) != text.size()) {
    std::string& repaired = thread_buffer(0);
    repaired.clear();
    tokenizer::utf8_append_lossy(text, repaired);
    raw = repaired;
  }
  std::string& normalized = thread_buffer(1);
  tok.raw_matcher.split(raw, [&](std::size_t begin, std::size_t end, const AddedToken* token) {
    if (token) {
      sink.push_added(*token, raw.substr(begin, end - begin));
      return !sink.full();
    }
    std::string_view piece = raw.substr(begin, end - begin);
    if (tok.normalizer) {
      normalized.clear();
      tok.normalizer->normalize(piece, normalized);
      piece = normalized;
    }
    tok.normalized_matcher.split(piece, [&](std::size_t b, std::size_t e, const AddedToken* t) {
      if (t) {
        sink.push_added(*t, piece.substr(b, e - b));
      } else {
        sink.push_text(piece.substr(b, e - b));
      }
      return !sink.full();
    });
    return !sink.full();
  });

  const std::size_t n_sequence = out.ids.size() - tok.prefix.size();
  for (const auto& p : tok.suffix) {
    out.ids.push_back(p.id);
    if (with_tokens) out.tokens.push_back(p.token);
  }
  out.attention_mask.assign(out.ids.size(), 1);
  out.token_type_ids.resize(out.ids.size());
  std::size_t k = 0;
  for (const auto& p : tok.prefix) out.token_type_ids[k++] = p.type_id;
  for (std::size_t j = 0; j < n_sequence; ++j) out.token_type_ids[k++] = tok.sequence_type_id;
  for (const auto& p : tok.suffix) out.token_type_ids[k++] = p.type_id;
}

std::vector<Encoding> Tokenizer::encode_batch(std::span<const std::string_view> texts, std::size_t max_length,
                                              bool with_tokens) const {
  std::vector<Encoding> result(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) encode_into(texts[i], max_length, result[i], with_tokens);
  return result;
}

std::vector<Encoding> Tokenizer::encode_batch(std::span<const std::string> texts, std::size_t max_length,
                                              bool with_tokens) const {
  std::vector<Encoding> result(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) encode_into(texts[i], max_length, result[i], with_tokens);
  return result;
}

std::optional<std::int64_t> Tokenizer::token_to_id(std::string_view token) const {
  auto known = impl_->added_index.find(std::string(token));
  if (known != impl_->added_index.end()) return impl_->added_tokens[known->second].id;
  std::int64_t id = impl_->model->token_to_id(token);
  if (id < 0) return std::nullopt;
  return id;
}

std::optional<std::string> Tokenizer::id_to_token(std::int64_t id) const {
  for (const auto& t : impl_->added_tokens) {
    if (t.id == id) return t.content;
  }
  if (const std::string* s = impl_->model->id_to_token(id)) return *s;
  return std::nullopt;
}

std::size_t Tokenizer::vocab_size() const {
  std::size_t extra = 0;
  for (const auto& t : impl_->added_tokens) extra += impl_->model->token_to_id(t.content) < 0;
  return impl_->model->size() + extra;
}

std::size_t Tokenizer::num_special_tokens() const { return impl_->prefix.size() + impl_->suffix.size(); }

const std::string& Tokenizer::source() const { return impl_->source; }

std::size_t Tokenizer::memory_bytes() const {
  std::size_t bytes = sizeof(Impl) + impl_->model->memory_bytes();
  for (const auto& t : impl_->added_tokens) bytes += sizeof(t) + t.content.capacity();
  // The matchers and the index keep one copy of each added token's text (a few dozen at most).
  bytes += 3 * impl_->added_tokens.size() * (sizeof(std::string) + sizeof(void*) + 32);
  return bytes;
}

}  // namespace leanembed
