// leanembed's quantizer: an fp32 ONNX encoder -> the q8 / uint8 / int8 / q4 / fp16 forms
// transformers.js and ONNX Runtime load (standard ONNX plus com.microsoft MatMulNBits), with
// per-channel scales and a clipping search so it loses less than ONNX Runtime's per-tensor tools.
//
// What each dtype writes (see README.md for the measured accuracy and why):
//   q8, uint8  every MatMul with a constant 2-D float B becomes ONNX Runtime's dynamic pattern
//              DynamicQuantizeLinear(X) -> MatMulInteger(X_q, W_q, X_zp, W_zp[N]) -> Cast(float)
//              -> Mul(., Mul(X_scale, W_scale[N])); weights uint8, asymmetric, one scale and zero
//              point per output column (1-D b_zero_point, [N] scale vector), range chosen by a
//              search minimising the weighted squared error. One DynamicQuantizeLinear per
//              activation (Q/K/V share theirs). q8 and uint8 are the same file under two names.
//   int8       the same with int8 weights, symmetric per column (zero points 0).
//   q4         com.microsoft MatMulNBits (bits 4, block_size 32) with 4-bit zero points and a
//              per-block search (min..max or ORT's symmetric form), rounded with GPTQ when
//              calibrated; square weights (the attention projections) stay 8-bit by default
//              (QuantizeOptions::q4_square), still below q8's resident size.
//   fp16       weights stored as float16 behind Cast(to float): compute stays float32; only the
//              constant MatMul weights and large Gather tables are converted, so the file is
//              about half the size and its results are those of fp32 weights rounded to fp16.
// Mixed precision (QuantizeOptions::fp16_tables, fp16_leading_matmuls; on by default): in q8 / uint8
// / int8 / q4 the word-embedding table (a Gather on a float table of >= 1000 rows) and the first
// layer's attention keep float16 weights behind Cast<float>, as the fp16 dtype writes them. Off, the
// table is stored uint8, one scale and zero point per hidden column, behind Gather ->
// DequantizeLinear (axis -1), and every MatMul is quantized. Either way q4's resident weights stay
// below q8's (the same table and first layer; q4's other weights are smaller).
// Calibration (QuantizeOptions::calibration, token id sequences): the fp32 model is run through the
// interpreter on them and every weight MatMul's input is measured per channel (calibration.h).
// Then (a) the weight search weighs input row k by E[x_k^2] and may clip; (b) for q8 / uint8 /
// int8, with `smooth`, activations are smoothed (SmoothQuant, alpha 0.5): X is divided per channel
// by s_k = sqrt(max|x_k| / max_j |W_kj|) through one Mul(X, 1/s) before its DynamicQuantizeLinear
// and the rows of every weight reading X are multiplied by s_k — exact in real arithmetic, and the
// per-tensor activation scale is no longer set by a few outlier channels; (c) for q4 the same
// Mul(X, 1/s) + scaled weight rows with s_k = rms(x_k)^0.25 (normalised to geometric mean 1):
// activation-aware scaling, so rows that meet large inputs are rounded relatively finer (q4 does
// not clip: rows weigh equally in its search). Without calibration every
// row weighs the same and no range is clipped (measured on the MiniLM fixture: weighting rows by
// the preceding LayerNorm's gamma^2 + beta^2 as a proxy, or clipping without knowing the
// activations, made the worst sentences worse — README.md).
//
// Ownership: the returned Model owns all its tensors (new ones and copies of the ones it keeps)
// and does not reference the input's storage: the input (and its file mapping) may be dropped.
// Threading: reentrant; the input is only read.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "leanembed/model_options.h"
#include "onnx/model.h"

