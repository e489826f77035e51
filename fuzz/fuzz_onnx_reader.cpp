// libFuzzer target: parse_model on arbitrary bytes must either return a Model or throw
// leanembed::Error — no crash, no sanitizer report, no other exception. External data is refused
// (no folder), so the fuzzer never touches the file system.
#include <cstddef>
#include <cstdint>
#include <span>

#include "leanembed/error.h"
#include "onnx/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leanembed::onnx;
  auto bytes = std::as_bytes(std::span(data, size));
  for (bool copy : {true, false}) {
    ReadOptions options;
    options.copy_misaligned = copy;
    try {
      Model m = parse_model(bytes, nullptr, "", "fuzz.onnx", options);
      // Touch what a consumer would: every initializer's bytes and the topological order.
      std::size_t sum = 0;
      for (const TensorData& t : m.graph.initializers) {
        if (!t.bytes.empty()) sum += static_cast<std::size_t>(t.bytes.front()) + static_cast<std::size_t>(t.bytes.back());
        if (static_cast<uint64_t>(t.numel()) * data_type_size(t.dtype) != t.bytes.size()) __builtin_trap();
      }
      if (topological_order(m.graph).size() != m.graph.nodes.size()) __builtin_trap();
      (void)sum;
    } catch (const leanembed::Error&) {
    }
  }
  return 0;
}
