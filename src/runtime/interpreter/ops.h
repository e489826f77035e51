// The operator table: which (domain, op_type) pairs the interpreter implements, for which opset
// versions, how many inputs/outputs they take, and the functions that validate and run them.
// Each ops_*.cpp file contributes its entries through an add_*_ops function.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "onnx/model.h"
#include "runtime/interpreter/op_context.h"

namespace leanembed::interp {

// Runs one node: reads ctx.inputs, fills ctx.outputs. Throws leanembed::Error.
using OpRun = void (*)(OpContext& ctx);
// Validates the node's attributes once, at interpreter construction (nullptr = nothing to check).
// Throws Error(unsupported) for valid-but-unimplemented settings, Error(model_format) for bad ones.
using OpCheck = void (*)(const onnx::Node& node, int64_t opset);

inline constexpr int kVariadic = 1 << 20;  // max inputs/outputs for variadic ops

struct OpSpec {
  const char* domain;        // "" (ai.onnx) or "com.microsoft"
  const char* op_type;
  int64_t min_opset;         // lowest version of `domain` the implementation follows
  int min_inputs, max_inputs;
  int min_outputs, max_outputs;
  OpRun run;
  OpCheck check = nullptr;
  // float16/bfloat16 support by promotion: when set and an input is float16 (bfloat16), the
  // interpreter converts such inputs to float32, runs the op, and rounds the outputs named in
  // `narrow_outputs` (bit i = output i) back to the input's type, once per op - what ONNX Runtime's
  // CPU provider does by wrapping its float kernels in Casts.
  bool promote_narrow_floats = false;
  uint32_t narrow_outputs = 0;
};

// Marks `spec` as computing narrow floats through float32 (see OpSpec); returns it.
inline OpSpec promoted(OpSpec spec, uint32_t narrow_outputs = 1) {
  spec.promote_narrow_floats = true;
  spec.narrow_outputs = narrow_outputs;
  return spec;
}

// The domain name as the table spells it: "ai.onnx" -> "".
std::string canonical_domain(const std::string& domain);
// The entry for (domain, op_type), or nullptr. Thread-safe (the table is built once).
const OpSpec* find_op(const std::string& domain, const std::string& op_type);
// Every entry, for documentation and tests.
const std::vector<OpSpec>& all_ops();

// Default-domain opset versions the interpreter follows (ops whose meaning changed inside this
// range read ctx.opset). Other domains: com.microsoft version 1.
inline constexpr int64_t kMinDefaultOpset = 11;
inline constexpr int64_t kMaxDefaultOpset = 21;

void add_elementwise_ops(std::vector<OpSpec>& table);
void add_matmul_ops(std::vector<OpSpec>& table);
void add_normalization_ops(std::vector<OpSpec>& table);
void add_shape_ops(std::vector<OpSpec>& table);
void add_constant_ops(std::vector<OpSpec>& table);
void add_microsoft_ops(std::vector<OpSpec>& table);
void add_quantized_ops(std::vector<OpSpec>& table);

}  // namespace leanembed::interp
