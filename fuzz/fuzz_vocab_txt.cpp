// libFuzzer target: vocab.txt loading (the tokenizer of a folder without tokenizer.json). Any input
// must either load or throw leanembed::Error; a loaded tokenizer must encode a few texts into
// consistent encodings no longer than asked. The input is written to a file of this process'
// own scratch folder, since the vocab.txt path is what the library reads.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "leanembed/error.h"
#include "leanembed/tokenizer.h"

namespace {

const std::string& scratch_file() {
  static const std::string path = [] {
    const auto dir = std::filesystem::temp_directory_path() / ("leanembed-fuzz-vocab-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    return (dir / "vocab.txt").string();
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::ofstream out(scratch_file(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    auto tok = leanembed::Tokenizer::from_vocab_txt(scratch_file());
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    for (std::string_view text : {std::string_view(""), std::string_view("Hello, [SEP] wörld 中文 unaffable !"), input.substr(0, 200)}) {
      auto e = tok.encode(text, 32, true);
      if (e.ids.size() > 32 || e.ids.size() != e.tokens.size() || e.ids.size() != e.attention_mask.size() ||
          e.ids.size() != e.token_type_ids.size()) {
        __builtin_trap();
      }
    }
  } catch (const leanembed::Error&) {
  }
  return 0;
}
