#include "tokenizer/wordpiece.h"

#include <algorithm>

#include "leanembed/error.h"

namespace leanembed::tokenizer {

WordPiece::WordPiece(std::vector<std::pair<std::string, std::uint32_t>> vocab, std::string unk_token,
                     std::string continuing_subword_prefix, std::size_t max_input_chars_per_word,
                     const std::string& source)
    : entries_(std::move(vocab)),
      unk_token_(std::move(unk_token)),
      prefix_(std::move(continuing_subword_prefix)),
      max_input_chars_per_word_(max_input_chars_per_word) {
  std::vector<std::pair<std::string_view, std::uint32_t>> all, cont;
  all.reserve(entries_.size());
  for (const auto& [token, id] : entries_) {
    all.emplace_back(token, id);
    if (token.size() >= prefix_.size() && token.compare(0, prefix_.size(), prefix_) == 0) {
      cont.emplace_back(std::string_view(token).substr(prefix_.size()), id);
    }
  }
  vocab_.build(all, source);
  continuation_.build(cont, source);
  unk_id_ = vocab_.find(unk_token_);
  if (unk_id_ < 0) {
    throw Error(ErrorCode::model_format, source + ": model.unk_token: \"" + unk_token_ +
                                             "\" is not in the vocabulary");
  }
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const auto& a, const auto& b) { return a.second < b.second; });
}

void WordPiece::tokenize(std::string_view word, std::size_t n_chars, std::vector<Piece>& pieces) const {
  pieces.clear();
  if (n_chars > max_input_chars_per_word_) {
    pieces.push_back(Piece{unk_id_, 0, 0, false});
    return;
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(word.data());
  const std::size_t n = word.size();
  auto is_char_start = [&](std::size_t pos) { return pos >= n || (bytes[pos] & 0xC0) != 0x80; };
  std::size_t start = 0;
  while (start < n) {
    const VocabTable& table = start == 0 ? vocab_ : continuation_;
    // Longer candidates than the longest key cannot match: start from there, on a char boundary.
    std::size_t end = std::min(n, start + table.max_key_length());
    while (end > start && !is_char_start(end)) --end;
    std::int64_t id = -1;
    while (end > start) {
      id = table.find(word.substr(start, end - start));
      if (id >= 0) break;
      do --end; while (end > start && !is_char_start(end));
    }
    if (id < 0) {
      pieces.clear();
      pieces.push_back(Piece{unk_id_, 0, 0, false});
      return;
    }
    pieces.push_back(Piece{id, start, end, start > 0});
    start = end;
  }
}

std::size_t WordPiece::memory_bytes() const noexcept {
  std::size_t bytes = entries_.capacity() * sizeof(entries_[0]) + vocab_.memory_bytes() + continuation_.memory_bytes();
  const std::size_t inline_capacity = std::string().capacity();  // strings up to this long live inside the object
  for (const auto& e : entries_)
    if (e.first.capacity() > inline_capacity) bytes += e.first.capacity() + 1;
  return bytes;
}

const std::string* WordPiece::id_to_token(std::int64_t id) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), id,
                             [](const auto& e, std::int64_t v) { return std::int64_t(e.second) < v; });
  if (it == entries_.end() || std::int64_t(it->second) != id) return nullptr;
  return &it->first;
}

}  // namespace leanembed::tokenizer
