// Tokenizer::shorten_partial_text: keeping, of a long text read in pieces, only what its first
// max_length tokens need — exactly (see README.md, "Long texts read in pieces", for the argument).
#include <algorithm>
#include <cctype>
#include <vector>

#include "leanembed/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode_classes.h"
#include "tokenizer/utf8.h"

namespace leanembed {
namespace {

using tokenizer::utf8_decode;

// What may be cut, dropped or compressed for this tokenizer (derived from its parts each call:
// a handful of added tokens to look at).
struct Rules {
  bool enabled = false;
  bool ascii_cut[128] = {};      // cut after this ASCII character
  bool cjk_cut = false;          // cut after a CJK character (the normalizer spaces them)
  bool ascii_removable[128] = {};
  bool compress_removable = false;
  bool compress_alnum = false;
  std::size_t alnum_keep = 0;    // characters kept of an ASCII letter/digit run
  std::vector<char32_t> pattern_chars;  // every character of every added token (raw and normalized)

  bool in_patterns(char32_t c) const { return std::binary_search(pattern_chars.begin(), pattern_chars.end(), c); }
};

void collect_chars(std::string_view s, std::vector<char32_t>& out) {
  std::string repaired;
  if (tokenizer::utf8_valid_prefix(s) != s.size()) {
    tokenizer::utf8_append_lossy(s, repaired);
    s = repaired;
  }
  for (std::size_t i = 0; i < s.size();) out.push_back(utf8_decode(s, i));
}

Rules rules_for(const Tokenizer::Impl& tok) {
  Rules r;
  if (!tok.bert_pre_tokenizer || !tok.model) return r;
  r.enabled = true;
  std::size_t longest_pattern = 0;  // in characters
  bool pattern_starts_alnum = false;
  for (const auto& t : tok.added_tokens) {
    std::vector<std::string> forms = {t.content};
    if (t.normalized && tok.normalizer) {
      std::string n;
      tok.normalizer->normalize(t.content, n);
      forms.push_back(std::move(n));
    }
    for (const std::string& f : forms) {
      std::vector<char32_t> chars;
      collect_chars(f, chars);
      longest_pattern = std::max(longest_pattern, chars.size());
      if (!chars.empty() && chars[0] < 128 && std::isalnum(static_cast<int>(chars[0]))) pattern_starts_alnum = true;
      r.pattern_chars.insert(r.pattern_chars.end(), chars.begin(), chars.end());
    }
  }
  std::sort(r.pattern_chars.begin(), r.pattern_chars.end());
  r.pattern_chars.erase(std::unique(r.pattern_chars.begin(), r.pattern_chars.end()), r.pattern_chars.end());

  for (char32_t c = 0; c < 128; ++c) {
    const bool boundary = c == ' ' || c == '\t' || c == '\r' || tokenizer::is_bert_punctuation(c);
    r.ascii_cut[c] = boundary && !r.in_patterns(c);
  }
  const auto* norm = tok.normalizer ? &*tok.normalizer : nullptr;
  r.cjk_cut = norm && norm->options().handle_chinese_chars && !r.in_patterns(' ');
  if (norm && norm->options().clean_text) {
    r.compress_removable = true;
    for (char32_t c = 0; c < 128; ++c)
      r.ascii_removable[c] = (c == 0 || tokenizer::is_bert_control(c)) && !tokenizer::is_whitespace(c) && !r.in_patterns(c);
  }
  if (norm && norm->options().strip_accents) r.compress_removable = true;
  const std::size_t limit = tok.model->max_input_chars_per_word();
  if (!pattern_starts_alnum && limit < (std::size_t{1} << 20)) {
    r.compress_alnum = true;
    r.alnum_keep = limit + 1 + longest_pattern;
  }
  return r;
}

// A character the normalizer removes whatever surrounds it (clean_text: controls, NUL, U+FFFD;
// strip_accents: nonspacing marks), that is no whitespace and in no added token.
bool removable(const Tokenizer::Impl& tok, const Rules& r, char32_t c) {
  if (!r.compress_removable) return false;
  if (c < 128) return r.ascii_removable[c];
  const auto& o = tok.normalizer->options();
  const bool gone = (o.clean_text && (c == 0xFFFD || tokenizer::is_bert_control(c))) ||
                    (o.strip_accents && c >= 0x300 && tokenizer::is_nonspacing_mark(c));
  return gone && !tokenizer::is_whitespace(c) && !r.in_patterns(c);
}

bool is_cut(const Rules& r, char32_t c) {
  if (c < 128) return r.ascii_cut[c];
  return r.cjk_cut && tokenizer::is_chinese_char(c) && !r.in_patterns(c);
}

bool ascii_alnum(char32_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Where the last bytes of `s` may begin a UTF-8 sequence that bytes still to come complete (a lead
// byte with fewer continuation bytes after it than it announces): its index, else s.size(). Those
// bytes are left as they are (processing them later is always right; a lead byte never continues a
// sequence, so the repair of what comes before does not depend on them).
std::size_t incomplete_tail_begin(std::string_view s) {
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    const unsigned char c = b[n - back];
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: its lead is further back
    const std::size_t announced = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return announced > back ? n - back : n;
  }
  return n;
}

}  // namespace

bool Tokenizer::shorten_partial_text(std::string& kept, std::size_t max_length) const {
  const Impl& tok = *impl_;
  const Rules r = rules_for(tok);
  if (!r.enabled) return false;
  const std::size_t n_special = tok.prefix.size() + tok.suffix.size();
  if (max_length == no_truncation || max_length <= n_special) return false;
  const std::size_t need = max_length - n_special;  // content tokens that decide the text

  const std::size_t body_end = incomplete_tail_begin(kept);
  const std::string pending = kept.substr(body_end);
  std::string_view body(kept.data(), body_end);
  std::string repaired;
  if (tokenizer::utf8_valid_prefix(body) != body.size()) {
    tokenizer::utf8_append_lossy(body, repaired);  // what encode() would see; the same tokens
    body = repaired;
  }

  std::string out;
  out.reserve(std::min<std::size_t>(body.size(), std::size_t{1} << 16));
  std::size_t segment_begin = 0, content = 0;
  std::size_t alnum_run = 0;                 // length of the current ASCII letter/digit run
  std::size_t removable_run = 0;             // length of the current removable run
  std::size_t removable_last = 0;            // where the run's last kept character starts in `out`
  Encoding e;
  for (std::size_t i = 0; i < body.size();) {
    const std::size_t at = i;
    const char32_t c = utf8_decode(body, i);
    const std::string_view bytes = body.substr(at, i - at);
    if (r.compress_alnum && ascii_alnum(c)) {
      removable_run = 0;
      if (alnum_run++ < r.alnum_keep) out.append(bytes);
      continue;
    }
    alnum_run = 0;
    if (removable(tok, r, c)) {
      // Keep the run's first and last character (single_word looks at a match's neighbours).
      if (removable_run >= 2) out.resize(removable_last);
      removable_last = out.size();
      out.append(bytes);
      ++removable_run;
      continue;
    }
    removable_run = 0;
    out.append(bytes);
    if (!is_cut(r, c)) continue;
    // A closed segment [segment_begin, out.size()): its tokens are its own whatever follows.
    const std::string_view segment = std::string_view(out).substr(segment_begin);
    std::size_t tokens = 0;
    if (!(segment.size() == 1 && (segment[0] == ' ' || segment[0] == '\t' || segment[0] == '\r'))) {
      encode_into(segment, n_special + (need - content), e);
      tokens = e.ids.size() - n_special;
    }
    if (tokens == 0) {
      out.resize(segment_begin);  // gives nothing: drop it
      continue;
    }
    content += tokens;
    segment_begin = out.size();
    if (content >= need) {
      kept = std::move(out);
      return true;
    }
  }
  out += pending;
  kept = std::move(out);
  return false;
}

}  // namespace leanembed
