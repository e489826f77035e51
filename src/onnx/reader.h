// Reads an ONNX model file into onnx::Model (model.h) without generated protobuf code and without
// copying weights: the file is mapped read-only and initializers stored as raw_data or packed
// float_data/double_data are views into the mapping (see model.h on alignment).
//
// What is read: ModelProto (ir_version, opset_import, producer, graph), GraphProto (node,
// initializer, input, output, value_info, name), NodeProto, AttributeProto (f, i, s, t, g, floats,
// ints, strings, tensors, graphs), TensorProto (dims, data_type, raw_data, the typed *_data fields,
// external data), ValueInfoProto with TypeProto.tensor_type and its shape. Everything else is skipped
// by wire type. Refused as unsupported: sparse initializers / sparse or type-proto attributes,
// attribute references (ref_attr_name, only valid inside functions), string tensors, segments.
//
// Checks (all failures throw leanembed::Error naming the file, the element and what was wrong —
// never a crash, whatever the bytes): wire format (truncation, wrong wire type per field, groups),
// known data types, tensor sizes (bytes == numel * element size, dims >= 0, no overflow), external
// data under the ONNX rules (below), every node input defined (graph input, initializer, output of
// a node, or for subgraphs a name of an enclosing graph), no value produced twice, no cycle; nodes
// are stored in topological order. Subgraphs nest at most ReadOptions::max_graph_depth deep.
//
// External data (TensorProto.data_location = EXTERNAL, external_data keys location / offset /
// length; checksum and unknown keys ignored): `location` must be a relative path without `..`
// components whose real path (symlinks resolved) lies inside the model's folder; offset + length must
// lie inside that file and length must equal the tensor's byte size. Each external file is mapped
// once and shared by its tensors; the mappings are kept in Model::storage.
//
// Memory: apart from the mappings, the reader allocates
//  - the Model's names, nodes, attributes and shapes: small for real models (~0.3 MB for MiniLM), but
//    proportional to the file; an adversarial file made only of minimal records (a 7-byte attribute
//    becomes a 320-byte Attribute) can expand up to ~100x its size;
//  - owned storage for typed fields that must be decoded (varint int64_data ...): at most 8 bytes
//    per input byte;
//  - with copy_misaligned, one aligned copy of each misaligned view (at most the file's size); the
//    copied pages of the mapping are then released (madvise DONTNEED), so RSS holds one copy, not two.
// No allocation is sized from a count the file declares (dims, lengths) before the bytes backing
// it have been checked to exist.
//
// Threading: the functions are reentrant; a Model is immutable after reading and may be shared
// between threads.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "onnx/model.h"

namespace leanembed::onnx {

struct ReadOptions {
  // Copy views (raw_data, packed float/double data, external data) whose address is not a multiple
  // of the element size into 64-byte-aligned owned storage; counted in Model::bytes_copied.
  // false = pure zero-copy; then consumers must use unaligned loads (TensorData::aligned()).
  bool copy_misaligned = true;
  // Deepest nesting of subgraphs (attributes of type GRAPH / GRAPHS) accepted; the main graph is
  // depth 0. Deeper files are refused with Error(unsupported) rather than risking stack overflow.
  int max_graph_depth = 8;
  // Whether tensors may refer to external data files at all.
  bool allow_external_data = true;
};

// Maps `path` read-only and parses it. External data files are looked for in path's folder.
// Throws Error(io) if the file cannot be opened/mapped, Error(model_format) if it is malformed,
// Error(unsupported) for valid features this reader does not implement.
Model read_model(const std::string& path, const ReadOptions& options = {});

// Parses a model from `bytes`, which `owner` keeps alive (views into `bytes` hold a copy of
// `owner`; pass an empty owner only if `bytes` outlives the Model). External data is resolved in
// `external_data_dir` (empty = external data refused with Error(unsupported)). `display_name` is used
// in error messages and stored as Model::path. For tests and fuzzing; read_model calls it.
Model parse_model(std::span<const std::byte> bytes, std::shared_ptr<const void> owner,
                  const std::string& external_data_dir, const std::string& display_name,
                  const ReadOptions& options = {});

// A topological order of graph.nodes (indices; the file order when that is already one, otherwise
// the stable order that keeps nodes as early as their inputs allow). Dependencies are node inputs
// and the outer-scope names used by subgraph attributes. Throws Error(model_format) naming a node on
// a cycle, a value produced twice, or an input nobody produces. Models from read_model already have
// their nodes in this order.
std::vector<std::size_t> topological_order(const Graph& graph);

}  // namespace leanembed::onnx
