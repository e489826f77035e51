#include "tokenizer/bert_normalizer.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "tokenizer/unicode_classes.h"
#include "tokenizer/utf8.h"

namespace leanembed::tokenizer {
namespace {

// Canonical decomposition of a stream of code points: decomposes each one, buffers a starter
// and the combining marks that follow it, and on the next starter reorders the marks by
// combining class (stable, as canonical ordering requires) and hands them on.
// O(k log k) per run of k marks, so 1e5 marks in a row stay fast.
class Decomposer {
 public:
  explicit Decomposer(std::vector<std::pair<char32_t, int>>& run) : run_(run) { run_.clear(); }

  template <class Emit>
  void feed(char32_t c, Emit&& emit) {
    char32_t parts[max_decomposition];
    std::size_t n = decompose(c, parts);
    for (std::size_t k = 0; k < n; ++k) {
      int ccc = combining_class(parts[k]);
      if (ccc == 0) flush(emit);
      run_.emplace_back(parts[k], ccc);
    }
  }

  template <class Emit>
  void flush(Emit&& emit) {
    if (run_.empty()) return;
    auto first_mark = run_.begin() + (run_.front().second == 0 ? 1 : 0);
    if (run_.end() - first_mark > 1) {
      std::stable_sort(first_mark, run_.end(),
                       [](const auto& a, const auto& b) { return a.second < b.second; });
    }
    for (const auto& [cp, ccc] : run_) emit(cp);
    run_.clear();
  }

  bool empty() const { return run_.empty(); }

 private:
  std::vector<std::pair<char32_t, int>>& run_;
};

std::vector<std::pair<char32_t, int>>& thread_run_buffer() {
  thread_local std::vector<std::pair<char32_t, int>> run;
  return run;
}

}  // namespace

BertNormalizer::BertNormalizer(const BertNormalizerOptions& options) : options_(options) {
  for (char32_t b = 0; b < 128; ++b) {
    char32_t c = b;
    if (options_.clean_text) {
      if (c == 0 || is_bert_control(c)) {
        ascii_[b] = -1;
        continue;
      }
      if (is_whitespace(c)) c = ' ';
    }
    if (options_.lowercase && c >= 'A' && c <= 'Z') c += 32;
    ascii_[b] = static_cast<std::int16_t>(c);
  }
}

void BertNormalizer::normalize(std::string_view text, std::string& out) const {
  const bool strip = options_.strip_accents;
  Decomposer decomposer(thread_run_buffer());

  // Final stage: drop nonspacing marks (when stripping accents), lowercase, encode.
  auto emit = [&](char32_t c) {
    if (strip && c >= 0x300 && is_nonspacing_mark(c)) return;
    if (options_.lowercase) {
      char32_t lower[3];
      std::size_t n = to_lowercase(c, lower);
      for (std::size_t k = 0; k < n; ++k) utf8_append(lower[k], out);
    } else {
      utf8_append(c, out);
    }
  };
  auto feed = [&](char32_t c) {
    if (strip) {
      decomposer.feed(c, emit);
    } else {
      emit(c);
    }
  };

  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    if (bytes[i] < 0x80) {
      // ASCII run: no decomposition, combining class 0, one table lookup per byte.
      if (!decomposer.empty()) decomposer.flush(emit);
      std::size_t end = i + 1;
      while (end < n && bytes[end] < 0x80) ++end;
      std::size_t base = out.size();
      out.resize(base + (end - i));
      char* dst = out.data() + base;
      for (; i < end; ++i) {
        std::int16_t m = ascii_[bytes[i]];
        if (m >= 0) *dst++ = static_cast<char>(m);
      }
      out.resize(static_cast<std::size_t>(dst - out.data()));
      continue;
    }
    char32_t c = utf8_decode(text, i);
    if (options_.clean_text) {
      if (c == 0xFFFD || is_bert_control(c)) continue;
      if (is_whitespace(c)) c = ' ';
    }
    if (options_.handle_chinese_chars && is_chinese_char(c)) {
      feed(' ');
      feed(c);
      feed(' ');
    } else {
      feed(c);
    }
  }
  decomposer.flush(emit);
}

void nfd(std::string_view text, std::string& out) {
  Decomposer decomposer(thread_run_buffer());
  auto emit = [&](char32_t c) { utf8_append(c, out); };
  for (std::size_t i = 0; i < text.size();) decomposer.feed(utf8_decode(text, i), emit);
  decomposer.flush(emit);
}

}  // namespace leanembed::tokenizer
