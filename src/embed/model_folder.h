// Finding a model's files the way transformers.js does, and reading its sentence-transformers
// metadata (pooling, normalisation, maximum length). A hub id's missing files are fetched by
// src/hub (hub::fetch_model); in a folder, a missing file is an Error(io) that lists what the folder
// holds and which files to put where.
#pragma once

#include <string>

#include "leanembed/model_options.h"

namespace leanembed {

struct ModelFolder {
  std::string folder;                 // the resolved folder
  ModelFormat format = ModelFormat::onnx;  // the file to load: onnx or safetensors (never automatic)
  std::string format_reason;          // why that file, for `info`
  std::string onnx_path;              // format onnx: the ONNX file to load (exists); else ""
  std::string safetensors_path;       // format safetensors: the .safetensors file (exists); else ""
  std::string config_json;            // the folder's config.json, "" when absent
  const std::string& model_path() const { return format == ModelFormat::safetensors ? safetensors_path : onnx_path; }
  bool quantize_at_load = false;      // the dtype's file is missing and onnx_path is the fp32 model.onnx:
                                      // quantize it in memory to the asked dtype (quantize/quantize.h)
  std::string tokenizer_json;         // "" when the folder has none (then vocab.txt is used)
  std::string vocab_txt;              // "" when absent
  std::string tokenizer_config_json;  // "" when absent

  // config.json
  std::string model_type;               // "bert", ...; "" when config.json does not say
  int64_t hidden_size = 0;              // 0 when unknown
  int64_t max_position_embeddings = 0;  // 0 when unknown

  // sentence-transformers metadata (modules.json, 1_Pooling/config.json, sentence_bert_config.json)
  Pooling pooling = Pooling::mean;  // mean when there is no Pooling module
  bool normalize = true;            // with modules.json: whether it lists a Normalize module;
                                    // without: true (what transformers.js users and Brainy do)
  int64_t max_length = 512;
  std::string max_length_source;    // which file decided max_length, for `info`
};

// Resolves the folder and the ONNX file, and reads the metadata.
// ONNX file: `model_file` when given, else the dtype's transformers.js file; when that is missing
// for a dtype leanembed can make (q8, uint8, int8, q4, fp16) and onnx/model.onnx exists, onnx_path
// is model.onnx and quantize_at_load is set.
// Format (ModelLocation::format): automatic takes the ONNX file as above when it is there (or can be
// quantized at load), else model.safetensors for dtype fp32; a dtype other than fp32 with only
// model.safetensors is Error(unsupported) saying which ONNX file to fetch (leanembed's quantizer
// rewrites ONNX graphs; it does not take bare weights). safetensors needs config.json.
// max_length: the order in max_length.h (sentence_bert_config.json, tokenizer_config.json,
// tokenizer.json's truncation, 512), capped by config.json's max_position_embeddings.
// Throws Error(io) for a missing folder or file (with the listing and what to fetch), and
// Error(model_format) for malformed JSON naming the file and field.
ModelFolder resolve_model_folder(const ModelLocation& where);

}  // namespace leanembed
