// Fetching a model from the Hugging Face hub into the model cache folder, as transformers.js does:
// GET {endpoint}/{id}/resolve/{revision}/{file} into <model_cache_dir>/<id>/<file> (another revision
// than main: <model_cache_dir>/<id>/<revision>/<file>). Only the files a load needs; each written
// to <file>.incomplete and renamed when whole; one process at a time per folder (flock).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "leanembed/model_options.h"

namespace leanembed::hub {

struct FetchOptions {
  long connect_timeout_seconds = 30;
  long stall_timeout_seconds = 60;  // less than 1 byte/s for this long: the download fails
  // Called (once) when another process holds the folder's lock, before waiting for it; default: a
  // line on stderr when stderr is a terminal.
  std::function<void(const std::string& message)> on_wait;
};

// The folder a hub id lives in: <cache>/<id> for revision "main" (or ""), else <cache>/<id>/<revision>.
// Throws Error(invalid_argument) for an id or revision that is not a plain hub name.
std::filesystem::path hub_model_folder(const std::string& cache_dir, const std::string& id, const std::string& revision);

// Makes sure the hub id `where.model` is in `cache_dir` with what a load needs, and returns its folder.
// `model_files`: the model file to use, in order of preference (the dtype's file, then onnx/model.onnx
// when leanembed can quantize it at load; or the one --model-file names); the first the hub has is
// fetched (for an .onnx file, also its external data "<file>_data" when the hub has it). Also fetched:
// tokenizer.json (required; when the hub has none, vocab.txt and special_tokens_map.json),
// config.json, tokenizer_config.json and the sentence-transformers metadata where present.
// Nothing touches the network when the folder already holds the tokenizer and the model file.
// An optional file (or a preferred model file) the hub answers 404 for is remembered in
// <folder>/.leanembed-hub-absent and not asked for again.
// Offline (where.local_files_only, LEANEMBED_OFFLINE=1, HF_HUB_OFFLINE=1): Error(io) naming the
// URLs to fetch and where to put them. Every failure is Error(io) naming the URL and what happened;
// an id or revision that is not a plain hub name is Error(invalid_argument).
std::filesystem::path fetch_model(const ModelLocation& where, const std::string& cache_dir,
                                  const std::vector<std::string>& model_files, const FetchOptions& options = {});

// "1", "true", "yes", "on" (any case), as huggingface_hub reads its flags.
bool env_flag(const char* name);

}  // namespace leanembed::hub
