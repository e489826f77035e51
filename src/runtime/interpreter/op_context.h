// What an op implementation sees while it runs: its node (attributes), the opset version of the
// node's domain, its input tensors and the slots for its outputs. Plus the attribute and axis
// helpers every op needs.
//
// Errors: ops throw leanembed::Error without naming the node; the interpreter adds "node '<name>'
// (<domain>:<op>): " in front. Shape or dtype problems found while running are ErrorCode::runtime;
// malformed attributes or missing required inputs are ErrorCode::model_format.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "onnx/model.h"
#include "runtime/interpreter/tensor.h"

namespace leanembed::interp {

struct OpContext {
  const onnx::Node& node;
  int64_t opset = 0;                    // the model's opset of node.domain
  std::vector<const Tensor*> inputs;    // one per node input; nullptr = optional input left out
  std::vector<Tensor> outputs;          // one per node output; the op fills the wanted ones

  std::size_t input_count() const noexcept { return inputs.size(); }
  bool has_input(std::size_t i) const noexcept { return i < inputs.size() && inputs[i] != nullptr; }
  // The i-th input; Error(model_format) if it was left out.
  const Tensor& input(std::size_t i) const;
  // nullptr when absent.
  const Tensor* optional_input(std::size_t i) const noexcept { return has_input(i) ? inputs[i] : nullptr; }
  // True if the node names an output at position i (optional outputs may be "" or missing).
  bool wants_output(std::size_t i) const noexcept {
    return i < node.outputs.size() && !node.outputs[i].empty();
  }
  void set_output(std::size_t i, Tensor t);
};

// ---- Attributes (usable at validation time too) ------------------------------------------------
// Each returns the default when the attribute is absent and throws Error(model_format) when it is
// present with another type.
int64_t attr_int(const onnx::Node& node, const char* name, int64_t fallback);
float attr_float(const onnx::Node& node, const char* name, float fallback);
std::string attr_string(const onnx::Node& node, const char* name, const std::string& fallback);
std::optional<std::vector<int64_t>> attr_ints(const onnx::Node& node, const char* name);
// Required int attribute: Error(model_format) when absent.
int64_t attr_int_required(const onnx::Node& node, const char* name);

// ---- Axes ----------------------------------------------------------------------------------------
// Maps axis in [-rank, rank) to [0, rank); Error(runtime) naming `what` otherwise.
int64_t normalize_axis(int64_t axis, int64_t rank, const char* what);
// The values of a 1-D (or scalar) int32/int64 tensor (axes, shapes, starts...). Error(runtime)
// naming `what` for other dtypes or ranks above 1.
std::vector<int64_t> int_values(const Tensor& t, const char* what);
// A single number from a one-element tensor of any numeric dtype.
double scalar_value(const Tensor& t, const char* what);

}  // namespace leanembed::interp
