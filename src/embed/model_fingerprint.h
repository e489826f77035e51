// The cache's fingerprint of a model: what the model computes with, not the file's bytes.
//
// BLAKE2b-256 over, in a fixed order with lengths: the IR version and opset imports; the graph's
// inputs and outputs (names, element types, shapes); every node (op type, domain, inputs, outputs,
// attributes of every type, subgraphs recursively); and every initializer a node or an output uses
// (name, data type, dims, bytes), wherever its bytes live: the model file, an external-data file
// (model.onnx_data, weights.bin, ...), or decoded storage. So two models share cache entries only
// if they compute the same thing from the same weights, whichever files hold them (issue 16, item 1);
// and bytes no reader uses (unknown protobuf fields, doc strings, metadata, initializers no node
// reads, node names) neither change the fingerprint nor cost time to hash (item 13).
//
// Cost: one pass over the used weights' bytes (~0.1 s for MiniLM's 90 MB) plus the graph (small).
// Bytes of a file are read with pread through the mapped file's own descriptor (1 MiB buffer), so
// the hash neither adds the weights to the process' resident memory nor reads another file that
// replaced the path since the model was read.
#pragma once

#include "leanembed/cache.h"
#include "core/mapped_file.h"
#include "onnx/model.h"

namespace leanembed {

// Throws Error(io) if a file's bytes cannot be read.
ModelFingerprint model_fingerprint(const onnx::Model& model);

// A safetensors file: every byte of it (the header with every tensor's name, dtype, shape and
// offsets, then the data buffer, which the tensors cover with no gap: safetensors/safetensors.h),
// read with pread through the mapping's own descriptor in 1 MiB pieces. The architecture comes from
// config.json, which the embedder adds to the cache scope itself. Throws Error(io) as model_fingerprint.
ModelFingerprint model_fingerprint(const MappedFile& safetensors_file);

}  // namespace leanembed
