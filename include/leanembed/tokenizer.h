// leanembed/tokenizer.h — BERT WordPiece tokenization, identical to Hugging Face `tokenizers`.
//
// Usage:
//   auto tok = leanembed::Tokenizer::load("models/all-MiniLM-L6-v2");   // folder or tokenizer.json
//   leanembed::Encoding e = tok.encode("Hello world!", 256);             // [CLS] hello world ! [SEP]
//   // e.ids, e.attention_mask, e.token_type_ids: same length, at most 256
//
// What is supported (anything else in tokenizer.json is Error(unsupported) naming the file, the
// JSON field path and what was found — never a silently different tokenization):
//   normalizer      BertNormalizer (clean_text, handle_chinese_chars, strip_accents — null follows
//                   lowercase —, lowercase) or null
//   pre_tokenizer   BertPreTokenizer or null
//   model           WordPiece (vocab, unk_token, continuing_subword_prefix, max_input_chars_per_word)
//   post_processor  TemplateProcessing (single sequence), BertProcessing or null
//   added_tokens    split out of the raw text before normalization (normalized=false) or out of the
//                   normalized text (normalized=true), honouring lstrip / rstrip / single_word
//   decoder, truncation, padding: read and ignored (see below)
// Without tokenizer.json, a folder's vocab.txt + tokenizer_config.json (+ special_tokens_map.json)
// are read as transformers' BertTokenizerFast would convert them.
//
// Policies:
//   - Truncation: the caller passes max_length (the embedder decides it); the file's "truncation"
//     section is ignored. The result keeps the leading and closing special tokens:
//     [CLS] first max_length-2 tokens [SEP] — the Rust library's "longest first, right" truncation.
//   - Padding: never. The file's "padding" section (Fixed 128 for all-MiniLM-L6-v2) is ignored; the
//     engine is padding-free, so every Encoding is exactly as long as its text needs and the
//     attention mask is all ones.
//   - Integer type: ids, attention mask and token type ids are int64 (what the ONNX models take).
//   - Invalid UTF-8 in the text is replaced by U+FFFD exactly as Rust's String::from_utf8_lossy
//     does (one U+FFFD per maximal ill-formed subpart, Unicode "best practice"); BertNormalizer's
//     clean_text then removes U+FFFD, as it does for the Rust library's input.
//   - Empty text gives just the special tokens ([CLS] [SEP]).
//   - Time and memory are linear in the text's size (words longer than max_input_chars_per_word
//     become [UNK] before WordPiece runs). Scratch memory: thread-local buffers of about 4 bytes
//     per input byte (the normalized text, the UTF-8-repaired copy when needed), kept by each
//     thread at the size of the largest text it has encoded.
//   - added_tokens ids: as the Rust library, a token already in the vocabulary keeps that id and
//     any other gets the next free id; the "id" written in the file is not used.
//
// Threading: a Tokenizer is immutable after loading; every const method may be called from any
// number of threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace leanembed {

// One encoded text. ids, attention_mask and token_type_ids have the same length n.
struct Encoding {
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> attention_mask;  // all 1: we never pad
  std::vector<std::int64_t> token_type_ids;
  // The token strings, as the Rust library's Encoding.getTokens() gives them (vocabulary entries
  // such as "##ing", "[UNK]", an added token's matched text). Filled only when asked for.
  std::vector<std::string> tokens;
};

// max_length value that disables truncation.
inline constexpr std::size_t no_truncation = std::numeric_limits<std::size_t>::max();

class Tokenizer {
 public:
  // Loads `path`: a folder (its tokenizer.json, else its vocab.txt with tokenizer_config.json and
  // special_tokens_map.json when present) or a tokenizer.json file.
  // Throws Error(io) if nothing readable is there, Error(model_format) for malformed files,
  // Error(unsupported) for components this library does not implement.
  static Tokenizer load(const std::string& path);
  // Loads a Hugging Face tokenizer.json file. Errors as load().
  static Tokenizer from_tokenizer_json(const std::string& path);
  // Parses tokenizer.json content held in memory; `source_name` is used in error messages.
  static Tokenizer from_tokenizer_json_text(std::string_view json, const std::string& source_name);
  // Loads a WordPiece vocab.txt (one token per line, id = line number) and, if the paths are not
  // empty, tokenizer_config.json / special_tokens_map.json (do_lower_case, strip_accents,
  // tokenize_chinese_chars, unk/sep/cls/pad/mask tokens).
  static Tokenizer from_vocab_txt(const std::string& vocab_path, const std::string& config_path = {},
                                  const std::string& special_tokens_map_path = {});

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Encodes one text into at most max_length tokens (special tokens included).
  // Throws Error(invalid_argument) if max_length is smaller than num_special_tokens() or 0.
  Encoding encode(std::string_view text, std::size_t max_length, bool with_tokens = false) const;
  // As encode(), reusing `out`'s buffers (no allocation once they are large enough).
  void encode_into(std::string_view text, std::size_t max_length, Encoding& out,
                   bool with_tokens = false) const;
  // Encodes each text independently (same as calling encode on each, in order, on this thread).
  std::vector<Encoding> encode_batch(std::span<const std::string_view> texts, std::size_t max_length,
                                     bool with_tokens = false) const;
  std::vector<Encoding> encode_batch(std::span<const std::string> texts, std::size_t max_length,
                                     bool with_tokens = false) const;

  // Reading a long text in pieces (the CLI's lines): rewrites `kept` — the first bytes of a text,
  // as read so far, possibly shortened by earlier calls — into a string that gives the same tokens
  // for `max_length` whatever bytes follow it, and returns true when no following byte can change
  // them any more (the rest of the text may be skipped). Exact, never an approximation: it cuts
  // only where the pipeline provably splits (after a space, tab, ASCII punctuation or CJK
  // character that no added token contains), drops pieces between such cuts that give no token,
  // keeps a run of removable characters (controls, U+FFFD, accents when stripping) as its first and
  // last character, and an over-long ASCII letter/digit run (a word WordPiece turns into [UNK]
  // whatever follows) as its first max_input_chars_per_word + longest added token + 1 characters.
  // Why each rule is exact: src/tokenizer/README.md. Without BertPreTokenizer it changes nothing
  // and returns false. Trailing bytes that may be an incomplete UTF-8 sequence are left as they are.
  bool shorten_partial_text(std::string& kept, std::size_t max_length) const;

  // The id of a vocabulary entry or added token, as the Rust library's token_to_id.
  std::optional<std::int64_t> token_to_id(std::string_view token) const;
  // The vocabulary entry or added token with this id.
  std::optional<std::string> id_to_token(std::int64_t id) const;
  // Number of ids: the WordPiece vocabulary plus added tokens that are not in it.
  std::size_t vocab_size() const;
  // Special tokens the post-processor adds around one sequence (2 for [CLS] ... [SEP]).
  std::size_t num_special_tokens() const;
  // The file this tokenizer was loaded from.
  const std::string& source() const;
  // Bytes the loaded tokenizer holds (vocabulary tables and entries, added tokens); the thread-local
  // encoding scratch (see Policies) is not included. For memory budgets.
  std::size_t memory_bytes() const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace leanembed
