#include "runtime/load_engine.h"

#include "leanembed/error.h"
#include "onnx/reader.h"
#include "runtime/encoder/bert_safetensors.h"
#include "safetensors/safetensors.h"

namespace leanembed::runtime {
namespace {

// Throws Error(io) if a file changed (written, truncated, grown, replaced) since it was mapped.
void check_unchanged(const std::vector<std::shared_ptr<const MappedFile>>& files, const char* when) {
  for (const auto& f : files) {
    const std::string change = f->changes();
    if (!change.empty())
      throw Error(ErrorCode::io, "the model file '" + f->path() + "' changed " + when + ": " + change +
                                     ". Nothing was loaded from it; load it again once it is complete (replace model "
                                     "files by renaming a new file over the old one, never by writing into a file in use)");
  }
}

LoadedEngine load_onnx(const ModelFile& file, const LoadOptions& options) {
  onnx::Model model = onnx::read_model(file.path, onnx::ReadOptions{.copy_misaligned = false});
  LoadedEngine out;
  for (const auto& f : model.source_files) out.files_read.push_back({f->path(), f->identity()});
  if (options.inspect) options.inspect(model);
  if (options.transform) {
    // The result owns its tensors: the files' mappings go when `model` is replaced, once it is
    // known that they did not change while they were read.
    const std::vector<std::shared_ptr<const MappedFile>> read = model.source_files;
    onnx::Model transformed = options.transform(model);
    check_unchanged(read, "while it was transformed at load");
    model = std::move(transformed);
  } else {
    out.files_in_use = model.source_files;
  }
  out.engine = std::make_unique<Engine>(std::move(model), options.engine, options.hidden_hint);
  check_unchanged(out.files_in_use, "while it was loaded");
  return out;
}

LoadedEngine load_safetensors(const ModelFile& file, const LoadOptions& options) {
  if (options.transform)
    throw Error(ErrorCode::invalid_argument, "'" + file.path + "' is a safetensors file: there is no ONNX graph to transform");
  if (options.engine.path == ExecutionPath::interpreter)  // refuse before reading 90 MB
    throw Error(ErrorCode::unsupported, "the interpreter runs ONNX graphs, and '" + file.path +
                                            "' (safetensors) has none: it runs on the fast path only (choose path auto or "
                                            "fast, or load an ONNX file)");
  LoadedEngine out;
  const std::optional<FileIdentity> config_identity = identity_of_path(file.config_json);
  const encoder::BertConfig config = encoder::read_bert_config(file.config_json);
  std::shared_ptr<const safetensors::File> st = safetensors::File::open(file.path);
  out.files_read.push_back({file.path, st->mapping().identity()});
  if (config_identity) out.files_read.push_back({file.config_json, *config_identity});
  out.files_in_use.push_back(std::shared_ptr<const MappedFile>(st, &st->mapping()));
  encoder::BertSafetensors bert = encoder::bert_weights_from_safetensors(st, config, options.engine.table_rows_by_pread);
  const std::string what = "'" + file.path + "' holds a BERT encoder by tensor name" +
                           (bert.prefix.empty() ? std::string() : " (prefix '" + bert.prefix + "')") +
                           ", architecture from config.json";
  out.engine = std::make_unique<Engine>(std::move(bert.weights), options.engine, what);
  out.engine->set_ignored_tensors(std::move(bert.ignored));
  check_unchanged(out.files_in_use, "while it was loaded");
  return out;
}

}  // namespace

LoadedEngine load_engine(const ModelFile& file, const LoadOptions& options) {
  return file.format == ModelFileFormat::onnx ? load_onnx(file, options) : load_safetensors(file, options);
}

}  // namespace leanembed::runtime
