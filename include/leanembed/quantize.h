// leanembed/quantize.h — our own quantizer as a library call (what `leanembed quantize` runs):
// reads a model folder's fp32 ONNX file and writes the quantized or fp16 file under the name
// transformers.js loads for that dtype, so transformers.js, ONNX Runtime and leanembed all run it.
//
//   leanembed::QuantizeReport r = leanembed::quantize_model_files({.model = {.model = "models/all-MiniLM-L6-v2"},
//                                                                  .dtype = leanembed::Dtype::q8});
//   // r.written == "models/all-MiniLM-L6-v2/onnx/model_quantized.onnx"
//
// Schemes (src/quantize/README.md has the measurements): q8 / uint8 = uint8 weights with per-column
// scales and zero points, int8 = symmetric int8 per column (both ONNX Runtime's dynamic pattern
// DynamicQuantizeLinear -> MatMulInteger, with calibrated smoothing and GPTQ rounding); q4 =
// com.microsoft MatMulNBits, 4 bits, block 32, with zero points; fp16 = fp16 weights behind a Cast
// (compute stays fp32). Mixed precision (QuantizeRequest::mixed_precision, on by default): the
// word-embedding table and the first layer's attention keep fp16 weights in q8 / uint8 / int8 / q4
// too; without it the table is uint8 per column.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "leanembed/model_options.h"

namespace leanembed {

struct QuantizeRequest {
  // The model folder (or hub id in the cache folder). model.model_file = the fp32 file to read
  // (default onnx/model.onnx); model.dtype is ignored.
  ModelLocation model;
  Dtype dtype = Dtype::q8;  // q8, uint8, int8, q4 or fp16
  std::string out_folder;   // "" = write into the model folder; else a new complete model folder
                            // (the metadata files are copied into it)
  bool force = false;       // replace an existing file
  bool smooth = true;       // calibrated per-channel activation scaling (more accurate; one Mul per input)
  // q8 / uint8 / int8 / q4: keep float16 weights (behind a Cast; float32 compute) for the word table
  // and the first layer's attention (its first 4 MatMuls), the parts the worst sentences are most
  // sensitive to (accuracy gained and bytes paid, measured: docs/BENCHMARKS.md). Costs the table's
  // uint8 -> fp16 size in the file; false = everything 8-bit / 4-bit.
  bool mixed_precision = true;
};

struct QuantizeReport {
  std::string source;                // the fp32 file read
  std::string written;               // the file written
  std::size_t source_bytes = 0, written_bytes = 0;
  double seconds = 0;                // read + calibrate + quantize + write
  std::string scheme;                // one line: what was done
  int matmuls = 0, tables = 0;       // MatMuls and embedding tables rewritten
  std::size_t weight_bytes_before = 0, weight_bytes_after = 0;
  std::size_t clamped_to_fp16 = 0;   // fp16: values beyond +-65504 clamped
  std::vector<std::string> copied;   // metadata files copied into out_folder
};

// Throws Error(invalid_argument) for a dtype we do not write, or when the output exists and !force
// (nothing is written); Error(io) for files that cannot be read or written; Error(model_format /
// unsupported) for a model that cannot be read or quantized. The file is written under a temporary
// name and renamed, so a failure never leaves a partial model. Memory: the fp32 file is mapped, the
// quantized model is built in memory (about its file size), calibration runs 24 sentences through
// the interpreter.
QuantizeReport quantize_model_files(const QuantizeRequest& request);

}  // namespace leanembed
