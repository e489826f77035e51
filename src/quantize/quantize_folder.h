// `leanembed quantize` as a function: read a model folder's fp32 ONNX file, quantize it, write it
// under the dtype's transformers.js name into the folder or into another folder that then receives
// the metadata files too (so it is a complete model folder).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "leanembed/quantize.h"
#include "quantize/quantize.h"

namespace leanembed::quantize {

struct QuantizeFolderOptions {
  std::string folder;        // the model folder (resolved: a path that exists)
  std::string source;        // the fp32 ONNX file to read (absolute, or relative to the current folder)
  std::string file_name;     // where to write, relative to the output folder, e.g. "onnx/model_quantized.onnx"
  Dtype dtype = Dtype::q8;
  std::string out_folder;    // "" = `folder`
  bool force = false;        // replace an existing output file
  QuantizeOptions quantize;  // calibration token ids, smoothing (quantize.h)
};


// Throws Error(invalid_argument) when the output file exists and !force (nothing is written) or the
// output would replace the source; Error(io) for files that cannot be read, created or copied;
// whatever read_model / quantize_model throw. The ONNX file is written to a temporary name and
// renamed (onnx/writer.h), so a failure never leaves a partial model under the final name.
// Metadata copied into another out_folder: every regular file of `folder` outside onnx/ (config,
// tokenizer, sentence-transformers modules ...) except weight files (*.onnx, *.onnx_data, *.bin,
// *.safetensors, *.h5, *.msgpack, *.ot); files already in out_folder are left as they are.
// Memory: the fp32 model is mapped (not copied); the quantized model is built in memory.
// The report is the public one (leanembed/quantize.h): the quantizer's summary in its terms.
QuantizeReport quantize_folder(const QuantizeFolderOptions& options);

}  // namespace leanembed::quantize
