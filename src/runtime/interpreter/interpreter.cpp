#include "runtime/interpreter/interpreter.h"

#include "runtime/interpreter/cast.h"

#include <algorithm>
#include <limits>
#include <new>
#include <queue>
#include <set>
#include <unordered_set>

namespace leanembed::interp {

std::string describe_node(const onnx::Node& node, std::size_t index) {
  std::string s = node.name.empty() ? "node #" + std::to_string(index) : "node '" + node.name + "'";
  s += " (";
  const std::string domain = canonical_domain(node.domain);
  if (!domain.empty()) s += domain + ":";
  return s + node.op_type + ")";
}

namespace {

constexpr int kNoSlot = -1;

std::string default_domain_label(const std::string& domain) {
  const std::string d = canonical_domain(domain);
  return d.empty() ? "ai.onnx" : d;
}

}  // namespace

Interpreter::Interpreter(const onnx::Model& model) : model_(model) {
  const int64_t opset = std::max(model_.opset(""), model_.opset("ai.onnx"));
  if (opset < kMinDefaultOpset || opset > kMaxDefaultOpset)
    throw Error(ErrorCode::unsupported, (model_.path.empty() ? std::string("model") : "model " + model_.path) +
                                            ": default-domain opset " + std::to_string(opset) +
                                            " is outside the supported range " + std::to_string(kMinDefaultOpset) + ".." +
                                            std::to_string(kMaxDefaultOpset));
  plan_values();
  plan_steps();
  plan_releases();
}

int Interpreter::slot(const std::string& name) const {
  auto it = slots_.find(name);
  return it == slots_.end() ? kNoSlot : it->second;
}

// Slots for initializers and graph inputs; initializers become views of the model's storage.
void Interpreter::plan_values() {
  const onnx::Graph& g = model_.graph;
  auto add = [&](const std::string& name, const char* what) {
    if (name.empty()) throw Error(ErrorCode::model_format, std::string("model: a ") + what + " has an empty name");
    auto [it, inserted] = slots_.emplace(name, static_cast<int>(weights_.size()));
    if (!inserted) throw Error(ErrorCode::model_format, std::string("model: ") + what + " '" + name + "' is defined twice");
    weights_.emplace_back();
    return it->second;
  };
  for (const onnx::TensorData& t : g.initializers) {
    const int s = add(t.name, "initializer");
    try {
      weights_[static_cast<std::size_t>(s)] = Tensor::view(t);
    } catch (const Error& e) {
      throw Error(e.code() == ErrorCode::invalid_argument ? ErrorCode::model_format : e.code(),
                  std::string("model: ") + e.what());
    }
  }
  for (const onnx::ValueInfo& v : g.inputs) {
    if (slot(v.name) != kNoSlot) {
      if (!weights_[static_cast<std::size_t>(slot(v.name))].defined())
        throw Error(ErrorCode::model_format, "model: graph input '" + v.name + "' is declared twice");
      continue;  // an initializer that is also an input: it has a default, the caller may override it
    }
    add(v.name, "graph input");
    inputs_.push_back(v);
  }
}

// Looks every node up in the op table, checks its arity and attributes, gives its outputs slots,
// and orders the nodes topologically (file order among ready nodes).
void Interpreter::plan_steps() {
  const auto& nodes = model_.graph.nodes;
  std::vector<Step> unordered(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const onnx::Node& n = nodes[i];
    Step& step = unordered[i];
    step.node = i;
    const std::string domain = canonical_domain(n.domain);
    step.opset = domain.empty() ? std::max(model_.opset(""), model_.opset("ai.onnx")) : model_.opset(domain);
    if (!domain.empty() && step.opset == 0) step.opset = 1;  // domain used without an import: version 1
    step.spec = find_op(n.domain, n.op_type);
    if (step.spec == nullptr)
      throw Error(ErrorCode::unsupported, "unsupported op '" + n.op_type + "' of domain '" + default_domain_label(n.domain) +
                                              "' (opset " + std::to_string(step.opset) + ") in " + describe_node(n, i));
    if (step.opset < step.spec->min_opset)
      throw Error(ErrorCode::unsupported, "op '" + n.op_type + "' of domain '" + default_domain_label(n.domain) +
                                              "' is implemented from opset " + std::to_string(step.spec->min_opset) +
                                              ", the model imports opset " + std::to_string(step.opset) + " (" +
                                              describe_node(n, i) + ")");
    // Trailing "" entries are omitted optionals, not extra arguments.
    std::size_t n_in = n.inputs.size(), n_out = n.outputs.size();
    while (n_in > 0 && n.inputs[n_in - 1].empty()) --n_in;
    while (n_out > 0 && n.outputs[n_out - 1].empty()) --n_out;
    if (static_cast<int>(n_in) < step.spec->min_inputs || static_cast<int>(n_in) > step.spec->max_inputs ||
        static_cast<int>(n_out) < step.spec->min_outputs || static_cast<int>(n_out) > step.spec->max_outputs)
      throw Error(ErrorCode::model_format, describe_node(n, i) + " has " + std::to_string(n_in) + " inputs and " +
                                               std::to_string(n_out) + " outputs; the op takes " +
                                               std::to_string(step.spec->min_inputs) + ".." +
                                               std::to_string(step.spec->max_inputs) + " inputs and " +
                                               std::to_string(step.spec->min_outputs) + ".." +
                                               std::to_string(step.spec->max_outputs) + " outputs");
    for (const auto& a : n.attributes)
      if (a.type == onnx::AttributeType::graph || a.type == onnx::AttributeType::graphs)
        throw Error(ErrorCode::unsupported, describe_node(n, i) + ": subgraph attribute '" + a.name + "'");
    if (step.spec->check) {
      try {
        step.spec->check(n, step.opset);
      } catch (const Error& e) {
        throw Error(e.code(), describe_node(n, i) + ": " + e.what());
      }
    }
    for (const std::string& out : n.outputs) {
      if (out.empty()) {
        step.outputs.push_back(kNoSlot);
        continue;
      }
      if (slot(out) != kNoSlot)
        throw Error(ErrorCode::model_format, describe_node(n, i) + ": output '" + out +
                                                 "' is already produced by another node, an initializer or a graph input");
      slots_.emplace(out, static_cast<int>(weights_.size()));
      weights_.emplace_back();
      step.outputs.push_back(static_cast<int>(weights_.size()) - 1);
    }
  }
  // Producer of each slot (-1 for initializers and graph inputs), then Kahn's algorithm.
  std::vector<int> producer(weights_.size(), -1);
  for (std::size_t i = 0; i < unordered.size(); ++i)
    for (int s : unordered[i].outputs)
      if (s != kNoSlot) producer[static_cast<std::size_t>(s)] = static_cast<int>(i);
  std::vector<std::vector<std::size_t>> readers(nodes.size());
  std::vector<int> waiting(nodes.size(), 0);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    std::set<int> deps;
    for (const std::string& in : nodes[i].inputs) {
      if (in.empty()) {
        unordered[i].inputs.push_back(kNoSlot);
        continue;
      }
      const int s = slot(in);
      if (s == kNoSlot)
        throw Error(ErrorCode::model_format, describe_node(nodes[i], i) + ": input '" + in +
                                                 "' is not produced by any node, initializer or graph input");
      unordered[i].inputs.push_back(s);
      const int p = producer[static_cast<std::size_t>(s)];
      if (p >= 0 && deps.insert(p).second) {
        readers[static_cast<std::size_t>(p)].push_back(i);
        ++waiting[i];
      }
    }
  }
  std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> ready;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (waiting[i] == 0) ready.push(i);
  while (!ready.empty()) {
    const std::size_t i = ready.top();
    ready.pop();
    steps_.push_back(std::move(unordered[i]));
    for (std::size_t r : readers[i])
      if (--waiting[r] == 0) ready.push(r);
  }
  if (steps_.size() != nodes.size()) {
    for (std::size_t i = 0; i < nodes.size(); ++i)
      if (waiting[i] > 0)
        throw Error(ErrorCode::model_format, "model: the graph has a cycle through " + describe_node(nodes[i], i));
  }
  is_output_.assign(weights_.size(), false);
  for (const onnx::ValueInfo& o : model_.graph.outputs) {
    const int s = slot(o.name);
    if (s == kNoSlot)
      throw Error(ErrorCode::model_format, "model: graph output '" + o.name + "' is not produced by any node or input");
    is_output_[static_cast<std::size_t>(s)] = true;
  }
}

