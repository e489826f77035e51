// A BERT encoder from a safetensors file: the architecture from config.json, the weights by their
// Hugging Face BertModel names — what sentence-transformers' and Brainy 7's model.safetensors hold —
// straight into EncoderWeights for the fast path (fast_encoder.h), with no ONNX graph.
//
// config.json (read_bert_config): model_type "bert"; hidden_size, num_hidden_layers,
// num_attention_heads (dividing hidden_size), intermediate_size, vocab_size,
// max_position_embeddings, type_vocab_size (0 = no token-type table), layer_norm_eps; hidden_act
// "gelu" (the erf form BertModel computes; the tanh approximations are refused);
// position_embedding_type "absolute" when given. A missing or malformed field is
// Error(model_format) naming the file and field, another model type or activation Error(unsupported).
//
// Names (bert_weights_from_safetensors), with or without a "bert." prefix (a BertFor* checkpoint),
// LayerNorm parameters named weight/bias or gamma/beta (older TF-converted checkpoints):
//   embeddings.{word,position,token_type}_embeddings.weight, embeddings.LayerNorm.*,
//   encoder.layer.<i>.attention.self.{query,key,value}.{weight,bias},
//   encoder.layer.<i>.attention.output.dense.*, .attention.output.LayerNorm.*,
//   encoder.layer.<i>.intermediate.dense.*, .output.dense.*, .output.LayerNorm.*
// Every other tensor (pooler.*, embeddings.position_ids, cls.* heads ...) is ignored and listed in
// BertSafetensors::ignored. A missing tensor, a wrong shape or a weight dtype other than F32 / F16 /
// BF16 is Error(model_format) naming the tensor.
//
// Forms in memory (EncoderWeights::weight_form says which the file has):
//   F32   every matrix and table a view of the file (zero-copy); linear weights stay in torch's
//         [out, in] layout and the product reads them transposed (LinearWeights::transposed).
//   F16   tables stay views (decoded per row); linear weights stay fp16 but are transposed once into
//         an owned [in, out] copy for the fp16 kernel (kernels::encoded_linear_f16): owned memory =
//         the file's linear-weight bytes (MiniLM: 21.2 MB), the file's copy of them is not read again.
//   BF16  tables stay views (TableEncoding::bf16); linear weights are widened once, exactly, into
//         an owned fp32 [in, out] copy (there is no bf16 kernel): owned memory = twice the file's
//         linear-weight bytes (MiniLM: 42.5 MB, what an F32 file maps).
//   Biases and LayerNorm vectors: views when F32 and float-aligned, else aligned fp32 copies.
// All copies are counted in EncoderWeights::bytes_copied (so in FastEncoder::owned_weight_bytes and
// the memory budget). The word table's rows are read with pread from the file
// (attach_row_source) unless `table_rows_by_pread` is off, as on the ONNX path.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/encoder/encoder_weights.h"
#include "safetensors/safetensors.h"

namespace leanembed::runtime::encoder {

struct BertConfig {
  int64_t hidden = 0, layers = 0, heads = 0, intermediate = 0, vocab = 0, max_positions = 0, type_vocab = 0;
  float layer_norm_eps = 1e-12f;
};

BertConfig read_bert_config(const std::string& config_json_path);

struct BertSafetensors {
  EncoderWeights weights;
  std::string prefix;                // "" or "bert."
  std::vector<std::string> ignored;  // tensors of the file the encoder does not use, sorted
};

// Builds the encoder's weights from `file` (kept alive through weights.owners).
BertSafetensors bert_weights_from_safetensors(std::shared_ptr<const safetensors::File> file, const BertConfig& config,
                                              bool table_rows_by_pread = true);

}  // namespace leanembed::runtime::encoder
