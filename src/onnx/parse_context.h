// State shared by the parts of the reader while one model is parsed. Internal to the reader.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "onnx/external_data.h"
#include "onnx/model.h"
#include "onnx/protobuf_wire.h"
#include "onnx/reader.h"

namespace leanembed::onnx {

struct ParseContext {
  wire::Source source;                   // the file's name and first byte, for error messages
  std::shared_ptr<const void> owner;     // keeps the model bytes alive; views hold copies of it
  bool bytes_are_mapping = false;        // the model bytes are a private file mapping (read_model)
  ReadOptions options;
  ExternalDataFiles external;
  Model* model = nullptr;                // receives the copy/decode counters

  // "<file>: <where>" for messages that are not about a byte offset.
  std::string label(const std::string& where) const { return source.name + ": " + where; }
};

// parse_model, telling whether `bytes` is a read-only private file mapping whose pages may be
// dropped (madvise) once copied.
Model parse_model_bytes(std::span<const std::byte> bytes, std::shared_ptr<const void> owner, bool bytes_are_mapping,
                        const std::string& external_data_dir, const std::string& display_name,
                        const ReadOptions& options);

// Parses one TensorProto message. `where` locates it (e.g. "graph.initializer[3]").
TensorData parse_tensor(std::span<const std::byte> message, ParseContext& ctx, const std::string& where);

// 64-byte-aligned owned storage of n bytes (n may be 0). Throws Error(out_of_memory) naming `what`.
std::shared_ptr<std::byte> allocate_aligned(std::size_t n, const std::string& what);

}  // namespace leanembed::onnx