// Each value that is neither a weight nor a graph output is released by the last step that reads
// it, or by the step that makes it if nobody reads it.
void Interpreter::plan_releases() {
  std::vector<int> last(weights_.size(), -1);
  for (std::size_t i = 0; i < steps_.size(); ++i) {
    for (int s : steps_[i].outputs)
      if (s != kNoSlot) last[static_cast<std::size_t>(s)] = static_cast<int>(i);
    for (int s : steps_[i].inputs)
      if (s != kNoSlot) last[static_cast<std::size_t>(s)] = static_cast<int>(i);
  }
  for (std::size_t s = 0; s < weights_.size(); ++s) {
    if (is_output_[s] || weights_[s].defined() || last[s] < 0) continue;
    steps_[static_cast<std::size_t>(last[s])].release.push_back(static_cast<int>(s));
  }
}

std::vector<std::string> Interpreter::execution_order() const {
  std::vector<std::string> names;
  for (const Step& s : steps_) names.push_back(model_.graph.nodes[s.node].name);
  return names;
}

namespace {

void check_input(const onnx::ValueInfo& info, const Tensor& t) {
  if (!t.defined()) throw Error(ErrorCode::invalid_argument, "input '" + info.name + "' is an empty Tensor");
  if (info.elem_type != DataType::undefined && t.dtype() != info.elem_type)
    throw Error(ErrorCode::invalid_argument, "input '" + info.name + "' should be " + dtype_name(info.elem_type) +
                                                 ", found " + dtype_name(t.dtype()));
  if (!info.has_shape) return;
  bool fits = t.rank() == static_cast<int64_t>(info.shape.size());
  for (std::size_t d = 0; fits && d < info.shape.size(); ++d)
    fits = info.shape[d].value < 0 || info.shape[d].value == t.dim(static_cast<int64_t>(d));
  if (!fits) {
    std::string declared = "[";
    for (std::size_t d = 0; d < info.shape.size(); ++d) {
      if (d) declared += ", ";
      declared += info.shape[d].value >= 0 ? std::to_string(info.shape[d].value)
                                            : (info.shape[d].param.empty() ? "?" : info.shape[d].param);
    }
    throw Error(ErrorCode::invalid_argument, "input '" + info.name + "' has shape " + shape_string(t.shape()) +
                                                 ", the model declares " + declared + "]");
  }
}

std::size_t live_bytes(const std::vector<Tensor>& values, const std::vector<Tensor>& weights) {
  std::unordered_set<const void*> seen;
  std::size_t total = 0;
  for (std::size_t s = 0; s < values.size(); ++s) {
    const Tensor& t = values[s];
    if (!t.defined() || weights[s].defined()) continue;
    if (t.storage_id() != nullptr && !seen.insert(t.storage_id()).second) continue;
    total += t.byte_size();
  }
  return total;
}

bool is_narrow_float(DataType t) { return t == DataType::float16 || t == DataType::bfloat16; }

// Runs an op whose float16/bfloat16 inputs are widened to float32 and whose `narrow_outputs` are
// rounded back (see OpSpec::promote_narrow_floats). Other inputs and ops pass straight through.
void run_promoted(const OpSpec& spec, OpContext& ctx) {
  DataType narrow = DataType::undefined;
  for (const Tensor* t : ctx.inputs)
    if (t && is_narrow_float(t->dtype())) narrow = t->dtype();
  if (narrow == DataType::undefined) return spec.run(ctx);
  std::vector<Tensor> widened(ctx.inputs.size());
  const std::vector<const Tensor*> original = ctx.inputs;
  for (std::size_t i = 0; i < ctx.inputs.size(); ++i) {
    if (!ctx.inputs[i] || !is_narrow_float(ctx.inputs[i]->dtype())) continue;
    if (ctx.inputs[i]->dtype() != narrow)
      throw Error(ErrorCode::runtime, "inputs mix float16 and bfloat16");
    widened[i] = cast_tensor(*ctx.inputs[i], DataType::float32);
    ctx.inputs[i] = &widened[i];
  }
  spec.run(ctx);
  ctx.inputs = original;
  for (std::size_t o = 0; o < ctx.outputs.size() && o < 32; ++o)
    if ((spec.narrow_outputs >> o & 1u) && ctx.outputs[o].defined() && ctx.outputs[o].dtype() == DataType::float32)
      ctx.outputs[o] = cast_tensor(ctx.outputs[o], narrow);
}

}  // namespace

