#include "runtime/encoder/graph_query.h"

#include <cstring>
#include <memory>

#include "core/float16.h"

namespace leanembed::runtime::encoder {

void not_recognised(const std::string& reason) { throw NotRecognised(reason); }

std::string dims_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + (dims[i] < 0 ? std::string("?") : std::to_string(dims[i]));
  return s + "]";
}

bool is_default_domain(const onnx::Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }

std::string to_string(const SymShape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    switch (shape[i].kind) {
      case SymDim::Kind::batch: s += "B"; break;
      case SymDim::Kind::seq: s += "L"; break;
      case SymDim::Kind::number: s += std::to_string(shape[i].value); break;
    }
  }
  return s + "]";
}

namespace {

// Element i of a tensor as T, read with memcpy (the bytes may be misaligned).
template <class T>
T element(const onnx::TensorData& t, std::size_t i) {
  T v;
  std::memcpy(&v, t.bytes.data() + i * sizeof(T), sizeof(T));
  return v;
}

onnx::TensorData owned_tensor(const std::string& name, onnx::DataType dtype, std::vector<int64_t> dims,
                              const void* data, std::size_t bytes) {
  auto storage = std::make_shared<std::vector<std::byte>>(bytes);
  if (bytes) std::memcpy(storage->data(), data, bytes);
  onnx::TensorData t;
  t.name = name;
  t.dtype = dtype;
  t.dims = std::move(dims);
  t.bytes = {storage->data(), storage->size()};
  t.owner = storage;
  return t;
}

}  // namespace

GraphIndex::GraphIndex(const onnx::Graph& graph) : graph_(graph) {
  for (const auto& t : graph.initializers) constants_[t.name] = &t;
  for (const auto& in : graph.inputs) inputs_[in.name] = &in;
  for (const auto& node : graph.nodes) {
    for (const auto& out : node.outputs)
      if (!out.empty()) producers_[out] = &node;
    if (node.op_type != "Constant" || !is_default_domain(node) || node.outputs.empty()) continue;
    const std::string& out = node.outputs[0];
    for (const auto& a : node.attributes) {
      if (a.name == "value" && a.type == onnx::AttributeType::tensor) {
        constants_[out] = &a.t;
      } else if (a.name == "value_float") {
        synthesized_.push_back(owned_tensor(out, onnx::DataType::float32, {}, &a.f, sizeof(float)));
        constants_[out] = &synthesized_.back();
      } else if (a.name == "value_floats") {
        synthesized_.push_back(owned_tensor(out, onnx::DataType::float32, {int64_t(a.floats.size())},
                                            a.floats.data(), a.floats.size() * sizeof(float)));
        constants_[out] = &synthesized_.back();
      } else if (a.name == "value_int") {
        synthesized_.push_back(owned_tensor(out, onnx::DataType::int64, {}, &a.i, sizeof(int64_t)));
        constants_[out] = &synthesized_.back();
      } else if (a.name == "value_ints") {
        synthesized_.push_back(owned_tensor(out, onnx::DataType::int64, {int64_t(a.ints.size())},
                                            a.ints.data(), a.ints.size() * sizeof(int64_t)));
        constants_[out] = &synthesized_.back();
      }
    }
  }
}

const onnx::Node* GraphIndex::producer(const std::string& value) const {
  auto it = producers_.find(value);
  return it == producers_.end() ? nullptr : it->second;
}

const onnx::TensorData* GraphIndex::constant(const std::string& value) const {
  auto it = constants_.find(value);
  return it == constants_.end() ? nullptr : it->second;
}

bool GraphIndex::is_initializer(const std::string& value) const {
  return graph_.initializer(value) != nullptr;
}

bool GraphIndex::is_graph_input(const std::string& value) const {
  return inputs_.count(value) != 0 && !is_initializer(value);
}

const onnx::ValueInfo* GraphIndex::graph_input(const std::string& value) const {
  if (!is_graph_input(value)) return nullptr;
  return inputs_.at(value);
}

