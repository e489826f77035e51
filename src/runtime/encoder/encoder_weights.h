// What the recognizer (recognize_encoder.h) extracts from a BERT-family ONNX graph and what the
// fast path (fast_encoder.h) runs: the configuration and read-only views of every weight.
//
// Forms: linear weights may be fp32, int8/uint8 (ONNX Runtime's MatMulInteger pattern), 4-bit
// blocks (MatMulNBits) or fp16 (LinearWeights::encoding); embedding tables fp32, fp16 or 8-bit
// (EmbeddingTable). Biases and LayerNorm vectors are always fp32 AlignedFloatViews.
//
// Zero-copy and alignment: exporters do not align raw_data, so a weight in a mapped file may start
// at any byte address (torch's MiniLM export: 57 of 101 fp32 initializers, 83 of 90 MB). The two
// view types make the difference visible in the type:
//  - UnalignedFloatView — the big matrices (linear weights, embedding tables): always a view of the
//    model's bytes, wherever they start. It holds a std::byte pointer and offers only memcpy-based
//    reads (load, copy_to) and gemm_operand() for kernels::Matmul (whose a/b accept any address).
//  - AlignedFloatView — the small vectors (biases, LayerNorm gamma/beta) the row kernels read as
//    float*: a view when the bytes are float-aligned, else an aligned copy made by the recognizer
//    (counted in EncoderWeights::bytes_copied; ~20 KB per MiniLM layer).
//
// Ownership: the views point into the onnx::Model's storage (the mapped file, or the reader's
// aligned copies) or into the recognizer's copies; `owners` keeps all of that alive, so an
// EncoderWeights stays valid after the Model is gone. The word table's row source (a FileReader,
// see EmbeddingTable) is shared the same way. Copying an EncoderWeights is cheap (views and
// shared_ptrs).
//
// Layouts are those of the ONNX graph: a linear layer y = x W + b has W stored row-major as
// [in, out] (what torch exports as the MatMul's second input) and b as [out].
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/file_reader.h"
#include "kernels/encoded_linear.h"

namespace leanembed::runtime::encoder {

// A read-only view of `size` little-endian fp32 values starting at any byte address (a matrix is
// row-major). Never cast `bytes` to float* and dereference it: use load / copy_to, or hand
// gemm_operand() to kernels::Matmul.
struct UnalignedFloatView {
  const std::byte* bytes = nullptr;
  int64_t size = 0;

  bool empty() const { return size == 0; }
  // Value i (0 <= i < size; not checked), read with std::memcpy.
  float load(int64_t i) const {
    float v;
    std::memcpy(&v, bytes + i * static_cast<int64_t>(sizeof(float)), sizeof v);
    return v;
  }
  // Copies values [first, first + n) to dst (size n, any float-aligned buffer). Not checked.
  void copy_to(int64_t first, int64_t n, float* dst) const {
    std::memcpy(dst, bytes + first * static_cast<int64_t>(sizeof(float)), static_cast<std::size_t>(n) * sizeof(float));
  }
  // The address as the `a` / `b` operand of kernels::GemmArgs, which are read without assuming
  // alignment (kernels.h). For that use only.
  const float* gemm_operand() const { return reinterpret_cast<const float*>(bytes); }
};

// A read-only view of `size` fp32 values whose address is a multiple of alignof(float), so `data`
// may be dereferenced (row kernels take it as float*).
struct AlignedFloatView {
  const float* data = nullptr;
  int64_t size = 0;
};

struct LayerNormWeights {
  AlignedFloatView gamma;  // size hidden
  AlignedFloatView beta;   // size hidden
  float eps = 0.0f; // read from the graph (LayerNormalization.epsilon or the Add before Sqrt)
};

// How a linear layer's weight W [in, out] is stored in the file. Each form is a view of the
// model's bytes (never copied, never widened in memory); the fast path runs fp32 through
// kernels::Matmul and the others through one kernels::EncodedLinear per layer.
enum class LinearEncoding {
  fp32,  // MatMul with an fp32 B: `weight`
  int8,  // ONNX Runtime's dynamic quantization (MatMulInteger, uint8 or int8 B): `int8`
  q4,    // com.microsoft MatMulNBits, bits 4: `q4`
  fp16,  // MatMul with a float16 B: `f16`
};
const char* linear_encoding_name(LinearEncoding e);

struct LinearWeights {
  LinearEncoding encoding = LinearEncoding::fp32;
  UnalignedFloatView weight;       // fp32: size in * out, row-major [in, out]; a view of the model's bytes
  kernels::Int8WeightsView int8;   // int8: k = in, n = out; data, scales, zero points view the file
  kernels::BlockQ4WeightsView q4;  // q4: k = in, n = out
  kernels::F16WeightsView f16;     // fp16: k = in, n = out
  AlignedFloatView bias;           // size out (fp16 biases widened into an aligned copy)
  // Empty, or `in` values the graph multiplies the input by, channel by channel, before this
  // product (the activation smoothing of `leanembed quantize`'s q8/int8/q4 files: Mul(x, 1/s) with
  // the weight rows scaled by s). Q, K and V share theirs.
  AlignedFloatView input_scale;
  int64_t in = 0, out = 0;
};

// An embedding table [rows, hidden] as the file stores it: fp32, fp16, or 8-bit with one scale and
// zero point for the whole table (ONNX Runtime's Gather -> DequantizeLinear). Always a view of the
// model's bytes at any address; rows are decoded when the embedding rows are built.
//
// Row source: a table may instead be read with pread(2) from the model file (`row_source`, set by
// the recognizer for the word table of a model read from a file; recognize_encoder.h). Its values
// are then never read through `bytes` (which still locates the table in the mapping): each
// copy_to / add_to / load reads just the bytes it decodes into a 16 KiB stack buffer, so the table
// costs the process no resident memory (the kernel's page cache keeps what was read, shared and
// reclaimable), where reads through the mapping would leave every touched page — with the kernel's
// fault-around, 64 KiB per touch — in the process' RSS (MiniLM's fp32 word table: ~45 of 47 MB
// over a long run).
// bf16: bfloat16 (the upper half of an fp32; safetensors BF16 files), widened exactly when read.
enum class TableEncoding { fp32, fp16, bf16, uint8, int8 };

struct EmbeddingTable {
  TableEncoding encoding = TableEncoding::fp32;
  const std::byte* bytes = nullptr;  // size * element bytes (4, 2 or 1)
  int64_t size = 0;                  // values (rows * hidden)
  // Null, or the model file holding the table's bytes at row_source_offset (the same bytes as
  // `bytes`); when set, values are read from it instead of through `bytes`.
  std::shared_ptr<const FileReader> row_source;
  std::size_t row_source_offset = 0;
  float scale = 1.0f;                // 8-bit: value = (q - zero_point) * scale (DequantizeLinear)
  int32_t zero_point = 0;
  // 8-bit per column (DequantizeLinear axis -1, as `leanembed quantize` writes): hidden scales and
  // zero points (copied, counted in bytes_copied); empty = the per-table ones above.
  std::vector<float> column_scale;
  std::vector<int32_t> column_zero_point;