Interpreter::TensorMap Interpreter::run(const TensorMap& inputs, RunStats* stats) const {
  std::vector<Tensor> values = weights_;
  for (const auto& [name, tensor] : inputs) {
    const int s = slot(name);
    const onnx::ValueInfo* info = nullptr;
    for (const auto& v : model_.graph.inputs)
      if (v.name == name) info = &v;
    if (s == kNoSlot || info == nullptr) {
      std::string known;
      for (const auto& v : inputs_) known += (known.empty() ? "" : ", ") + v.name;
      throw Error(ErrorCode::invalid_argument, "'" + name + "' is not an input of the model (inputs: " + known + ")");
    }
    check_input(*info, tensor);
    values[static_cast<std::size_t>(s)] = tensor;
  }
  for (const auto& v : inputs_)
    if (!values[static_cast<std::size_t>(slot(v.name))].defined())
      throw Error(ErrorCode::invalid_argument, "input '" + v.name + "' is missing");

  RunStats local;
  for (const Step& step : steps_) {
    const onnx::Node& node = model_.graph.nodes[step.node];
    OpContext ctx{node, step.opset, {}, {}};
    for (int s : step.inputs) {
      if (s == kNoSlot) {
        ctx.inputs.push_back(nullptr);
        continue;
      }
      const Tensor& t = values[static_cast<std::size_t>(s)];
      if (!t.defined())  // an optional output of an earlier node that it did not produce
        throw Error(ErrorCode::runtime, describe_node(node, step.node) + ": input '" +
                                            node.inputs[ctx.inputs.size()] + "' has no value");
      ctx.inputs.push_back(&t);
    }
    ctx.outputs.resize(step.outputs.size());
    try {
      if (step.spec->promote_narrow_floats) run_promoted(*step.spec, ctx);
      else step.spec->run(ctx);
    } catch (const Error& e) {
      throw Error(e.code(), describe_node(node, step.node) + ": " + e.what());
    } catch (const std::bad_alloc&) {
      throw Error(ErrorCode::out_of_memory, describe_node(node, step.node) + ": out of memory");
    }
    for (std::size_t o = 0; o < step.outputs.size(); ++o) {
      if (step.outputs[o] == kNoSlot) continue;
      if (!ctx.outputs[o].defined())
        throw Error(ErrorCode::runtime, describe_node(node, step.node) + ": produced no value for output '" +
                                            node.outputs[o] + "'");
      values[static_cast<std::size_t>(step.outputs[o])] = std::move(ctx.outputs[o]);
    }
    if (stats) {
      local.peak_bytes = std::max(local.peak_bytes, live_bytes(values, weights_));
      ++local.nodes_run;
    }
    for (int s : step.release) values[static_cast<std::size_t>(s)] = Tensor();
  }
  if (stats) *stats = local;

  TensorMap out;
  for (const onnx::ValueInfo& o : model_.graph.outputs) out[o.name] = values[static_cast<std::size_t>(slot(o.name))];
  return out;
}

}  // namespace leanembed::interp
