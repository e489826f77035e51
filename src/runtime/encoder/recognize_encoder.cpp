// The recognizer walks the graph backwards from its output: the last LayerNorm, then layer by
// layer (FFN, attention) down to the embeddings. Each step names what it expects, so a graph that
// differs anywhere gives a reason pointing at the node.
#include "runtime/encoder/recognize_encoder.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>
#include <utility>

#include "leanembed/error.h"
#include "runtime/encoder/graph_query.h"

namespace leanembed::runtime::encoder {
namespace {

bool is_default_domain(const onnx::Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }

std::string dims_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + (dims[i] < 0 ? std::string("?") : std::to_string(dims[i]));
  return s + "]";
}

bool close_to(double v, double expected, double rel = 1e-6) {
  return std::fabs(v - expected) <= rel * std::fabs(expected);
}

struct LayerNormMatch {
  std::string input;
  LayerNormWeights weights;
};

struct LinearMatch {
  std::string input;
  LinearWeights weights;
};

class Matcher {
 public:
  explicit Matcher(const onnx::Model& model) : model_(model), g_(model.graph) {}

  EncoderWeights run();

 private:
  const onnx::Node& node_of(const std::string& value, const char* op, const std::string& role) const;
  std::pair<std::string, std::string> split_constant(const onnx::Node& n, const std::string& role) const;
  const onnx::TensorData& float_constant(const std::string& value, const std::vector<int64_t>& dims,
                                         const std::string& role, std::vector<int64_t>* actual);
  void keep_owner(const onnx::TensorData& t);
  UnalignedFloatView take_matrix(const std::string& value, const std::vector<int64_t>& dims, const std::string& role,
                                 std::vector<int64_t>* actual = nullptr);
  AlignedFloatView take_vector(const std::string& value, const std::vector<int64_t>& dims, const std::string& role);
  float take_scalar(const std::string& value, const std::string& role) const;
  void check_reduce_mean(const onnx::Node& n, const std::string& role) const;

  LayerNormMatch match_layer_norm(const std::string& out, const std::string& role);
  bool is_linear(const std::string& value) const;
  std::pair<std::string, std::string> linear_and_residual(const onnx::Node& add, const std::string& role);
  bool is_embedding_sum(const std::string& value, int depth) const;
  LinearMatch match_linear(const std::string& out, int64_t in, int64_t out_dim, const std::string& role);
  std::string match_gelu(const std::string& out, const std::string& role);
  void match_mask(const std::string& mask, const std::string& role);
  std::string match_attention(const std::string& ctx, EncoderLayerWeights& layer, const std::string& role);
  std::string match_layer(const LayerNormMatch& output_norm, EncoderLayerWeights& layer);
  void match_embeddings(const LayerNormMatch& norm);
  void match_position_ids(const std::string& ids);