std::string GraphIndex::describe(const onnx::Node& node) {
  std::string s = node.domain.empty() || node.domain == "ai.onnx" ? "" : node.domain + " ";
  s += node.op_type + " node '" + node.name + "'";
  if (!node.outputs.empty()) s += " (output '" + node.outputs[0] + "')";
  return s;
}

std::string GraphIndex::describe_value(const std::string& value) const {
  if (const onnx::Node* n = producer(value)) return describe(*n);
  if (is_initializer(value)) return "initializer '" + value + "'";
  if (is_graph_input(value)) return "graph input '" + value + "'";
  return "value '" + value + "'";
}

std::optional<std::vector<int64_t>> GraphIndex::constant_ints(const std::string& value) const {
  const onnx::TensorData* t = constant(value);
  if (!t) return std::nullopt;
  std::size_t n = static_cast<std::size_t>(t->numel());
  std::vector<int64_t> v(n);
  if (t->dtype == onnx::DataType::int64 && t->bytes.size() == n * 8) {
    for (std::size_t i = 0; i < n; ++i) v[i] = element<int64_t>(*t, i);
  } else if (t->dtype == onnx::DataType::int32 && t->bytes.size() == n * 4) {
    for (std::size_t i = 0; i < n; ++i) v[i] = element<int32_t>(*t, i);
  } else {
    return std::nullopt;
  }
  return v;
}

std::optional<double> GraphIndex::constant_scalar(const std::string& value) const {
  const onnx::TensorData* t = constant(value);
  if (!t || t->numel() != 1) return std::nullopt;
  if (t->dtype == onnx::DataType::float32 && t->bytes.size() == 4) return element<float>(*t, 0);
  if (t->dtype == onnx::DataType::float64 && t->bytes.size() == 8) return element<double>(*t, 0);
  if (t->dtype == onnx::DataType::float16 && t->bytes.size() == 2) return half_to_float(element<uint16_t>(*t, 0));
  return std::nullopt;
}

const SymShape* GraphIndex::shape(const std::string& value) const {
  auto it = shapes_.find(value);
  return it == shapes_.end() ? nullptr : &it->second;
}

// Axes of an Unsqueeze: the `axes` input (opset >= 13) or attribute (older opsets).
static std::optional<std::vector<int64_t>> unsqueeze_axes(const GraphIndex& g, const onnx::Node& n) {
  if (n.inputs.size() >= 2 && !n.inputs[1].empty()) return g.constant_ints(n.inputs[1]);
  if (const onnx::Attribute* a = n.attribute("axes")) return a->ints;
  return std::nullopt;
}

SymShape GraphIndex::eval_shape_vector(const std::string& value, const std::string& role) const {
  if (auto ints = constant_ints(value)) {
    const onnx::TensorData* t = constant(value);
    if (t->dims.size() > 1) not_recognised(role + ": constant '" + value + "' is not a vector");
    SymShape s;
    for (int64_t v : *ints) s.push_back(SymDim::number(v));
    return s;
  }
  const onnx::Node* n = producer(value);
  if (!n || !is_default_domain(*n))
    not_recognised(role + ": expected a shape computed by Shape/Gather/Unsqueeze/Concat, found " +
                   describe_value(value));
  if (n->op_type == "Shape") {
    if (n->attribute("start") || n->attribute("end"))
      not_recognised(role + ": " + describe(*n) + " has start/end attributes, which are not recognised");
    const SymShape* s = shape(n->inputs.at(0));
    if (!s)
      not_recognised(role + ": " + describe(*n) + " reads the shape of '" + n->inputs.at(0) +
                     "', whose shape the recognizer does not know");
    return *s;
  }
  if (n->op_type == "Concat") {
    const onnx::Attribute* axis = n->attribute("axis");
    if (!axis || (axis->i != 0 && axis->i != -1))
      not_recognised(role + ": " + describe(*n) + " should concatenate along axis 0");
    SymShape s;
    for (const auto& in : n->inputs) {
      SymShape part = eval_shape_vector(in, role);
      s.insert(s.end(), part.begin(), part.end());
    }
    return s;
  }
  if (n->op_type == "Unsqueeze") {
    auto axes = unsqueeze_axes(*this, *n);
    if (!axes || axes->size() != 1 || ((*axes)[0] != 0 && (*axes)[0] != -1))
      not_recognised(role + ": " + describe(*n) + " should turn a scalar into a vector (axes [0])");
    return {eval_shape_scalar(n->inputs.at(0), role)};
  }
  not_recognised(role + ": expected a shape computed by Shape/Gather/Unsqueeze/Concat, found " + describe(*n));
}