namespace leanembed::quantize {

// q4 files: how square weights (K == N) are stored.
enum class Q4Square {
  four_bit,      // MatMulNBits bits 4 like the others (smallest; worst sentence 0.87 on the fixture)
  dynamic_8bit,  // q8's form: DynamicQuantizeLinear -> MatMulInteger, uint8 per-column weights
                 // (activations quantized at run time); leanembed's fast path and ORT run it
  nbits_8bit,    // MatMulNBits bits 8, block 32 (weight-only 8-bit, float activations): most
                 // accurate under ONNX Runtime; leanembed's fast path does not recognise bits 8 yet
};

struct QuantizeOptions {
  // Token id sequences for calibration (see above); empty = none. calibration_sentences()
  // (calibration.h) tokenized with the model's tokenizer is what the CLI and the embedder pass.
  std::vector<std::vector<int64_t>> calibration;
  bool smooth = true;  // with calibration: smooth (8-bit) or scale (q4) the activations
  // With calibration: round the weights with GPTQ's error compensation (gptq.h) instead of to
  // nearest, using each MatMul's calibration inputs (after smoothing / scaling) as X^T X.
  // q4: on (measured on the MiniLM fixture: the 4-bit FFN matrices' worst sentence 0.93 -> 0.99).
  // q8 / uint8 / int8: off (there it raised the mean cosine but lowered the worst sentence's).
  // Costs ~3-5 s on MiniLM-L6 and keeps the calibration inputs while quantizing (~25 MB).
  bool gptq_q4 = true;
  bool gptq_8bit = false;
  double gptq_damp = 0.01;      // dampening: lambda = gptq_damp * mean diagonal of X^T X
  bool gptq_act_order = false;  // round the inputs with the largest E[x^2] first (gptq_round; measured worse)
  // q4 files: the form of square weight matrices (K == N; in a BERT encoder the attention
  // projections Q, K, V and output dense, the matrices the worst sentences are sensitive to).
  Q4Square q4_square = Q4Square::dynamic_8bit;
  // Mixed precision for the parts the worst sentences are most sensitive to (q8 / uint8 / int8 /
  // q4; measured on the MiniLM fixture, README.md): these keep float16 weights behind a Cast to
  // float32 (compute and activations stay float32), as the fp16 dtype writes them.
  // fp16_tables: the vocabulary tables (Gather, >= 1000 rows). An 8-bit table rounds every token's
  //   input to the first LayerNorm by ~1% (8 bits over a Gaussian's range); half precision by ~0.03%.
  //   On the fixture's q8 file this alone lifts the worst of 2000 sentences from 0.991 to 0.996.
  // fp16_leading_matmuls: the first N weight MatMuls in graph order (4 = a BERT encoder's first
  //   layer attention: Q, K, V and output dense), whose rounding error every later layer amplifies:
  //   0.996 -> 0.9996 with the table.
  bool fp16_tables = true;
  int fp16_leading_matmuls = 4;
};

struct QuantizeSummary {
  std::string scheme;                  // one line: what was done (for the CLI and notices)
  int matmuls = 0;                     // MatMuls rewritten
  int gathers = 0;                     // Gather tables rewritten
  std::size_t weight_bytes_before = 0; // bytes of the tensors that were rewritten, before
  std::size_t weight_bytes_after = 0;  // and after (quantized values, scales, zero points)
  std::size_t clamped_to_fp16 = 0;     // fp16: values beyond +-65504 clamped
  int calibration_tokens = 0;          // tokens the statistics came from (0 = no calibration)
  int smoothed = 0;                    // activations smoothed / scaled (one Mul each)
  int gptq = 0;                        // MatMuls whose weights were rounded with GPTQ
  int eight_bit = 0;                   // q4: square MatMuls kept 8-bit (QuantizeOptions::q4_square)
  int kept_fp16 = 0;                   // 8-bit / q4: MatMuls and tables kept float16 (mixed precision)
};

// Dtypes quantize_model writes: q8, uint8, int8, q4, fp16.
bool can_quantize_to(Dtype dtype) noexcept;

// Returns the quantized form of `fp32`. Throws Error(unsupported) for other dtypes (fp32, q4f16,
// bnb4), for a model with no MatMul on a constant float weight (already quantized, or not an
// encoder we know), or a default-domain opset below 13 (per-axis DequantizeLinear needs 13);
// Error(model_format) naming the tensor when a weight's bytes do not match its shape.
// Memory: the output's tensors (about the quantized file's size) plus, while one matrix is being
// quantized, two float copies of it; with calibration, the interpreter's work for a batch of 8.
// Time (MiniLM-L6, 2 cores): ~1 s without calibration; calibration adds the interpreter's run.
onnx::Model quantize_model(const onnx::Model& fp32, Dtype dtype, const QuantizeOptions& options = {},
                           QuantizeSummary* summary = nullptr);

}  // namespace leanembed::quantize
