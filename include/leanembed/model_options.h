// leanembed/model_options.h — naming a model and how its vectors are made (dtype, pooling, length).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace leanembed {

// The dtypes transformers.js knows for encoder files; each selects a file (see dtype_file).
enum class Dtype { fp32, fp16, q8, int8, uint8, q4, q4f16, bnb4 };

// "fp32" → Dtype::fp32 …; throws Error(invalid_argument) listing the valid names.
Dtype dtype_from_name(const std::string& name);
const char* dtype_name(Dtype dtype) noexcept;
// The ONNX file transformers.js loads for a dtype, relative to the model folder:
// fp32 "onnx/model.onnx", fp16 "onnx/model_fp16.onnx", q8 "onnx/model_quantized.onnx", …
std::string dtype_file(Dtype dtype);

enum class Pooling { mean, cls, max, last_token, mean_sqrt_len };
// "mean", "cls", "max", "lasttoken", "mean_sqrt_len"; throws Error(invalid_argument) otherwise.
Pooling pooling_from_name(const std::string& name);
const char* pooling_name(Pooling pooling) noexcept;

// Which path runs the encoder: the fused fast path when the graph is a recognised encoder (or the
// weights come without a graph), else the ONNX interpreter; `fast` and `interpreter` force one
// (forcing the fast path fails when the graph is not recognised).
enum class ExecutionPath { automatic, fast, interpreter };

// Which file of a model folder holds the weights (ModelLocation::format).
//   automatic    the dtype's ONNX file when the folder has it (or onnx/model.onnx to quantize at load);
//                else model.safetensors (fp32 only: the weights as the file stores them)
//   onnx         the ONNX file only (as transformers.js loads)
//   safetensors  model.safetensors with config.json (as sentence-transformers, text-embeddings-inference
//                and Brainy 7 load), even when an ONNX file is there
enum class ModelFormat { automatic, onnx, safetensors };
// "auto", "onnx", "safetensors"; throws Error(invalid_argument) otherwise.
ModelFormat model_format_from_name(const std::string& name);
const char* model_format_name(ModelFormat format) noexcept;

// Where a model is. `model` is a folder path, or a Hugging Face id ("Xenova/all-MiniLM-L6-v2")
// looked up as <model_cache_dir>/<id>/ — the layout transformers.js writes — and fetched there
// from the hub when the files a load needs are missing.
struct ModelLocation {
  std::string model;
  std::string model_cache_dir;   // "" = $LEANEMBED_MODEL_CACHE_DIR (or the older $LEANEMBED_CACHE_DIR), else "./models"
  Dtype dtype = Dtype::fp32;
  std::string model_file;  // overrides the dtype's file: relative to the folder, or absolute
                           // (a .safetensors file loads as safetensors)
  ModelFormat format = ModelFormat::automatic;

  // A hub id whose files are missing from model_cache_dir is fetched from the Hugging Face hub as
  // transformers.js does: {endpoint}/{id}/resolve/{revision}/{file} → <model_cache_dir>/<id>/<file>
  // (another revision than main: <model_cache_dir>/<id>/<revision>/<file>). See src/hub/README.md.
  std::string revision = "main";  // branch, tag or commit
  bool local_files_only = false;  // never download: use the cache's files (also $LEANEMBED_OFFLINE=1, $HF_HUB_OFFLINE=1)
  std::string endpoint;           // "" = $HF_ENDPOINT, else https://huggingface.co
  std::string token;              // "" = $HF_TOKEN; sent as a bearer token, never to a host a redirect leads to
};

}  // namespace leanembed
