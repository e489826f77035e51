// The in-memory form of an ONNX model: what the reader (onnx/reader.h) produces and what the
// interpreter and the fast path consume. Only the parts of onnx.proto an encoder needs are kept.
//
// Ownership: a Model owns (through shared_ptr) the mapping of its file and of any external-data
// files. A TensorData's `bytes` is either a view into such a mapping (raw_data, packed float_data:
// zero-copy) or into `owned` (fields that must be decoded, e.g. varint int64_data). Copying a
// TensorData or a Model is cheap and keeps the storage alive.
//
// Alignment: a view into a file is only as aligned as the file makes it, and exporters do not align
// (in the shared MiniLM model.onnx, 83 MB of the 90 MB of fp32 weights start at an address that is
// not a multiple of 4). By default the reader copies every misaligned view into 64-byte-aligned
// owned storage (counted in Model::bytes_copied), so `as<T>()` always gives aligned pointers; with
// ReadOptions::copy_misaligned = false everything stays a view (zero-copy) and consumers must use
// unaligned loads (memcpy / _mm256_loadu_ps) on tensors whose `aligned()` is false — `as<T>()`
// refuses those with Error(runtime) instead of handing out a misaligned T*.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "leanembed/error.h"

namespace leanembed {
class MappedFile;
}

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
  bool mapped = false;                       // true: `bytes` is a view into the model bytes or an
                                             // external-data mapping (zero-copy)

  // Product of dims (1 for a scalar). The reader checks it does not overflow and that
  // bytes.size() == numel() * data_type_size(dtype).
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
  // True when `bytes` starts at a multiple of the element size (always true with the reader's
  // default options; see the note on alignment above).
  bool aligned() const {
    std::size_t a = data_type_size(dtype);
    return a <= 1 || reinterpret_cast<std::uintptr_t>(bytes.data()) % a == 0;
  }
  // The elements as T (T's size should match the dtype's). Throws Error(runtime) if the bytes are
  // not a whole number of T or not aligned for T (only possible with copy_misaligned = false).
  template <typename T>
  std::span<const T> as() const {
    if (bytes.size() % sizeof(T) != 0 || reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(T) != 0) {
      throw Error(ErrorCode::runtime, "tensor '" + name + "' (" + std::to_string(bytes.size()) +
                                          " bytes) cannot be viewed as elements of " + std::to_string(sizeof(T)) +
                                          " bytes: size or alignment does not fit (read the model with "
                                          "copy_misaligned, or use unaligned loads on `bytes`)");
    }
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
  std::vector<TensorData> tensors;          // type tensors
  std::vector<std::shared_ptr<Graph>> graphs;  // type graphs
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
  std::vector<Node> nodes;                  // in a topological order: file order when that is one (as
                                            // exporters write it), else the stable topological order
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
  // The files read_model mapped: the model file first (when file_backed), then each external-data
  // file (in the order first used). What the model's bytes come from: their identities and
  // changes() tell whether a file changed since it was read (core/mapped_file.h).
  std::vector<std::shared_ptr<const MappedFile>> source_files;
  std::span<const std::byte> file_bytes;    // the model file's mapping (or the bytes given to parse_model)
  bool file_backed = false;                 // true: file_bytes maps the whole file at `path` (read_model);
                                            // false: bytes given to parse_model (`path` only names them)
  std::size_t bytes_copied = 0;             // bytes of views copied because they were misaligned
  std::size_t tensors_copied = 0;           // how many tensors that was
  std::size_t bytes_decoded = 0;            // bytes of owned storage decoded from typed fields (varints ...)

  int64_t opset(const std::string& domain = "") const {
    auto it = opset_imports.find(domain);
    return it == opset_imports.end() ? 0 : it->second;
  }
};

}  // namespace leanembed::onnx
