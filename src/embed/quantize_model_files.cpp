// include/leanembed/quantize.h: resolves the model folder (model_folder.h), calibrates with the
// folder's tokenizer and hands the rest to the quantizer (quantize/quantize_folder.h).
#include "leanembed/quantize.h"

#include "embed/model_folder.h"
#include "leanembed/error.h"
#include "leanembed/tokenizer.h"
#include "quantize/calibration.h"
#include "quantize/quantize_folder.h"

namespace leanembed {

QuantizeReport quantize_model_files(const QuantizeRequest& request) {
  if (!quantize::can_quantize_to(request.dtype))
    throw Error(ErrorCode::invalid_argument, std::string("quantize: leanembed writes q8, uint8, int8, q4 and fp16 files, not ") +
                                                 dtype_name(request.dtype));
  ModelLocation where = request.model;
  where.dtype = Dtype::fp32;
  const ModelFolder folder = resolve_model_folder(where);
  quantize::QuantizeFolderOptions o;
  o.folder = folder.folder;
  o.source = folder.onnx_path;
  o.dtype = request.dtype;
  o.file_name = dtype_file(request.dtype);
  o.out_folder = request.out_folder;
  o.force = request.force;
  o.quantize.smooth = request.smooth;
  if (!request.mixed_precision) {
    o.quantize.fp16_tables = false;
    o.quantize.fp16_leading_matmuls = 0;
  }
  if (request.dtype != Dtype::fp16) o.quantize.calibration = quantize::calibration_ids(Tokenizer::load(folder.folder));
  return quantize::quantize_folder(o);
}

}  // namespace leanembed
