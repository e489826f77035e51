// Decoding the weight forms of an ONNX encoder graph into the fast path's views (encoder_weights.h).
// The recognizer (recognize_encoder.cpp) matches the graph's pattern and says which constant plays
// which role; this file checks each constant — type, shape, byte size, values (finite positive
// scales, zero points of the weight's type) — and makes the view: zero-copy where the bytes allow,
// an aligned copy where a kernel needs one (counted in EncoderWeights::bytes_copied). Every failure is
// not_recognised (graph_query.h) naming the constant and what was expected.
//   fp32 / fp16       MatMul weights [in, out] (fp16 kept encoded), tables, small vectors (fp16
//                     widened exactly to fp32), scalars
//   int8              ONNX Runtime's dynamic quantization: MatMulInteger's uint8/int8 B with a
//                     per-tensor or per-column scale and zero point
//   q4                com.microsoft MatMulNBits (bits 4): blocks, block scales, packed zero points
//   8-bit table       DequantizeLinear(Gather(Wq, ids), scale, zero point): per table or per column
// Every constant taken is counted once in EncoderWeights::weight_bytes and its storage kept alive
// (EncoderWeights::owners).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "onnx/model.h"
#include "runtime/encoder/encoder_weights.h"
#include "runtime/encoder/graph_query.h"

namespace leanembed::runtime::encoder {

class OnnxWeightForms {
 public:
  OnnxWeightForms(const GraphIndex& graph, EncoderWeights& weights) : g_(graph), w_(weights) {}

  // The constant `value` of one of `dtypes`, checked against `dims` (-1 = any) and its byte size;
  // its shape in *actual.
  const onnx::TensorData& constant(const std::string& value, const std::vector<int64_t>& dims, const std::string& role,
                                   std::initializer_list<onnx::DataType> dtypes, std::vector<int64_t>* actual = nullptr);
  // An fp32 or fp16 table [-1 or rows, cols]: always a view of the tensor's bytes (never copied).
  EmbeddingTable table(const std::string& value, const std::vector<int64_t>& dims, const std::string& role,
                       std::vector<int64_t>* actual = nullptr);
  // An fp16 table read through Cast<float> (a view, kept fp16).
  EmbeddingTable half_table(const onnx::Node& cast, const std::string& value, int64_t hidden, const std::string& role,
                            std::vector<int64_t>* actual);
  // An 8-bit table behind `dequantize` (DequantizeLinear(Gather(value), scale, zero point)).
  EmbeddingTable quantized_table(const onnx::Node& dequantize, const std::string& value, int64_t hidden,
                                 const std::string& role, std::vector<int64_t>* actual);
  // A small vector the row kernels read as float*: a view if aligned fp32, else an aligned copy
  // (fp16 widened). The same constant asked twice gives the same view.
  AlignedFloatView vector(const std::string& value, const std::vector<int64_t>& dims, const std::string& role);
  float scalar(const std::string& value, const std::string& role) const;

  // x W with W a constant [in, out] fp32 or fp16 (`cast_to_float`: W is fp16 read through a Cast).
  LinearWeights float_linear(const std::string& weight, int64_t in, int64_t out, const std::string& role, bool cast_to_float);
  // MatMulInteger(q, Wq, zp, Wzp) of ONNX Runtime's dynamic quantization: Wq `mmi`'s input 1,
  // Wzp its input 3 if present, `scale` the weight scale constant.
  LinearWeights int8_linear(const onnx::Node& mmi, const std::string& scale, int64_t in, int64_t out, const std::string& role);
  // com.microsoft MatMulNBits(x, packed, scales [, zero_points]) with bits 4, K = in, N = out (-1 = any).
  LinearWeights q4_linear(const onnx::Node& mm, int64_t in, int64_t out, const std::string& role);

  // Whether an fp16 weight or constant was taken (an fp16 graph).
  bool saw_half() const { return saw_half_; }
  // Keeps `owner` alive with the weights (once).
  void keep(const std::shared_ptr<const void>& owner);

 private:
  const GraphIndex& g_;
  EncoderWeights& w_;
  std::set<const void*> owner_set_;
  std::set<const onnx::TensorData*> counted_;        // tensors already in weight_bytes
  std::map<std::string, AlignedFloatView> vectors_;  // vector()'s results (a shared vector is copied once)
  bool saw_half_ = false;
};

// "fp32", "int8 (uint8 weights, per-tensor scales)", "q4 (block 32)", "fp16" ... of the linear
// layers, then "8-bit word table" when only the table is; differing forms joined by " + ".
std::string describe_weight_form(const EncoderWeights& weights);

}  // namespace leanembed::runtime::encoder
