// The recognizer: decides whether an ONNX graph is a BERT-family encoder that the fused fast path
// (fast_encoder.h) computes exactly, and if so extracts its configuration and weight views.
//
// What is recognised (opset 14 exports with LayerNorm decomposed into ReduceMean/Sub/Pow/ReduceMean/
// Add(eps)/Sqrt/Div/Mul/Add, and opset 17 exports with LayerNormalization; torch.onnx.export of
// transformers' BertModel and models of the same form, e.g. sentence-transformers MiniLM):
//   embeddings  LayerNorm(Gather(word, input_ids) + Gather(type, token_type_ids) + Gather(pos, ids))
//               with position ids 0..L-1 (a sliced arange buffer, or Range(0, L, 1));
//   each layer  Q/K/V = x W + b reshaped to [B, L, heads, head_size]; softmax(Q K^T / d (or * s)
//               + (1 - mask) * fill) V; LayerNorm(ctx Wo + bo + x); GELU (erf form) FFN;
//               LayerNorm(ffn + x);
//   output      the graph's single output, the last LayerNorm.
// Weight forms: a linear layer is MatMul (fp32 or fp16 weight), ONNX Runtime's dynamic quantization
// (DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scale * weight scale), uint8/int8 weights,
// per-tensor or per-column constants) or com.microsoft MatMulNBits (bits 4), each + a bias Add; the
// word table may be 8-bit behind Gather -> DequantizeLinear; fp16 graphs (fp16 constants, a mask Cast
// to float16, a final Cast to float) are read with their constants checked as fp16.
// The match runs backwards from the graph output, so every node the output depends on is accounted
// for; every weight is checked to be a constant of an accepted type and the expected shape, every
// constant (eps, scale, mask fill, GELU's sqrt(2) and 0.5, the position buffer, quantization scales
// and zero points) is read from the graph and checked. Anything else — com.microsoft fused ops,
// MatMulNBits other than 4-bit or with g_idx, non-constant scales, tanh GELU, extra outputs — gives
// "not recognised" with the node and what was expected.
//
// Threading: reentrant; `model` is only read.
#pragma once

#include <optional>
#include <string>

#include "onnx/model.h"
#include "runtime/encoder/encoder_weights.h"

namespace leanembed::runtime::encoder {

struct RecognizeOptions {
  // The word table's row source (encoder_weights.h): when the model came from read_model and the
  // table's bytes lie in the model file itself (not in external data, not in memory the reader or a
  // quantizer owns), attach a FileReader on Model::path so the fast path reads the rows it needs
  // with pread instead of through the mapping. Only the word table (position and token-type tables
  // are small). Checked at attach time: the file's first and last table rows must equal the
  // mapping's, else (or on any error) the table stays a view of the mapping. false = always the view.
  bool table_rows_by_pread = true;
};

struct RecognizeResult {
  std::optional<EncoderWeights> weights;  // set when recognised
  std::string reason;                     // why not, when not recognised (names the node, the expectation)
};

// Never throws for a model the reader produced (failures are reasons); allocation failure may throw
// std::bad_alloc. Weight views share ownership of the model's storage. With a row source, the file
// is opened once more (one descriptor, kept by the weights).
RecognizeResult recognize_encoder(const onnx::Model& model, const RecognizeOptions& options = {});

}  // namespace leanembed::runtime::encoder
