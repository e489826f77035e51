// Read-only questions about an onnx::Graph that the encoder recognizer asks: who produces a value,
// whether a value is a constant (initializer or Constant node) and what its numbers are, and the
// symbolic value of small shape computations (Shape → Gather → Unsqueeze → Concat) in terms of the
// batch size B and the sequence length L.
//
// Failures are reported by throwing NotRecognised with a sentence naming the node and what was
// expected; recognize_encoder() turns that into its `reason`.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "onnx/model.h"

namespace leanembed::runtime::encoder {

// Thrown while matching; never escapes recognize_encoder().
struct NotRecognised : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void not_recognised(const std::string& reason);

// One dimension of a symbolic shape: the batch size, the sequence length, or a number.
struct SymDim {
  enum class Kind { batch, seq, number } kind = Kind::number;
  int64_t value = 0;  // for Kind::number
  static SymDim batch() { return {Kind::batch, 0}; }
  static SymDim seq() { return {Kind::seq, 0}; }
  static SymDim number(int64_t v) { return {Kind::number, v}; }
  bool operator==(const SymDim&) const = default;
};
using SymShape = std::vector<SymDim>;
std::string to_string(const SymShape& shape);
// "[2, ?, 384]" (-1 printed as ?), for messages.
std::string dims_text(const std::vector<int64_t>& dims);
// ONNX's default operator domain ("" or "ai.onnx").
bool is_default_domain(const onnx::Node& n);

class GraphIndex {
 public:
  // `graph` must outlive the index.
  explicit GraphIndex(const onnx::Graph& graph);

  // The node producing `value`, or null for graph inputs, initializers and unknown names.
  const onnx::Node* producer(const std::string& value) const;
  // The initializer named `value` or the tensor of the Constant node producing it; null otherwise.
  const onnx::TensorData* constant(const std::string& value) const;
  bool is_initializer(const std::string& value) const;
  bool is_graph_input(const std::string& value) const;
  const onnx::ValueInfo* graph_input(const std::string& value) const;

  // "Add node 'name' (output 'x')" — for messages.
  static std::string describe(const onnx::Node& node);
  // How `value` comes about, for messages: the producing node, "graph input 'x'", "initializer 'x'".
  std::string describe_value(const std::string& value) const;

  // The numbers of a constant integer (int32/int64) tensor, or nullopt if `value` is not one.
  std::optional<std::vector<int64_t>> constant_ints(const std::string& value) const;
  // The single number of a constant float (fp32/fp64/fp16) tensor with one element, or nullopt.
  std::optional<double> constant_scalar(const std::string& value) const;

  // Symbolic shapes of values the recognizer has established (e.g. input_ids = [B, L]).
  void set_shape(const std::string& value, SymShape shape) { shapes_[value] = std::move(shape); }
  const SymShape* shape(const std::string& value) const;

  // The symbolic value of an int64 shape vector computed by the graph (Concat of Unsqueeze(Gather(
  // Shape(t), i)) and constants, a Shape, a constant). Throws NotRecognised for anything else or when
  // a Shape() reads a value whose symbolic shape is not known. `role` names the value in messages.
  SymShape eval_shape_vector(const std::string& value, const std::string& role) const;
  // The same for a scalar (Gather(Shape(t), i) or a constant with one element).
  SymDim eval_shape_scalar(const std::string& value, const std::string& role) const;

 private:
  const onnx::Graph& graph_;
  std::map<std::string, const onnx::Node*> producers_;
  std::map<std::string, const onnx::TensorData*> constants_;
  std::map<std::string, const onnx::ValueInfo*> inputs_;
  std::deque<onnx::TensorData> synthesized_;  // Constant nodes given as value_float / value_ints ...
  std::map<std::string, SymShape> shapes_;
};

// The result of Reshape(input of shape `in`, target) with ONNX's rules (0 copies the input's dim
// unless allowzero, -1 is inferred). Throws NotRecognised when the result is not a product-preserving
// symbolic shape (e.g. a -1 that would have to stand for B*L).
SymShape reshape_result(const SymShape& in, const SymShape& target, bool allowzero, const std::string& where);

}  // namespace leanembed::runtime::encoder
