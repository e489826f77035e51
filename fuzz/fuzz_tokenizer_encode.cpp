// libFuzzer target: encode() on arbitrary bytes with the MiniLM tokenizer and two variants that
// switch on the other options (added-token flags, cased + strip accents, no cleaning, no
// pre-tokenizer). First input byte: tokenizer, max length, tokens or not; the rest is the text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "leanembed/error.h"
#include "leanembed/tokenizer.h"

namespace {
std::vector<std::unique_ptr<leanembed::Tokenizer>> tokenizers;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("LEANEMBED_TOKENIZER_JSON");
  std::string path = env ? env : LEANEMBED_SHARED_DIR "/models/minilm-l6-synthetic/tokenizer.json";
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  nlohmann::json base = nlohmann::json::parse(s.str());
  tokenizers.push_back(std::make_unique<leanembed::Tokenizer>(leanembed::Tokenizer::from_tokenizer_json_text(s.str(), path)));

  nlohmann::json v1 = base;
  v1["normalizer"]["lowercase"] = false;
  v1["normalizer"]["strip_accents"] = true;
  v1["added_tokens"][4]["lstrip"] = true;
  v1["added_tokens"].push_back({{"id", 30522}, {"content", "<s>"}, {"single_word", false}, {"lstrip", true},
                                {"rstrip", true}, {"normalized", false}, {"special", true}});
  v1["added_tokens"].push_back({{"id", 30523}, {"content", "Cat"}, {"single_word", true}, {"lstrip", false},
                                {"rstrip", false}, {"normalized", true}, {"special", false}});
  v1["added_tokens"].push_back({{"id", 30524}, {"content", " x"}, {"single_word", false}, {"lstrip", false},
                                {"rstrip", true}, {"normalized", false}, {"special", false}});
  tokenizers.push_back(std::make_unique<leanembed::Tokenizer>(leanembed::Tokenizer::from_tokenizer_json_text(v1.dump(), "v1")));

  nlohmann::json v2 = base;
  v2["normalizer"]["clean_text"] = false;
  v2["normalizer"]["handle_chinese_chars"] = false;
  v2["normalizer"]["strip_accents"] = false;
  v2["pre_tokenizer"] = nullptr;
  v2["model"]["max_input_chars_per_word"] = 1000;
  tokenizers.push_back(std::make_unique<leanembed::Tokenizer>(leanembed::Tokenizer::from_tokenizer_json_text(v2.dump(), "v2")));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  unsigned control = data[0];
  const auto& tok = *tokenizers[control % tokenizers.size()];
  static const std::size_t lengths[] = {2, 3, 8, 128, 512, leanembed::no_truncation};
  std::size_t max_length = lengths[(control / 3) % 6];
  bool with_tokens = control & 0x80;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  leanembed::Encoding e = tok.encode(text, max_length, with_tokens);
  bool ok = e.ids.size() >= 2 && e.ids.size() <= max_length && e.ids.size() == e.attention_mask.size() &&
            e.ids.size() == e.token_type_ids.size() && (!with_tokens || e.tokens.size() == e.ids.size()) &&
            e.ids.front() == 101 && e.ids.back() == 102;
  if (!ok) __builtin_trap();
  return 0;
}