  bool empty() const { return size == 0; }
  std::size_t element_bytes() const {
    return encoding == TableEncoding::fp32 ? 4 : encoding == TableEncoding::fp16 || encoding == TableEncoding::bf16 ? 2 : 1;
  }
  // Value i decoded to fp32 (0 <= i < size; not checked). For 8-bit, exactly DequantizeLinear's
  // float(q - zero_point) * scale.
  float load(int64_t i) const;
  // dst[c] = value(first + c) for c < n (copy) or dst[c] += value(first + c) (add). Not checked.
  // The same values whether read through `bytes` or from the row source. With a row source these
  // (and load) throw Error(io) naming the file if it can no longer be read (e.g. truncated); they
  // allocate nothing. Threading: const, safe from several threads.
  void copy_to(int64_t first, int64_t n, float* dst) const;
  void add_to(int64_t first, int64_t n, float* dst) const;
};

struct EncoderLayerWeights {
  LinearWeights query, key, value;  // [hidden, hidden] each
  LinearWeights attention_output;   // [hidden, hidden]
  LayerNormWeights attention_norm;  // LayerNorm(attention_output(ctx) + layer input)
  LinearWeights ffn_in;             // [hidden, ffn]
  LinearWeights ffn_out;            // [ffn, hidden]
  LayerNormWeights output_norm;     // LayerNorm(ffn_out(gelu(ffn_in(x))) + x)
};

// How the graph computes position ids; both give 0, 1, ..., L-1 for a sequence of length L.
enum class PositionIdsForm {
  sliced_buffer,  // Slice of a constant arange buffer [1, P] up to the sequence length (torch BERT)
  range,          // Range(0, sequence length, 1)
};

struct EncoderConfig {
  int64_t hidden = 0;             // H
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t head_size = 0;          // heads * head_size == hidden
  int64_t ffn = 0;                // intermediate size F
  int64_t vocab = 0;              // rows of the word embedding table
  int64_t max_positions = 0;      // longest sequence the position ids can address
  int64_t type_vocab = 0;         // rows of the token-type table (0 = the graph has none)
  float attention_scale = 0.0f;   // multiplier applied to Q K^T (1/d when the graph divides by d)
  float attention_scale_divisor = 0.0f;  // the graph's divisor (0 if it multiplies instead)
  bool has_attention_mask = false;       // the graph builds an additive mask from attention_mask
  float mask_fill = 0.0f;         // the value added for masked keys: (1 - mask) * mask_fill
  PositionIdsForm position_ids = PositionIdsForm::sliced_buffer;
  bool scaled_inputs = false;     // some linear layer has an input_scale (the plan books scaled copies;
                                  // FastEncoder clears it when every such kernel applies the scale itself)
  std::string input_ids_name, token_type_ids_name, attention_mask_name, output_name;
};

struct EncoderWeights {
  EncoderConfig config;
  EmbeddingTable word_embeddings;        // [vocab, hidden]
  EmbeddingTable position_embeddings;    // [max_positions (or more), hidden]
  EmbeddingTable token_type_embeddings;  // [type_vocab, hidden]; empty if type_vocab == 0
  LayerNormWeights embedding_norm;
  std::vector<EncoderLayerWeights> layers;  // config.layers entries

  std::vector<std::shared_ptr<const void>> owners;  // keeps the views alive
  std::size_t bytes_copied = 0;     // bytes of vectors the recognizer copied to align them (0 when the
                                    // reader already aligned everything) or to widen fp16 ones to fp32;
                                    // matrices and tables are never copied
  std::size_t weight_bytes = 0;     // bytes of all the initializers viewed (weights, scales, zero points)
  // Bytes of the model file whose values were copied into owned memory (counted in bytes_copied)
  // and whose pages were then dropped from the resident set (drop_resident_pages): the file's copy
  // is never read again, so it costs no resident memory. 0 for ONNX files (views).
  std::size_t released_file_bytes = 0;
  // The weights' form, for people: "fp32", "int8 (uint8 weights, per-tensor scales)", "int8 (int8
  // weights, per-tensor scales)" (per-column when the file has them), "q4 (block 32)", "fp16";
  // forms of differing layers are joined with " + ". The word table's 8-bit storage is part of the
  // int8 forms.
  std::string weight_form = "fp32";
};

}  // namespace leanembed::runtime::encoder
