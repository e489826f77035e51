// The runtime's loader: one function that makes an Engine from a model file, whatever its format.
//   ONNX         the file is read (zero-copy, onnx/reader.h), optionally transformed (the embedder's
//                quantize-at-load), and the graph recognised as an encoder for the fast path or run by
//                the interpreter (engine.h).
//   safetensors  the file is mapped and validated (safetensors/safetensors.h), the architecture read
//                from config.json and the weights taken by their BertModel names
//                (encoder/bert_safetensors.h): the fast path with no graph; the interpreter is refused.
// Either way the word table's rows are read with pread when EngineOptions::table_rows_by_pread.
//
// Model files and their versions (issue 16, items 2 and 3): the result says which files the load
// read, with their identities (device, inode, size, modification time: core/file_identity.h), and
// which mapped files the engine keeps reading while it runs (views of the mapping, or rows read with
// pread through the mapping's own descriptor). A caller that must never mix two versions of a model
// checks those files' changes() around every run (src/embed/embedder.cpp does) and compares the
// identities of a later load with the first's.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/file_identity.h"
#include "core/mapped_file.h"
#include "onnx/model.h"
#include "runtime/engine.h"

namespace leanembed::runtime {

enum class ModelFileFormat { onnx, safetensors };

struct ModelFile {
  ModelFileFormat format = ModelFileFormat::onnx;
  std::string path;         // the .onnx or .safetensors file
  std::string config_json;  // safetensors: the model's config.json (the architecture); ONNX: unused
};

struct LoadOptions {
  EngineOptions engine;
  int64_t hidden_hint = 0;  // ONNX on the interpreter: config.json's hidden_size (Engine's hidden_hint)
  // ONNX only: called with the model as read, before `transform` (the embedder fingerprints it for
  // its cache); empty = none.
  std::function<void(const onnx::Model&)> inspect;
  // ONNX only: applied to the model read from the file before the engine is made (e.g. quantizing
  // it in memory); empty = none.
  std::function<onnx::Model(const onnx::Model&)> transform;
};

// A file a load read, and which version of it.
struct ReadFile {
  std::string path;
  FileIdentity identity;
};

struct LoadedEngine {
  std::unique_ptr<Engine> engine;
  // The mapped files the engine reads weights from while it runs (ONNX: the model file and its
  // external data; safetensors: the file, for the word table's rows). Empty when the engine owns
  // all its weights (an ONNX model transformed at load).
  std::vector<std::shared_ptr<const MappedFile>> files_in_use;
  // Every model file the load read (ONNX: the model file, then each external-data file;
  // safetensors: the file, then config.json), with its identity when read.
  std::vector<ReadFile> files_read;
};

// Throws Error(io) for a file that cannot be read or that changed while it was loaded (written,
// truncated or replaced: naming it and what changed), Error(model_format) for a malformed one
// (naming the file, tensor or field), Error(unsupported) for a well-formed model the runtime cannot
// run, and Error(invalid_argument) when `transform` is given for a safetensors file (there is no
// graph to transform; the caller decides how to refuse the dtype first).
LoadedEngine load_engine(const ModelFile& file, const LoadOptions& options);

}  // namespace leanembed::runtime