  const onnx::Model& model_;
  GraphIndex g_;
  EncoderWeights w_;
  int64_t hidden_ = 0;
  std::string mask_value_;  // the mask value already verified
  std::set<const void*> owner_set_;
};

const onnx::Node& Matcher::node_of(const std::string& value, const char* op, const std::string& role) const {
  const onnx::Node* n = g_.producer(value);
  if (!n) not_recognised(role + ": expected a " + op + " node, found " + g_.describe_value(value));
  if (!is_default_domain(*n))
    not_recognised(role + ": expected a " + op + " node, found " + GraphIndex::describe(*n) +
                   " (operators of domain '" + n->domain +
                   "', e.g. ONNX Runtime's fused SkipLayerNormalization/BiasGelu/FusedMatMul, are not recognised)");
  if (n->op_type != op)
    not_recognised(role + ": expected a " + op + " node, found " + GraphIndex::describe(*n));
  const std::string o = op;
  const std::size_t needed = (o == "Slice" || o == "Range") ? 3
                             : (o == "MatMul" || o == "Add" || o == "Mul" || o == "Div" || o == "Sub" ||
                                o == "Pow" || o == "Reshape" || o == "Gather") ? 2 : 1;
  if (n->inputs.size() < needed)
    not_recognised(role + ": " + GraphIndex::describe(*n) + " has " + std::to_string(n->inputs.size()) +
                   " inputs, expected " + std::to_string(needed));
  return *n;
}

// For a binary node with exactly one constant input: (constant, other).
std::pair<std::string, std::string> Matcher::split_constant(const onnx::Node& n, const std::string& role) const {
  if (n.inputs.size() != 2) not_recognised(role + ": " + GraphIndex::describe(n) + " should have 2 inputs");
  bool c0 = g_.constant(n.inputs[0]) != nullptr, c1 = g_.constant(n.inputs[1]) != nullptr;
  if (c0 == c1)
    not_recognised(role + ": " + GraphIndex::describe(n) + " should have exactly one constant input, found " +
                   (c0 ? "two" : "none"));
  return c0 ? std::pair{n.inputs[0], n.inputs[1]} : std::pair{n.inputs[1], n.inputs[0]};
}

// The fp32 initializer `value`, checked against `dims` (-1 = any) and its byte size.
const onnx::TensorData& Matcher::float_constant(const std::string& value, const std::vector<int64_t>& dims,
                                                const std::string& role, std::vector<int64_t>* actual) {
  const onnx::TensorData* t = g_.constant(value);
  if (!t)
    not_recognised(role + ": expected an fp32 weight initializer, found " + g_.describe_value(value) +
                   " (quantized and fp16 models are not recognised)");
  if (t->dtype != onnx::DataType::float32)
    not_recognised(role + ": weight '" + value + "' is " + onnx::data_type_name(t->dtype) +
                   ", only fp32 weights are recognised");
  bool ok = t->dims.size() == dims.size();
  for (std::size_t i = 0; ok && i < dims.size(); ++i) ok = dims[i] < 0 || dims[i] == t->dims[i];
  if (!ok) not_recognised(role + ": weight '" + value + "' has shape " + dims_text(t->dims) + ", expected " + dims_text(dims));
  if (actual) *actual = t->dims;
  if (t->bytes.size() != static_cast<std::size_t>(t->numel()) * sizeof(float))
    not_recognised(role + ": weight '" + value + "' has a wrong byte size");
  w_.weight_bytes += t->bytes.size();
  return *t;
}

void Matcher::keep_owner(const onnx::TensorData& t) {
  if (t.owner && owner_set_.insert(t.owner.get()).second) w_.owners.push_back(t.owner);
}

// A matrix or table: always a view of the tensor's bytes, whatever their alignment (never copied).
UnalignedFloatView Matcher::take_matrix(const std::string& value, const std::vector<int64_t>& dims,
                                        const std::string& role, std::vector<int64_t>* actual) {
  const onnx::TensorData& t = float_constant(value, dims, role, actual);
  keep_owner(t);
  return {t.bytes.data(), t.numel()};
}

// A small vector the row kernels read as float*: a view if aligned, else a 64-byte-aligned copy
// (only with ReadOptions::copy_misaligned = false), counted in bytes_copied.
AlignedFloatView Matcher::take_vector(const std::string& value, const std::vector<int64_t>& dims,
                                      const std::string& role) {
  const onnx::TensorData& t = float_constant(value, dims, role, nullptr);
  AlignedFloatView view;
  view.size = t.numel();
  if (t.aligned()) {
    view.data = t.as<float>().data();
    keep_owner(t);
    return view;
  }
  const std::size_t n = t.bytes.size();
  const std::size_t rounded = (n + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p) throw std::bad_alloc();
  std::memcpy(p, t.bytes.data(), n);
  w_.owners.push_back(std::shared_ptr<const void>(p, [](const void* q) { std::free(const_cast<void*>(q)); }));
  w_.bytes_copied += n;
  view.data = static_cast<const float*>(p);
  return view;
}

float Matcher::take_scalar(const std::string& value, const std::string& role) const {
  auto v = g_.constant_scalar(value);
  if (!v) not_recognised(role + ": expected a constant float scalar, found " + g_.describe_value(value));
  return static_cast<float>(*v);
}

void Matcher::check_reduce_mean(const onnx::Node& n, const std::string& role) const {
  std::vector<int64_t> axes;
  if (n.inputs.size() >= 2 && !n.inputs[1].empty()) {
    auto a = g_.constant_ints(n.inputs[1]);
    if (!a) not_recognised(role + ": " + GraphIndex::describe(n) + " has non-constant axes");
    axes = *a;
  } else if (const onnx::Attribute* a = n.attribute("axes")) {
    axes = a->ints;
  }
  const onnx::Attribute* keep = n.attribute("keepdims");
  if (axes.size() != 1 || (axes[0] != -1 && axes[0] != 2) || (keep && keep->i != 1))
    not_recognised(role + ": " + GraphIndex::describe(n) + " should average over the last axis keeping dims");
}

LayerNormMatch Matcher::match_layer_norm(const std::string& out, const std::string& role) {
  const onnx::Node* n = g_.producer(out);
  LayerNormMatch m;
  std::vector<int64_t> hidden_dims{hidden_ > 0 ? hidden_ : -1};
  if (n && is_default_domain(*n) && n->op_type == "LayerNormalization") {
    if (n->inputs.size() < 3 || n->inputs[2].empty())
      not_recognised(role + ": " + GraphIndex::describe(*n) + " has no bias input");
    const onnx::Attribute* axis = n->attribute("axis");
    if (axis && axis->i != -1 && axis->i != 2)
      not_recognised(role + ": " + GraphIndex::describe(*n) + " should normalise over the last axis");
    for (std::size_t i = 1; i < n->outputs.size(); ++i)
      if (!n->outputs[i].empty())
        not_recognised(role + ": " + GraphIndex::describe(*n) + " has Mean/InvStdDev outputs, not recognised");
    const onnx::Attribute* eps = n->attribute("epsilon");
    m.weights.eps = eps ? eps->f : 1e-5f;
    m.weights.gamma = take_vector(n->inputs[1], hidden_dims, role + " scale");
    if (hidden_ == 0) hidden_ = m.weights.gamma.size;
    m.weights.beta = take_vector(n->inputs[2], {hidden_}, role + " bias");
    m.input = n->inputs[0];
    return m;
  }
  // Decomposed: Add(Mul(Div(Sub(x, ReduceMean(x)), Sqrt(Add(ReduceMean(Pow(Sub, 2)), eps))), gamma), beta).
  const std::string where = role + " (LayerNormalization or its decomposed form ending in Add)";
  const onnx::Node& add_beta = node_of(out, "Add", where);
  auto [beta, scaled] = split_constant(add_beta, where);
  const onnx::Node& mul_gamma = node_of(scaled, "Mul", role + " (LayerNorm scale)");
  auto [gamma, normed] = split_constant(mul_gamma, role + " (LayerNorm scale)");
  const onnx::Node& div = node_of(normed, "Div", role + " (LayerNorm division by the deviation)");
  const onnx::Node& sqrt = node_of(div.inputs.at(1), "Sqrt", role + " (LayerNorm deviation)");
  const onnx::Node& add_eps = node_of(sqrt.inputs.at(0), "Add", role + " (LayerNorm variance + eps)");
  auto [eps, variance] = split_constant(add_eps, role + " (LayerNorm variance + eps)");
  const onnx::Node& mean_sq = node_of(variance, "ReduceMean", role + " (LayerNorm variance)");
  check_reduce_mean(mean_sq, role);
  const onnx::Node& pow = node_of(mean_sq.inputs.at(0), "Pow", role + " (LayerNorm squared deviation)");
  if (pow.inputs.size() != 2 || pow.inputs[0] != div.inputs[0])
    not_recognised(role + ": " + GraphIndex::describe(pow) + " should square the Div's numerator '" + div.inputs[0] + "'");
  if (take_scalar(pow.inputs[1], role + " (Pow exponent)") != 2.0f)
    not_recognised(role + ": " + GraphIndex::describe(pow) + " should have exponent 2");
  const onnx::Node& sub = node_of(div.inputs[0], "Sub", role + " (LayerNorm centring)");
  const onnx::Node& mean = node_of(sub.inputs.at(1), "ReduceMean", role + " (LayerNorm mean)");
  check_reduce_mean(mean, role);
  if (mean.inputs.at(0) != sub.inputs.at(0))
    not_recognised(role + ": " + GraphIndex::describe(mean) + " should average the Sub's input '" + sub.inputs[0] + "'");
  m.weights.eps = take_scalar(eps, role + " (LayerNorm eps)");
  if (!(m.weights.eps >= 0.0f)) not_recognised(role + ": LayerNorm eps is negative");
  m.weights.gamma = take_vector(gamma, hidden_dims, role + " scale");
  if (hidden_ == 0) hidden_ = m.weights.gamma.size;
  m.weights.beta = take_vector(beta, {hidden_}, role + " bias");
  m.input = sub.inputs[0];
  return m;
}

bool Matcher::is_embedding_sum(const std::string& value, int depth) const {
  const onnx::Node* n = g_.producer(value);
  if (!n || !is_default_domain(*n) || depth > 4) return false;
  if (n->op_type == "Gather") return depth > 0;
  if (n->op_type != "Add" || n->inputs.size() != 2) return false;
  return is_embedding_sum(n->inputs[0], depth + 1) && is_embedding_sum(n->inputs[1], depth + 1);
}

bool Matcher::is_linear(const std::string& value) const {
  const onnx::Node* add = g_.producer(value);
  if (!add || !is_default_domain(*add) || add->op_type != "Add" || add->inputs.size() != 2) return false;
  for (int i = 0; i < 2; ++i) {
    const onnx::Node* mm = g_.producer(add->inputs[i]);
    if (g_.constant(add->inputs[1 - i]) && mm && mm->op_type == "MatMul" && mm->inputs.size() == 2 &&
        g_.constant(mm->inputs[1]))
      return true;
  }
  return false;
}

LinearMatch Matcher::match_linear(const std::string& out, int64_t in, int64_t out_dim, const std::string& role) {
  const onnx::Node& add = node_of(out, "Add", role + " (bias Add of a linear layer)");
  auto [bias, product] = split_constant(add, role + " (bias Add of a linear layer)");
  const onnx::Node& mm = node_of(product, "MatMul", role + " (MatMul of a linear layer)");
  if (mm.inputs.size() != 2 || g_.constant(mm.inputs[0]))
    not_recognised(role + ": " + GraphIndex::describe(mm) + " should multiply activations by a weight");
  LinearMatch m;
  std::vector<int64_t> dims;
  m.weights.weight = take_matrix(mm.inputs[1], {in, out_dim}, role + " weight", &dims);
  m.weights.in = dims[0];
  m.weights.out = dims[1];
  m.weights.bias = take_vector(bias, {m.weights.out}, role + " bias");
  m.input = mm.inputs[0];
  return m;
}

std::string Matcher::match_gelu(const std::string& out, const std::string& role) {
  const std::string expected = role + ": expected GELU in its erf form 0.5 * x * (1 + erf(x / sqrt(2)))";
  const onnx::Node* top = g_.producer(out);
  if (!top || !is_default_domain(*top) || top->op_type != "Mul")
    not_recognised(expected + ", found " + g_.describe_value(out));
  // The product's factors, whatever the nesting of the Muls.
  std::vector<std::string> factors;
  std::vector<std::string> stack{out};
  while (!stack.empty()) {
    std::string v = stack.back();
    stack.pop_back();
    const onnx::Node* n = g_.producer(v);
    if (n && is_default_domain(*n) && n->op_type == "Mul" && n->inputs.size() == 2 && factors.size() < 8) {
      stack.push_back(n->inputs[1]);
      stack.push_back(n->inputs[0]);
    } else {
      factors.push_back(v);
    }
  }
  std::string half, erf_part, x;
  for (const auto& f : factors) {
    const onnx::Node* n = g_.producer(f);
    bool is_erf_sum = false;
    if (n && is_default_domain(*n) && n->op_type == "Add" && n->inputs.size() == 2)
      for (const auto& in : n->inputs)
        if (const onnx::Node* e = g_.producer(in); e && e->op_type == "Erf") is_erf_sum = true;
    if (g_.constant(f) && half.empty()) half = f;
    else if (is_erf_sum && erf_part.empty()) erf_part = f;
    else if (!g_.constant(f) && !is_erf_sum && x.empty()) x = f;
    else {
      std::string detail;  // e.g. 1 + tanh(...) where 1 + erf(...) belongs
      if (n && n->op_type == "Add" && n->inputs.size() == 2)
        for (const auto& in : n->inputs)
          if (!g_.constant(in)) detail += ", which adds " + g_.describe_value(in);
      not_recognised(expected + "; the product at " + g_.describe_value(out) + " has an unexpected factor " +
                     g_.describe_value(f) + detail);
    }
  }
  if (factors.size() != 3 || half.empty() || erf_part.empty() || x.empty())
    not_recognised(expected + "; the product at " + g_.describe_value(out) + " has " + std::to_string(factors.size()) +
                   " factors without the erf term");
  if (!close_to(take_scalar(half, role + " (GELU 0.5)"), 0.5))
    not_recognised(expected + "; the constant factor '" + half + "' is not 0.5");
  const onnx::Node& one_plus = node_of(erf_part, "Add", role + " (GELU 1 + erf)");
  auto [one, erf_out] = split_constant(one_plus, role + " (GELU 1 + erf)");
  if (!close_to(take_scalar(one, role + " (GELU 1)"), 1.0)) not_recognised(expected + "; '" + one + "' is not 1");
  const onnx::Node& erf = node_of(erf_out, "Erf", role + " (GELU erf)");
  const onnx::Node* arg = g_.producer(erf.inputs.at(0));
  if (!arg || !is_default_domain(*arg) || (arg->op_type != "Div" && arg->op_type != "Mul"))
    not_recognised(expected + "; erf's argument should be x / sqrt(2), found " + g_.describe_value(erf.inputs[0]));
  auto [c, erf_x] = split_constant(*arg, role + " (GELU x / sqrt(2))");
  double factor = take_scalar(c, role + " (GELU sqrt(2))");
  bool ok = arg->op_type == "Div" ? (arg->inputs[1] == c && close_to(factor, std::sqrt(2.0)))
                                  : close_to(factor, 1.0 / std::sqrt(2.0));
  if (!ok) not_recognised(expected + "; " + GraphIndex::describe(*arg) + " does not divide by sqrt(2)");
  if (erf_x != x) not_recognised(expected + "; erf is applied to '" + erf_x + "', not to the factor '" + x + "'");
  return x;
}

void Matcher::match_mask(const std::string& mask, const std::string& role) {
  if (mask == mask_value_) return;
  const std::string where = role + " (attention mask (1 - mask) * fill)";
  const onnx::Node& mul = node_of(mask, "Mul", where);
  auto [fill, inverted] = split_constant(mul, where);
  float fill_value = take_scalar(fill, where);
  if (!(fill_value <= -1e4f))
    not_recognised(where + ": the fill " + std::to_string(fill_value) + " is not a large negative number");
  const onnx::Node& sub = node_of(inverted, "Sub", where);
  if (sub.inputs.size() != 2 || !g_.constant(sub.inputs[0]) || take_scalar(sub.inputs[0], where) != 1.0f)
    not_recognised(where + ": " + GraphIndex::describe(sub) + " should compute 1 - mask");
  // Back through Unsqueeze/Cast to the graph input; the Unsqueezes must give [B, 1, 1, L].
  std::vector<std::vector<int64_t>> unsqueezes;
  int casts = 0;
  std::string v = sub.inputs[1];
  for (int guard = 0; guard < 8 && g_.producer(v); ++guard) {
    const onnx::Node& n = *g_.producer(v);
    if (is_default_domain(n) && n.op_type == "Cast") {
      const onnx::Attribute* to = n.attribute("to");
      if (!to || to->i != static_cast<int64_t>(onnx::DataType::float32))
        not_recognised(where + ": " + GraphIndex::describe(n) + " should cast to float");
      ++casts;
    } else if (is_default_domain(n) && n.op_type == "Unsqueeze") {
      std::vector<int64_t> axes;
      if (n.inputs.size() >= 2 && !n.inputs[1].empty()) {
        auto a = g_.constant_ints(n.inputs[1]);
        if (!a) not_recognised(where + ": " + GraphIndex::describe(n) + " has non-constant axes");
        axes = *a;
      } else if (const onnx::Attribute* a = n.attribute("axes")) {
        axes = a->ints;
      }
      unsqueezes.insert(unsqueezes.begin(), axes);
    } else {
      not_recognised(where + ": expected Unsqueeze/Cast of the attention_mask input, found " + GraphIndex::describe(n));
    }
    v = n.inputs.at(0);
  }
  if (!g_.is_graph_input(v) || casts != 1)
    not_recognised(where + ": the mask should be one Cast of a graph input, found " + g_.describe_value(v));
  // Simulate the Unsqueezes on [B, L] (labels: 1 = batch, 2 = seq, 0 = inserted).
  std::vector<int> labels{1, 2};
  for (const auto& axes : unsqueezes) {
    std::size_t rank = labels.size() + axes.size();
    std::vector<int> out(rank, -1);
    for (int64_t a : axes) {
      int64_t p = a < 0 ? a + static_cast<int64_t>(rank) : a;
      if (p < 0 || p >= static_cast<int64_t>(rank)) not_recognised(where + ": Unsqueeze axis out of range");
      out[static_cast<std::size_t>(p)] = 0;
    }
    std::size_t j = 0;
    for (auto& o : out)
      if (o == -1) o = labels[j++];
    labels = out;
  }
  if (labels != std::vector<int>{1, 0, 0, 2})
    not_recognised(where + ": the mask is not broadcast as [B, 1, 1, L] over the scores");
  w_.config.has_attention_mask = true;
  w_.config.mask_fill = fill_value;
  w_.config.attention_mask_name = v;
  mask_value_ = mask;
}

// Transpose node with the given perm producing `value`; returns its input.
static void check_perm(const onnx::Node& n, const std::vector<int64_t>& perm, const std::string& role) {
  const onnx::Attribute* p = n.attribute("perm");
  if (!p || p->ints != perm)
    not_recognised(role + ": " + GraphIndex::describe(n) + " should have perm " + dims_text(perm));
}

std::string Matcher::match_attention(const std::string& ctx, EncoderLayerWeights& layer, const std::string& role) {
  const int64_t H = hidden_;
  const onnx::Node& merge = node_of(ctx, "Reshape", role + " (merging the heads)");
  const onnx::Node& merge_t = node_of(merge.inputs.at(0), "Transpose", role + " (heads back to tokens)");
  check_perm(merge_t, {0, 2, 1, 3}, role);
  const onnx::Node& pv = node_of(merge_t.inputs.at(0), "MatMul", role + " (probabilities x V)");
  const onnx::Node& softmax = node_of(pv.inputs.at(0), "Softmax", role + " (attention softmax)");
  const onnx::Attribute* axis = softmax.attribute("axis");
  bool last_axis = axis ? (axis->i == -1 || axis->i == 3) : model_.opset() >= 13;
  if (!last_axis) not_recognised(role + ": " + GraphIndex::describe(softmax) + " should normalise over the keys (last axis)");

  // Scores: [mask +] (Q K^T) / d  or  (Q K^T) * s.
  auto is_scaled = [&](const std::string& v) {
    const onnx::Node* n = g_.producer(v);
    if (!n || !is_default_domain(*n) || (n->op_type != "Div" && n->op_type != "Mul") || n->inputs.size() != 2) return false;
    const onnx::Node* mm = g_.producer(n->inputs[0]);
    return mm && mm->op_type == "MatMul" && g_.constant_scalar(n->inputs[1]).has_value();
  };
  std::string scaled = softmax.inputs.at(0);
  if (!is_scaled(scaled)) {
    const onnx::Node& add = node_of(scaled, "Add", role + " (scores + mask, or scaled scores)");
    if (add.inputs.size() != 2) not_recognised(role + ": " + GraphIndex::describe(add) + " should have 2 inputs");
    int s = is_scaled(add.inputs[0]) ? 0 : is_scaled(add.inputs[1]) ? 1 : -1;
    if (s < 0) not_recognised(role + ": " + GraphIndex::describe(add) + " should add the mask to (Q K^T) / d");
    match_mask(add.inputs[1 - s], role);
    scaled = add.inputs[s];
  } else if (w_.config.has_attention_mask) {
    not_recognised(role + ": " + GraphIndex::describe(softmax) + " has no mask while other layers have one");
  }
  const onnx::Node& scale = *g_.producer(scaled);
  float c = take_scalar(scale.inputs[1], role + " (attention scale)");
  float multiplier = scale.op_type == "Div" ? 1.0f / c : c;
  if (!(std::isfinite(multiplier) && multiplier > 0.0f))
    not_recognised(role + ": " + GraphIndex::describe(scale) + " has an invalid scale " + std::to_string(c));
  if (w_.config.attention_scale != 0.0f && w_.config.attention_scale != multiplier)
    not_recognised(role + ": " + GraphIndex::describe(scale) + " scales differently from the other layers");
  w_.config.attention_scale = multiplier;
  w_.config.attention_scale_divisor = scale.op_type == "Div" ? c : 0.0f;

  const onnx::Node& qk = node_of(scale.inputs[0], "MatMul", role + " (Q x K^T)");
  struct Head { const char* name; std::string value; std::vector<int64_t> perm; LinearWeights* w; };
  Head heads[3] = {{"query", qk.inputs.at(0), {0, 2, 1, 3}, &layer.query},
                   {"key", qk.inputs.at(1), {0, 2, 3, 1}, &layer.key},
                   {"value", pv.inputs.at(1), {0, 2, 1, 3}, &layer.value}};
  std::string layer_input;
  int64_t n_heads = 0, head_size = 0;
  for (auto& h : heads) {
    const std::string r = role + " " + h.name;
    const onnx::Node& t = node_of(h.value, "Transpose", r + " (split into heads)");
    check_perm(t, h.perm, r);
    const onnx::Node& split = node_of(t.inputs.at(0), "Reshape", r + " (split into heads)");
    LinearMatch lin = match_linear(split.inputs.at(0), H, H, r);
    if (layer_input.empty()) layer_input = lin.input;
    if (lin.input != layer_input)
      not_recognised(r + ": the projection reads '" + lin.input + "', the query reads '" + layer_input + "'");
    *h.w = lin.weights;
    g_.set_shape(split.inputs[0], {SymDim::batch(), SymDim::seq(), SymDim::number(H)});
    const onnx::Attribute* allowzero = split.attribute("allowzero");
    SymShape target = g_.eval_shape_vector(split.inputs.at(1), r + " (head split shape)");
    SymShape got = reshape_result(*g_.shape(split.inputs[0]), target, allowzero && allowzero->i != 0,
                                  r + " " + GraphIndex::describe(split));
    bool ok = got.size() == 4 && got[0] == SymDim::batch() && got[1] == SymDim::seq() &&
              got[2].kind == SymDim::Kind::number && got[3].kind == SymDim::Kind::number && got[2].value > 0 &&
              got[2].value * got[3].value == H;
    if (!ok) not_recognised(r + ": " + GraphIndex::describe(split) + " gives " + to_string(got) + ", expected [B, L, heads, head_size]");
    if (n_heads == 0) n_heads = got[2].value, head_size = got[3].value;
    if (got[2].value != n_heads)
      not_recognised(r + ": " + GraphIndex::describe(split) + " splits into " + std::to_string(got[2].value) + " heads, the query into " + std::to_string(n_heads));
  }
  if (w_.config.heads != 0 && w_.config.heads != n_heads)
    not_recognised(role + ": " + std::to_string(n_heads) + " heads where another layer has " + std::to_string(w_.config.heads));
  w_.config.heads = n_heads;
  w_.config.head_size = head_size;

  g_.set_shape(merge.inputs[0], {SymDim::batch(), SymDim::seq(), SymDim::number(n_heads), SymDim::number(head_size)});
  const onnx::Attribute* allowzero = merge.attribute("allowzero");
  SymShape target = g_.eval_shape_vector(merge.inputs.at(1), role + " (head merge shape)");
  SymShape got = reshape_result(*g_.shape(merge.inputs[0]), target, allowzero && allowzero->i != 0, role + " " + GraphIndex::describe(merge));
  if (got != SymShape{SymDim::batch(), SymDim::seq(), SymDim::number(H)})
    not_recognised(role + ": " + GraphIndex::describe(merge) + " gives " + to_string(got) + ", expected [B, L, " + std::to_string(H) + "]");
  return layer_input;
}

// Of an Add's two inputs, which one is a linear layer (the other is the residual).
std::pair<std::string, std::string> Matcher::linear_and_residual(const onnx::Node& add, const std::string& role) {
  if (add.inputs.size() != 2) not_recognised(role + ": " + GraphIndex::describe(add) + " should have 2 inputs");
  bool first = is_linear(add.inputs[0]), second = is_linear(add.inputs[1]);
  if (first != second) return first ? std::pair{add.inputs[0], add.inputs[1]} : std::pair{add.inputs[1], add.inputs[0]};
  if (!first)  // say what differs in the side that looks like a bias Add (e.g. a quantized MatMul)
    for (const auto& in : add.inputs)
      if (const onnx::Node* n = g_.producer(in); n && n->op_type == "Add" && n->inputs.size() == 2 &&
                                                 (g_.constant(n->inputs[0]) || g_.constant(n->inputs[1])))
        match_linear(in, -1, -1, role);
  not_recognised(role + ": " + GraphIndex::describe(add) + " should add a linear layer's output (MatMul + bias) to the residual");
}

// One layer, given its output LayerNorm; returns the layer's input value.
std::string Matcher::match_layer(const LayerNormMatch& output_norm, EncoderLayerWeights& layer) {
  const int64_t H = hidden_;
  const std::string role = "layer before '" + output_norm.input + "'";
  layer.output_norm = output_norm.weights;

  const onnx::Node& add2 = node_of(output_norm.input, "Add", role + " (FFN residual Add)");
  auto [ffn_value, residual2] = linear_and_residual(add2, role);
  LinearMatch ffn_out = match_linear(ffn_value, -1, H, role + " FFN output");
  std::string gelu_in = match_gelu(ffn_out.input, role + " activation");
  LinearMatch ffn_in = match_linear(gelu_in, H, ffn_out.weights.in, role + " FFN input");
  if (ffn_in.input != residual2)
    not_recognised(role + ": the FFN reads '" + ffn_in.input + "' but its residual is '" + residual2 + "'");
  layer.ffn_out = ffn_out.weights;
  layer.ffn_in = ffn_in.weights;
  if (w_.config.ffn != 0 && w_.config.ffn != ffn_in.weights.out)
    not_recognised(role + ": FFN size " + std::to_string(ffn_in.weights.out) + " differs from another layer's " + std::to_string(w_.config.ffn));
  w_.config.ffn = ffn_in.weights.out;

  LayerNormMatch attention_norm = match_layer_norm(residual2, role + " attention LayerNorm");
  layer.attention_norm = attention_norm.weights;
  const onnx::Node& add1 = node_of(attention_norm.input, "Add", role + " (attention residual Add)");
  auto [attn_value, residual1] = linear_and_residual(add1, role);
  LinearMatch attn_out = match_linear(attn_value, H, H, role + " attention output");
  layer.attention_output = attn_out.weights;
  std::string layer_input = match_attention(attn_out.input, layer, role + " self-attention");
  if (layer_input != residual1)
    not_recognised(role + ": attention reads '" + layer_input + "' but its residual is '" + residual1 + "'");
  return layer_input;
}

void Matcher::match_position_ids(const std::string& ids) {
  const std::string role = "position ids";
  const onnx::Node* n = g_.producer(ids);
  if (n && is_default_domain(*n) && n->op_type == "Slice") {
    auto buffer = g_.constant_ints(n->inputs.at(0));
    const onnx::TensorData* t = g_.constant(n->inputs[0]);
    if (!buffer || t->dims.empty() || t->dims.size() > 2 || (t->dims.size() == 2 && t->dims[0] != 1))
      not_recognised(role + ": " + GraphIndex::describe(*n) + " should slice a constant [1, P] buffer");
    for (std::size_t i = 0; i < buffer->size(); ++i)
      if ((*buffer)[i] != static_cast<int64_t>(i))
        not_recognised(role + ": the buffer '" + n->inputs[0] + "' holds " + std::to_string((*buffer)[i]) + " at " +
                       std::to_string(i) + ", expected 0, 1, 2, ...");
    auto starts = g_.constant_ints(n->inputs.at(1));
    if (!starts || *starts != std::vector<int64_t>{0}) not_recognised(role + ": " + GraphIndex::describe(*n) + " should start at 0");
    SymShape ends = g_.eval_shape_vector(n->inputs.at(2), role + " (slice end)");
    if (ends != SymShape{SymDim::seq()})
      not_recognised(role + ": " + GraphIndex::describe(*n) + " ends at " + to_string(ends) + ", expected [L]");
    int64_t last = static_cast<int64_t>(t->dims.size()) - 1;
    if (n->inputs.size() > 3 && !n->inputs[3].empty()) {
      auto axes = g_.constant_ints(n->inputs[3]);
      if (!axes || axes->size() != 1 || ((*axes)[0] != last && (*axes)[0] != -1))
        not_recognised(role + ": " + GraphIndex::describe(*n) + " should slice the buffer's last axis");
    } else if (last != 0) {
      not_recognised(role + ": " + GraphIndex::describe(*n) + " has no axes input for a [1, P] buffer");
    }
    if (n->inputs.size() > 4 && !n->inputs[4].empty()) {
      auto steps = g_.constant_ints(n->inputs[4]);
      if (!steps || *steps != std::vector<int64_t>{1}) not_recognised(role + ": " + GraphIndex::describe(*n) + " should step by 1");
    }
    w_.config.position_ids = PositionIdsForm::sliced_buffer;
    w_.config.max_positions = static_cast<int64_t>(buffer->size());
    return;
  }
  if (n && is_default_domain(*n) && n->op_type == "Unsqueeze") {
    auto axes = n->inputs.size() >= 2 ? g_.constant_ints(n->inputs[1]) : std::optional<std::vector<int64_t>>{};
    if (!axes && n->attribute("axes")) axes = n->attribute("axes")->ints;
    if (!axes || *axes != std::vector<int64_t>{0}) not_recognised(role + ": " + GraphIndex::describe(*n) + " should add a batch axis");
    n = g_.producer(n->inputs.at(0));
  }
  if (n && is_default_domain(*n) && n->op_type == "Range") {
    auto start = g_.constant_ints(n->inputs.at(0)), delta = g_.constant_ints(n->inputs.at(2));
    if (!start || *start != std::vector<int64_t>{0} || !delta || *delta != std::vector<int64_t>{1} ||
        !(g_.eval_shape_scalar(n->inputs.at(1), role + " (Range limit)") == SymDim::seq()))
      not_recognised(role + ": " + GraphIndex::describe(*n) + " should be Range(0, L, 1)");
    w_.config.position_ids = PositionIdsForm::range;
    w_.config.max_positions = std::numeric_limits<int64_t>::max();
    return;
  }
  not_recognised(role + ": expected a Slice of an arange buffer or Range(0, L, 1), found " + g_.describe_value(ids));
}

void Matcher::match_embeddings(const LayerNormMatch& norm) {
  const int64_t H = hidden_;
  const std::string role = "embeddings";
  w_.embedding_norm = norm.weights;
  // The terms of the sum (Adds of non-constant values, any nesting).
  std::vector<std::string> terms, stack{norm.input};
  while (!stack.empty()) {
    std::string v = stack.back();
    stack.pop_back();
    const onnx::Node* n = g_.producer(v);
    if (n && is_default_domain(*n) && n->op_type == "Add" && n->inputs.size() == 2 && !g_.constant(n->inputs[0]) &&
        !g_.constant(n->inputs[1]) && terms.size() < 8) {
      stack.push_back(n->inputs[1]);
      stack.push_back(n->inputs[0]);
    } else {
      terms.push_back(v);
    }
  }
  bool word = false, position = false, type = false;
  for (const auto& term : terms) {
    const onnx::Node& gather = node_of(term, "Gather", role + " (a table lookup in the embedding sum)");
    const onnx::Attribute* axis = gather.attribute("axis");
    if (axis && axis->i != 0) not_recognised(role + ": " + GraphIndex::describe(gather) + " should gather rows");
    const std::string& indices = gather.inputs.at(1);
    std::vector<int64_t> dims;
    if (indices == w_.config.input_ids_name) {
      if (word) not_recognised(role + ": two word-embedding lookups");
      w_.word_embeddings = take_matrix(gather.inputs[0], {-1, H}, role + " word table", &dims);
      w_.config.vocab = dims[0];
      word = true;
    } else if (g_.is_graph_input(indices)) {
      if (type) not_recognised(role + ": two lookups by graph inputs other than input_ids");
      w_.token_type_embeddings = take_matrix(gather.inputs[0], {-1, H}, role + " token-type table", &dims);
      w_.config.type_vocab = dims[0];
      w_.config.token_type_ids_name = indices;
      type = true;
    } else {
      if (position) not_recognised(role + ": two position lookups");
      match_position_ids(indices);
      w_.position_embeddings = take_matrix(gather.inputs[0], {-1, H}, role + " position table", &dims);
      w_.config.max_positions = std::min(w_.config.max_positions, dims[0]);
      position = true;
    }
  }
  if (!word || !position)
    not_recognised(role + ": the sum before " + g_.describe_value(norm.input) + " lacks the " +
                   (word ? "position" : "word") + " embedding lookup");
}

EncoderWeights Matcher::run() {
  const onnx::Graph& graph = model_.graph;
  if (graph.outputs.size() != 1)
    not_recognised("the graph has " + std::to_string(graph.outputs.size()) + " outputs; the fast path computes exactly one (last_hidden_state)");
  const onnx::ValueInfo* ids = g_.graph_input("input_ids");
  if (!ids) not_recognised("the graph has no input named 'input_ids'");
  if (ids->elem_type != onnx::DataType::int64 && ids->elem_type != onnx::DataType::int32)
    not_recognised("graph input 'input_ids' is " + std::string(onnx::data_type_name(ids->elem_type)) + ", expected int64");
  if (ids->has_shape && ids->shape.size() != 2) not_recognised("graph input 'input_ids' should be [batch, sequence]");
  w_.config.input_ids_name = "input_ids";
  g_.set_shape("input_ids", {SymDim::batch(), SymDim::seq()});
  w_.config.output_name = graph.outputs[0].name;

  std::vector<EncoderLayerWeights> layers_reversed;
  std::string current = graph.outputs[0].name;
  for (std::size_t guard = 0;; ++guard) {
    if (guard > graph.nodes.size()) not_recognised("the layer chain does not end at the embeddings");
    LayerNormMatch norm = match_layer_norm(current, layers_reversed.empty() ? "output '" + current + "'" : "output of the layer before '" + current + "'");
    // The embeddings' LayerNorm normalises a sum of Gathers; a layer's, anything else (so that a
    // layer that differs is reported by the layer matcher).
    if (is_embedding_sum(norm.input, 0)) {
      match_embeddings(norm);
      break;
    }
    layers_reversed.emplace_back();
    current = match_layer(norm, layers_reversed.back());
  }
  if (layers_reversed.empty()) not_recognised("no encoder layer between the embeddings and the output");
  w_.layers.assign(layers_reversed.rbegin(), layers_reversed.rend());
  w_.config.hidden = hidden_;
  w_.config.layers = static_cast<int64_t>(w_.layers.size());
  const onnx::ValueInfo& out = graph.outputs[0];
  if (out.has_shape && (out.shape.size() != 3 || (out.shape[2].value >= 0 && out.shape[2].value != hidden_)))
    not_recognised("output '" + out.name + "' is declared with a shape other than [batch, sequence, " + std::to_string(hidden_) + "]");
  if (model_.storage.size())
    for (const auto& s : model_.storage)
      if (s && owner_set_.insert(s.get()).second) w_.owners.push_back(s);
  return std::move(w_);
}

}  // namespace

RecognizeResult recognize_encoder(const onnx::Model& model) {
  RecognizeResult result;
  try {
    result.weights = Matcher(model).run();
  } catch (const NotRecognised& e) {
    result.reason = e.what();
  } catch (const Error& e) {
    result.reason = std::string("the model's tensors could not be read: ") + e.what();
  } catch (const std::out_of_range&) {
    result.reason = "a node on the encoder's path has fewer inputs than its operator needs";
  }
  return result;
}

}  // namespace leanembed::runtime::encoder
