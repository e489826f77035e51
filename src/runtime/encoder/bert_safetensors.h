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
// Forms in memory (EncoderWeights::weight_form says which the file has). Linear weights are
// transposed once at load from torch's [out, in] into the [in, out] the kernels read (oneDNN's sgemm
// reading [out, in] transposed runs ~20% slower), into one owned block (transparent huge pages asked
// for), and the file's pages of them are unmapped (unmap_file_pages: out of the resident set, kept
// in the page cache; EncoderWeights::released_file_bytes), so the process holds them once, as the
// ONNX path does (there as a view of the file; here anonymous memory, not shared between processes):
//   F32   linear weights copied (MiniLM: 42.5 MB); tables views of the file.
//   F16   linear weights stay fp16 (the fp16 kernel, kernels::encoded_linear_f16; MiniLM: 21.2 MB);
//         tables stay fp16 views, decoded per row.
//   BF16  linear weights widened exactly to fp32 (there is no bf16 kernel; MiniLM: 42.5 MB, twice
//         the file's bytes); tables stay bf16 views (TableEncoding::bf16), widened per row.
//   Biases and LayerNorm vectors: views when F32 and float-aligned, else aligned fp32 copies.
// Copies are counted in EncoderWeights::bytes_copied (so in FastEncoder::owned_weight_bytes). The
// word table's rows are read with pread from the file (attach_row_source) unless
// `table_rows_by_pread` is off, as on the ONNX path. Load time: one pass over the linear weights
// (MiniLM: ~43 MB read from the page cache, written once) by kernels/transpose.h's table (AVX2 8 x 8
// blocks; plain loops under LEANEMBED_ISA=ref), over the OpenMP threads.
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

// Builds the encoder's weights from `file` (kept alive through weights.owners). The file's pages
// are unmapped and the word table given a row source only when the file is mapped
// (safetensors::File::mapped(); File::parse's caller-owned bytes are left as they are).
BertSafetensors bert_weights_from_safetensors(std::shared_ptr<const safetensors::File> file, const BertConfig& config,
                                              bool table_rows_by_pread = true);

}  // namespace leanembed::runtime::encoder
