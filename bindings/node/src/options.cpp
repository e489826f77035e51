// options.cpp — Embedder.load({...}) options → leanembed::EmbedderOptions (see options.h).
#include "options.h"

#include <cmath>
#include <limits>

#include "leanembed/error.h"
#include "leanembed/model_options.h"

namespace leanembed_node {
namespace {

using leanembed::Error;
using leanembed::ErrorCode;

std::string type_name(const Napi::Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsArray()) return "an array";
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_boolean: return "a boolean";
    case napi_number: return "a number";
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_object: return "an object";
    case napi_function: return "a function";
    case napi_bigint: return "a bigint";
    default: return "a value";
  }
}

std::string string_option(const Napi::Value& v, const char* name) {
  if (!v.IsString()) throw ArgumentTypeError(std::string("option '") + name + "' must be a string, got " + type_name(v));
  return v.As<Napi::String>().Utf8Value();
}

bool bool_option(const Napi::Value& v, const char* name) {
  if (!v.IsBoolean()) throw ArgumentTypeError(std::string("option '") + name + "' must be a boolean, got " + type_name(v));
  return v.As<Napi::Boolean>().Value();
}

double number_option(const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) throw ArgumentTypeError(std::string("option '") + name + "' must be a number, got " + type_name(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < 0)
    throw Error(ErrorCode::invalid_argument, std::string("option '") + name + "' must be a finite number >= 0, got " + std::to_string(d));
  return d;
}

// A count or a byte size: a whole number >= 0 (up to 2^53, what a JS number holds exactly).
int64_t count_option(const Napi::Value& v, const char* name) {
  const double d = number_option(v, name);
  if (d != std::floor(d) || d > 9007199254740992.0)
    throw Error(ErrorCode::invalid_argument, std::string("option '") + name + "' must be a whole number, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

leanembed::ExecutionPath path_from_name(const std::string& name) {
  if (name == "auto") return leanembed::ExecutionPath::automatic;
  if (name == "fast") return leanembed::ExecutionPath::fast;
  if (name == "interpreter") return leanembed::ExecutionPath::interpreter;
  throw Error(ErrorCode::invalid_argument, "option 'path' must be 'auto', 'fast' or 'interpreter', got '" + name + "'");
}

constexpr const char* kKnown =
    "model, dtype, modelFile, format, modelCacheDir, localFilesOnly, revision, endpoint, token, threads, parallelMinTokens, maxLength, "
    "pooling, normalize, dims, batchSize, batchTokens, keepArena, path, maxMemory, idleUnload, cache, cacheMemory";

}  // namespace

leanembed::EmbedderOptions embedder_options_from_js(const Napi::Object& js) {
  leanembed::EmbedderOptions o;
  leanembed::ModelLocation& loc = o.location;
  bool have_model = false;
  const Napi::Array keys = js.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string key = keys.Get(i).ToString().Utf8Value();
    const Napi::Value v = js.Get(key);
    if (v.IsUndefined()) continue;  // { dims: undefined } means "the default", as in JS generally
    const char* k = key.c_str();
    if (key == "model") {
      loc.model = string_option(v, k);
      have_model = !loc.model.empty();
    } else if (key == "dtype") {
      loc.dtype = leanembed::dtype_from_name(string_option(v, k));
    } else if (key == "modelFile") {
      loc.model_file = string_option(v, k);
    } else if (key == "format") {
      loc.format = leanembed::model_format_from_name(string_option(v, k));
    } else if (key == "modelCacheDir") {
      loc.model_cache_dir = string_option(v, k);
    } else if (key == "localFilesOnly") {
      loc.local_files_only = bool_option(v, k);
    } else if (key == "revision") {
      loc.revision = string_option(v, k);
    } else if (key == "endpoint") {
      loc.endpoint = string_option(v, k);
    } else if (key == "token") {
      loc.token = string_option(v, k);
    } else if (key == "threads") {
      const int64_t t = count_option(v, k);
      if (t > 4096) throw Error(ErrorCode::invalid_argument, "option 'threads' must be at most 4096, got " + std::to_string(t));
      o.threads = static_cast<int>(t);
    } else if (key == "parallelMinTokens") {  // -1 = automatic, else a count
      if (!v.IsNumber()) throw ArgumentTypeError(std::string("option '") + k + "' must be a number, got " + type_name(v));
      const double d = v.As<Napi::Number>().DoubleValue();
      o.parallel_min_tokens = d == -1 ? -1 : count_option(v, k);
    } else if (key == "maxLength") {
      o.max_length = count_option(v, k);
    } else if (key == "pooling") {
      o.pooling = leanembed::pooling_from_name(string_option(v, k));
    } else if (key == "normalize") {
      o.normalize = bool_option(v, k);
    } else if (key == "dims") {
      o.dims = count_option(v, k);
    } else if (key == "batchSize") {
      o.batch_size = count_option(v, k);
    } else if (key == "batchTokens") {
      o.batch_tokens = count_option(v, k);
    } else if (key == "keepArena") {
      o.keep_arena = bool_option(v, k);
    } else if (key == "path") {
      o.path = path_from_name(string_option(v, k));
    } else if (key == "maxMemory") {
      o.max_memory_bytes = static_cast<std::size_t>(count_option(v, k));
    } else if (key == "idleUnload") {
      o.idle_unload_seconds = number_option(v, k);
    } else if (key == "cache") {
      o.embedding_cache_dir = string_option(v, k);
    } else if (key == "cacheMemory") {
      o.cache_memory_bytes = static_cast<std::size_t>(count_option(v, k));
    } else {
      throw ArgumentTypeError("unknown option '" + key + "' (known: " + kKnown + ")");
    }
  }
  if (!have_model)
    throw ArgumentTypeError("option 'model' is required: a model folder, or a Hugging Face id looked up in modelCacheDir");
  return o;
}

}  // namespace leanembed_node
