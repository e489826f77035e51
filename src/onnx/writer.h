// Writes an onnx::Model (model.h) as a standard .onnx file: the protobuf wire format of onnx.proto,
// produced by our own encoder (no generated code), readable by ONNX Runtime, python-onnx and our
// reader.
//
// What is written: ModelProto (ir_version, producer_name/version, opset_import, graph), GraphProto
// (node, name, initializer, input, output, value_info), NodeProto (input, output, name, op_type,
// domain, attributes of every type the reader keeps, subgraphs included), TensorProto (dims,
// data_type, name, raw_data: every tensor's bytes are written as raw_data, whatever field they
// were read from), ValueInfoProto with TypeProto.tensor_type (elem_type, shape with fixed,
// symbolic and unknown dims). What the reader does not keep (doc strings, metadata_props,
// model-local functions, node order of a file that was not topologically sorted) is not written.
// Repeated scalars (dims, ints, floats) are written unpacked, as proto2's onnx.proto declares them
// (both forms are valid on the wire).
//
// Memory: serialize_model builds the whole file in memory (its size); write_model streams to the
// file through a 1 MB buffer (sizes of nested messages are computed by a counting pass first, which
// touches no tensor bytes), so it needs no more than that beside the model.
//
// Errors: Error(io) naming the path when the file cannot be created, written or renamed;
// Error(invalid_argument) for a model the format cannot hold (a tensor whose byte count does not
// match its dims and type, a string tensor).
//
// Threading: reentrant; the model is only read.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "onnx/model.h"

namespace leanembed::onnx {

// The model's bytes as a .onnx file would hold them.
std::vector<std::byte> serialize_model(const Model& model);

// Writes the model to `path`: first to "<path>.tmp-<pid>" in the same folder, then renamed over
// `path`, so a failed write never leaves a partial file under the final name (the temporary file
// is removed on failure). An existing `path` is replaced: callers that must not overwrite check
// first. Returns the number of bytes written.
std::size_t write_model(const Model& model, const std::string& path);

}  // namespace leanembed::onnx
