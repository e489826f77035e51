// The in-memory form of an ONNX model: what the reader (onnx/reader.h) produces and what the
// interpreter and the fast path consume. Only the parts of onnx.proto an encoder needs are kept.
//
// Ownership: a Model owns (through shared_ptr) the mapping of its file and of any external-data
// files. A TensorData's `bytes` is either a view into such a mapping (raw_data, packed float_data:
// zero-copy) or into `owned` (fields that must be decoded, e.g. varint int64_data). Copying a
// TensorData or a Model is cheap and keeps the storage alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace leanembed::onnx {

// TensorProto.DataType codes (onnx.proto).
enum class DataType : int32_t {
  undefined = 0,
  float32 = 1,
  uint8 = 2,
  int8 = 3,
  uint16 = 4,
  int16 = 5,
  int32 = 6,
  int64 = 7,
  string = 8,
  boolean = 9,
  float16 = 10,
  float64 = 11,
  uint32 = 12,
  uint64 = 13,
  bfloat16 = 16,
};

// Bytes per element; 0 for string/undefined/unknown codes.
std::size_t data_type_size(DataType t) noexcept;
const char* data_type_name(DataType t) noexcept;

struct TensorData {
  std::string name;
  DataType dtype = DataType::undefined;
  std::vector<int64_t> dims;                 // empty = scalar
  std::span<const std::byte> bytes;          // little-endian elements, size = numel * data_type_size
  std::shared_ptr<const void> owner;         // keeps `bytes` alive (a mapping or a decoded buffer)

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
  template <typename T>
  std::span<const T> as() const {
    return {reinterpret_cast<const T*>(bytes.data()), bytes.size() / sizeof(T)};
  }
};

enum class AttributeType : int32_t {
  undefined = 0, floating = 1, integer = 2, string = 3, tensor = 4, graph = 5,
  floats = 6, integers = 7, strings = 8, tensors = 9, graphs = 10,
};

struct Graph;

struct Attribute {
  std::string name;
  AttributeType type = AttributeType::undefined;
  float f = 0.0f;
  int64_t i = 0;
  std::string s;
  TensorData t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::shared_ptr<Graph> g;                 // subgraph (If/Loop); the interpreter rejects these
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;                       // "" and "ai.onnx" are the default domain
  std::vector<std::string> inputs;          // "" = optional input left out
  std::vector<std::string> outputs;
  std::vector<Attribute> attributes;

  const Attribute* attribute(const std::string& attr_name) const {
    for (const auto& a : attributes)
      if (a.name == attr_name) return &a;
    return nullptr;
  }
};

// One dimension of a ValueInfo's shape: a fixed value, a symbolic name, or unknown.
struct Dim {
  int64_t value = -1;                       // >= 0 when fixed
  std::string param;                        // e.g. "batch_size" when symbolic
};

struct ValueInfo {
  std::string name;
  DataType elem_type = DataType::undefined;
  std::vector<Dim> shape;
  bool has_shape = false;
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;                  // in file order; the reader checks it is topologically sortable
  std::vector<TensorData> initializers;
  std::vector<ValueInfo> inputs;            // graph inputs that are not initializers come first as in the file
  std::vector<ValueInfo> outputs;
  std::vector<ValueInfo> value_info;

  const TensorData* initializer(const std::string& value_name) const {
    for (const auto& t : initializers)
      if (t.name == value_name) return &t;
    return nullptr;
  }
};

struct Model {
  int64_t ir_version = 0;
  std::string producer_name;
  std::string producer_version;
  std::map<std::string, int64_t> opset_imports;  // domain ("" = ai.onnx) -> version
  Graph graph;
  std::string path;                         // the file it was read from
  std::vector<std::shared_ptr<const void>> storage;  // mappings backing the tensors

  int64_t opset(const std::string& domain = "") const {
    auto it = opset_imports.find(domain);
    return it == opset_imports.end() ? 0 : it->second;
  }
};

}  // namespace leanembed::onnx
