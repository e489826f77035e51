#include "runtime/load_engine.h"

#include "leanembed/error.h"
#include "onnx/reader.h"
#include "runtime/encoder/bert_safetensors.h"
#include "safetensors/safetensors.h"

namespace leanembed::runtime {

std::unique_ptr<Engine> load_engine(const ModelFile& file, const LoadOptions& options) {
  if (file.format == ModelFileFormat::onnx) {
    onnx::Model model = onnx::read_model(file.path, onnx::ReadOptions{.copy_misaligned = false});
    // A transform's result owns its tensors, so the file's mapping goes when `model` is replaced.
    if (options.transform) model = options.transform(model);
    return std::make_unique<Engine>(std::move(model), options.engine, options.hidden_hint);
  }
  if (options.transform)
    throw Error(ErrorCode::invalid_argument, "'" + file.path + "' is a safetensors file: there is no ONNX graph to transform");
  if (options.engine.path == PathChoice::interpreter)  // refuse before reading 90 MB
    throw Error(ErrorCode::unsupported, "the interpreter runs ONNX graphs, and '" + file.path +
                                            "' (safetensors) has none: it runs on the fast path only (choose path auto or "
                                            "fast, or load an ONNX file)");
  const encoder::BertConfig config = encoder::read_bert_config(file.config_json);
  encoder::BertSafetensors bert =
      encoder::bert_weights_from_safetensors(safetensors::File::open(file.path), config, options.engine.table_rows_by_pread);
  const std::string what = "'" + file.path + "' holds a BERT encoder by tensor name" +
                           (bert.prefix.empty() ? std::string() : " (prefix '" + bert.prefix + "')") +
                           ", architecture from config.json";
  auto engine = std::make_unique<Engine>(std::move(bert.weights), options.engine, what);
  engine->set_ignored_tensors(std::move(bert.ignored));
  return engine;
}

}  // namespace leanembed::runtime