SymDim GraphIndex::eval_shape_scalar(const std::string& value, const std::string& role) const {
  if (auto ints = constant_ints(value)) {
    if (ints->size() != 1) not_recognised(role + ": constant '" + value + "' should have one element");
    return SymDim::number((*ints)[0]);
  }
  const onnx::Node* n = producer(value);
  if (!n || !is_default_domain(*n) || n->op_type != "Gather")
    not_recognised(role + ": expected Gather(Shape(x), i), found " + describe_value(value));
  const onnx::Attribute* axis = n->attribute("axis");
  if (axis && axis->i != 0) not_recognised(role + ": " + describe(*n) + " should gather along axis 0");
  auto index = constant_ints(n->inputs.at(1));
  const onnx::TensorData* index_tensor = constant(n->inputs.at(1));
  if (!index || index->size() != 1 || !index_tensor->dims.empty())
    not_recognised(role + ": " + describe(*n) + " should take a constant scalar index");
  SymShape vec = eval_shape_vector(n->inputs.at(0), role);
  int64_t i = (*index)[0];
  if (i < 0) i += static_cast<int64_t>(vec.size());
  if (i < 0 || i >= static_cast<int64_t>(vec.size()))
    not_recognised(role + ": " + describe(*n) + " index out of range of " + to_string(vec));
  return vec[static_cast<std::size_t>(i)];
}

namespace {
// A product of symbolic dims: B^b * L^l * c.
struct Monomial {
  int b = 0, l = 0;
  int64_t c = 1;
};
Monomial product(const SymShape& s) {
  Monomial m;
  for (const auto& d : s) {
    if (d.kind == SymDim::Kind::batch) ++m.b;
    else if (d.kind == SymDim::Kind::seq) ++m.l;
    else m.c *= d.value;
  }
  return m;
}
}  // namespace

SymShape reshape_result(const SymShape& in, const SymShape& target, bool allowzero, const std::string& where) {
  SymShape out = target;
  int infer = -1;
  for (std::size_t i = 0; i < target.size(); ++i) {
    const SymDim& d = target[i];
    if (d.kind != SymDim::Kind::number) continue;
    if (d.value == 0 && !allowzero) {
      if (i >= in.size()) not_recognised(where + ": target " + to_string(target) + " copies a missing dim");
      out[i] = in[i];
    } else if (d.value == -1) {
      if (infer >= 0) not_recognised(where + ": target " + to_string(target) + " has two -1");
      infer = static_cast<int>(i);
    } else if (d.value < 0) {
      not_recognised(where + ": target " + to_string(target) + " has a negative dim");
    }
  }
  Monomial whole = product(in);
  if (infer >= 0) {
    SymShape rest = out;
    rest.erase(rest.begin() + infer);
    Monomial known = product(rest);
    int b = whole.b - known.b, l = whole.l - known.l;
    if (known.c == 0 || whole.c % known.c != 0 || b < 0 || l < 0 || b + l > 1 ||
        (b + l == 1 && whole.c / known.c != 1))
      not_recognised(where + ": cannot infer the -1 of " + to_string(target) + " from input " + to_string(in));
    out[infer] = b ? SymDim::batch() : l ? SymDim::seq() : SymDim::number(whole.c / known.c);
  }
  Monomial result = product(out);
  if (result.b != whole.b || result.l != whole.l || result.c != whole.c)
    not_recognised(where + ": reshaping " + to_string(in) + " to " + to_string(out) + " changes the size");
  return out;
}

}  // namespace leanembed::runtime::encoder
