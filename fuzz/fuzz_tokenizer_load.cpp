// libFuzzer target: tokenizer.json loading. Any input must either load or throw
// leanembed::Error; a loaded tokenizer must encode a few texts without trouble.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "leanembed/error.h"
#include "leanembed/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  try {
    auto tok = leanembed::Tokenizer::from_tokenizer_json_text(json, "fuzz/tokenizer.json");
    for (std::string_view text : {std::string_view(""), std::string_view("Hello, [SEP] wörld 中文 !"), json.substr(0, 200)}) {
      auto e = tok.encode(text, 64, true);
      if (e.ids.size() > 64 || e.ids.size() != e.tokens.size() || e.ids.size() != e.attention_mask.size() ||
          e.ids.size() != e.token_type_ids.size()) {
        __builtin_trap();
      }
    }
  } catch (const leanembed::Error&) {
  }
  return 0;
}
