// BertNormalizer: clean_text, handle_chinese_chars, strip_accents (NFD, then drop Mn), lowercase —
// the same steps in the same order as the Rust library, streamed in one pass over the text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace leanembed::tokenizer {

struct BertNormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;  // already resolved: the file's null means "same as lowercase"
  bool lowercase = true;
};

class BertNormalizer {
 public:
  explicit BertNormalizer(const BertNormalizerOptions& options);
  // Appends the normalized form of `text` (valid UTF-8) to `out`. Scratch: a thread-local buffer
  // holding one run of combining marks (grows to the longest run seen on this thread).
  void normalize(std::string_view text, std::string& out) const;
  const BertNormalizerOptions& options() const { return options_; }

 private:
  BertNormalizerOptions options_;
  std::int16_t ascii_[128];  // ASCII byte -> output byte, or -1 to drop it
};

// Canonical decomposition (NFD) as the Rust library computes it; appends to `out`. For tests.
void nfd(std::string_view text, std::string& out);

}  // namespace leanembed::tokenizer
