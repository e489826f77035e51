// libFuzzer target: safetensors::File::parse on arbitrary bytes must either return a File whose
// views lie inside the input and match their dtype and shape, or throw leanembed::Error — no crash,
// no sanitizer report, no other exception. A parsed file is then taken as a small BERT encoder's
// weights (bert_weights_from_safetensors with a fixed config), which must also succeed or throw
// Error. The file system is never touched (parse() bytes are not mapped: no pread, no unmapping).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "leanembed/error.h"
#include "runtime/encoder/bert_safetensors.h"
#include "safetensors/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leanembed;
  const auto bytes = std::as_bytes(std::span(data, size));
  try {
    auto file = std::make_shared<safetensors::File>(safetensors::File::parse(bytes, "fuzz.safetensors"));
    std::size_t sum = 0;
    for (const safetensors::Tensor& t : file->tensors()) {
      if (t.bytes.size() != static_cast<std::size_t>(t.numel()) * safetensors::dtype_size(t.dtype)) __builtin_trap();
      if (t.bytes.data() < bytes.data() || t.bytes.data() + t.bytes.size() > bytes.data() + bytes.size()) __builtin_trap();
      if (!t.bytes.empty()) sum += static_cast<std::size_t>(t.bytes.front()) + static_cast<std::size_t>(t.bytes.back());
    }
    (void)sum;
    // hidden 8, 2 heads, 1 layer, FFN 16, vocab 10, 8 positions, 2 token types (fuzz/corpus seed).
    runtime::encoder::BertConfig config;
    config.hidden = 8, config.heads = 2, config.layers = 1, config.intermediate = 16;
    config.vocab = 10, config.max_positions = 8, config.type_vocab = 2;
    runtime::encoder::BertSafetensors bert = runtime::encoder::bert_weights_from_safetensors(file, config);
    if (bert.weights.word_embeddings.size != 80) __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
