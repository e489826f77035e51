// The generic ONNX interpreter: the slow, obviously-right way to run a model, following the ONNX
// operator specification op by op. It is the correctness base the fused fast path is tested
// against, and the fallback for graphs the fast path does not recognise.
//
// Usage:
//   onnx::Model model = onnx::read_model(path);
//   interp::Interpreter interpreter(model);                 // validates every node up front
//   interp::Interpreter::TensorMap out = interpreter.run({
//       {"input_ids", interp::Tensor::from_int64s({1, n}, ids)}, ...});
//   const interp::Tensor& hidden = out.at("last_hidden_state");
//
// Supported: the ai.onnx default domain at opsets 11..21 (see ops.h for the op list and
// README.md for the per-op notes) and a few com.microsoft ops ONNX Runtime's optimizer emits.
//
// Execution: nodes run one at a time in a topological order computed at construction (file order
// among ready nodes). Memory: weights (initializers) are views of the model's storage, never
// copied (except initializers whose bytes are misaligned in the file, copied once at construction).
// Every intermediate tensor is released right after the last node that reads it (last uses are
// computed once at construction; outputs nobody reads are released right after their node), so
// the memory held during a run is, at any moment, the tensors still waiting for a reader plus the
// ones the current node is producing. Reshape/Squeeze/Unsqueeze/Identity results share storage
// with their input. RunStats::peak_bytes reports the measured maximum.
//
// Threading: run() is const and keeps all its state local: several threads may run the same
// Interpreter at once. Ops are single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "onnx/model.h"
#include "runtime/interpreter/ops.h"
#include "runtime/interpreter/tensor.h"

namespace leanembed::interp {

struct RunStats {
  // Largest sum of bytes of live intermediate tensors (graph inputs and node outputs; weights
  // excluded; storage shared by several tensors counted once), measured after each node ran.
  std::size_t peak_bytes = 0;
  int64_t nodes_run = 0;
};

class Interpreter {
 public:
  using TensorMap = std::map<std::string, Tensor>;

  // Validates and plans `model` (a copy is kept; copying a Model shares its tensor storage).
  // Throws Error(unsupported) naming the op, domain, opset and node for anything not implemented
  // (ops, attribute settings, default opset outside 11..21); Error(model_format) for structural
  // problems (an input nobody produces, a cycle, duplicate value names, wrong input/output
  // counts, initializers whose byte size does not match their shape).
  explicit Interpreter(const onnx::Model& model);

  // Runs the graph. `inputs` holds every graph input that is not an initializer (an initializer
  // that is also a graph input may be overridden), with the declared element type and, where the
  // model fixes them, rank and dims; otherwise Error(invalid_argument) naming the input. Returns
  // the graph outputs by name. Errors from an op are rethrown as "node '<name>' (<op>): ..." with
  // the op's error code (runtime for shape/type mismatches). If `stats` is non-null it receives
  // memory figures (costs a scan of the live values after each node).
  TensorMap run(const TensorMap& inputs, RunStats* stats = nullptr) const;

  // The graph inputs a caller must provide (initializers excluded) and the graph outputs.
  const std::vector<onnx::ValueInfo>& inputs() const noexcept { return inputs_; }
  const std::vector<onnx::ValueInfo>& outputs() const noexcept { return model_.graph.outputs; }
  // Nodes in execution order (for tests and debugging).
  std::vector<std::string> execution_order() const;

 private:
  struct Step {
    std::size_t node = 0;      // index in model_.graph.nodes
    const OpSpec* spec = nullptr;
    int64_t opset = 0;
    std::vector<int> inputs;   // slot per node input, -1 for an omitted optional input
    std::vector<int> outputs;  // slot per node output, -1 for an omitted optional output
    std::vector<int> release;  // slots whose last reader is this step
  };

  void plan_values();
  void plan_steps();
  void plan_releases();
  int slot(const std::string& name) const;

  onnx::Model model_;
  std::vector<onnx::ValueInfo> inputs_;
  std::map<std::string, int> slots_;     // value name -> slot
  std::vector<Tensor> weights_;          // per slot: the initializer view, or undefined
  std::vector<bool> is_output_;          // per slot: a graph output (never released)
  std::vector<Step> steps_;
};

// "node '<name>' (<domain>:<op>)" for messages; the node's index when it has no name.
std::string describe_node(const onnx::Node& node, std::size_t index);

}  // namespace leanembed::interp
