// The runtime's loader: one function that makes an Engine from a model file, whatever its format.
//   ONNX         the file is read (zero-copy, onnx/reader.h), optionally transformed (the embedder's
//                quantize-at-load), and the graph recognised as an encoder for the fast path or run by
//                the interpreter (engine.h).
//   safetensors  the file is mapped and validated (safetensors/safetensors.h), the architecture read
//                from config.json and the weights taken by their BertModel names
//                (encoder/bert_safetensors.h): the fast path with no graph; the interpreter is refused.
// Either way the word table's rows are read with pread when EngineOptions::table_rows_by_pread.
#pragma once

#include <functional>
#include <memory>
#include <string>

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
  // ONNX only: applied to the model read from the file before the engine is made (e.g. quantizing
  // it in memory); empty = none.
  std::function<onnx::Model(const onnx::Model&)> transform;
};

// Throws Error(io) for a file that cannot be read, Error(model_format) for a malformed one (naming
// the file, tensor or field), Error(unsupported) for a well-formed model the runtime cannot run,
// and Error(invalid_argument) when `transform` is given for a safetensors file (there is no graph
// to transform; the caller decides how to refuse the dtype first).
std::unique_ptr<Engine> load_engine(const ModelFile& file, const LoadOptions& options);

}  // namespace leanembed::runtime
