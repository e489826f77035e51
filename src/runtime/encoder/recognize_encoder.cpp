// The recognizer walks the graph backwards from its output: the last LayerNorm, then layer by
// layer (FFN, attention) down to the embeddings. Each step names what it expects, so a graph that
// differs anywhere gives a reason pointing at the node.
#include "runtime/encoder/recognize_encoder.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>
#include <utility>

#include "leanembed/error.h"
#include "runtime/encoder/graph_query.h"
#include "runtime/encoder/onnx_weight_forms.h"
#include "runtime/encoder/row_source.h"
#include "core/float16.h"

namespace leanembed::runtime::encoder {
namespace {

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
  explicit Matcher(const onnx::Model& model) : model_(model), g_(model.graph), forms_(g_, w_) {}

  EncoderWeights run();

 private:
  const onnx::Node& node_of(const std::string& value, const char* op, const std::string& role) const;
  std::pair<std::string, std::string> split_constant(const onnx::Node& n, const std::string& role) const;
  bool scalar_is(const std::string& value, double expected, const std::string& role) const;
  void check_reduce_mean(const onnx::Node& n, const std::string& role) const;

  LayerNormMatch match_layer_norm(const std::string& out, const std::string& role);
  bool is_linear(const std::string& value) const;
  std::pair<std::string, std::string> linear_and_residual(const onnx::Node& add, const std::string& role);
  bool is_embedding_sum(const std::string& value, int depth) const;
  LinearMatch match_linear(const std::string& out, int64_t in, int64_t out_dim, const std::string& role);
  void match_integer_product(const onnx::Node& mul, int64_t in, int64_t out_dim, const std::string& role, LinearMatch& m);
  void match_nbits_product(const onnx::Node& mm, int64_t in, int64_t out_dim, const std::string& role, LinearMatch& m);
  std::pair<const onnx::Node*, EmbeddingTable> match_lookup(const std::string& term, const std::string& role,
                                                            std::vector<int64_t>* dims);
  std::string unwrap_input_scale(const std::string& x, int64_t k, const std::string& role, AlignedFloatView* scale);
  std::string match_gelu(const std::string& out, const std::string& role);
  void match_mask(const std::string& mask, const std::string& role);
  std::string match_attention(const std::string& ctx, EncoderLayerWeights& layer, const std::string& role);
  std::string match_layer(const LayerNormMatch& output_norm, EncoderLayerWeights& layer);
  void match_embeddings(const LayerNormMatch& norm);
  void match_position_ids(const std::string& ids);

  const onnx::Model& model_;
  GraphIndex g_;
  EncoderWeights w_;
  OnnxWeightForms forms_;  // decodes and checks the constants the match names (onnx_weight_forms.h)
  int64_t hidden_ = 0;
  std::string mask_value_;  // the mask value already verified
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
                                o == "Pow" || o == "Reshape" || o == "Gather" || o == "MatMulInteger" ||
                                o == "DequantizeLinear") ? 2 : 1;
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

// Whether the constant scalar `value` holds `expected` as its type can: within 1e-6 (relative) of
// `expected` for fp32/fp64, or of `expected` rounded to fp16 for an fp16 constant.
bool Matcher::scalar_is(const std::string& value, double expected, const std::string& role) const {
  const double v = forms_.scalar(value, role);
  const onnx::TensorData* t = g_.constant(value);
  if (t->dtype == onnx::DataType::float16) return close_to(v, round_to_half(static_cast<float>(expected)));
  return close_to(v, expected);
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
    m.weights.gamma = forms_.vector(n->inputs[1], hidden_dims, role + " scale");
    if (hidden_ == 0) hidden_ = m.weights.gamma.size;
    m.weights.beta = forms_.vector(n->inputs[2], {hidden_}, role + " bias");
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
  if (forms_.scalar(pow.inputs[1], role + " (Pow exponent)") != 2.0f)
    not_recognised(role + ": " + GraphIndex::describe(pow) + " should have exponent 2");
  const onnx::Node& sub = node_of(div.inputs[0], "Sub", role + " (LayerNorm centring)");
  const onnx::Node& mean = node_of(sub.inputs.at(1), "ReduceMean", role + " (LayerNorm mean)");
  check_reduce_mean(mean, role);
  if (mean.inputs.at(0) != sub.inputs.at(0))
    not_recognised(role + ": " + GraphIndex::describe(mean) + " should average the Sub's input '" + sub.inputs[0] + "'");
  m.weights.eps = forms_.scalar(eps, role + " (LayerNorm eps)");
  if (!(m.weights.eps >= 0.0f)) not_recognised(role + ": LayerNorm eps is negative");
  m.weights.gamma = forms_.vector(gamma, hidden_dims, role + " scale");
  if (hidden_ == 0) hidden_ = m.weights.gamma.size;
  m.weights.beta = forms_.vector(beta, {hidden_}, role + " bias");
  m.input = sub.inputs[0];
  return m;
}

bool Matcher::is_embedding_sum(const std::string& value, int depth) const {
  const onnx::Node* n = g_.producer(value);
  if (!n || !is_default_domain(*n) || depth > 4) return false;
  if (n->op_type == "Gather") return depth > 0;
  if ((n->op_type == "DequantizeLinear" || n->op_type == "Cast") && !n->inputs.empty()) {  // an 8-bit / fp16 table's lookup
    const onnx::Node* gather = g_.producer(n->inputs[0]);
    return depth > 0 && gather && is_default_domain(*gather) && gather->op_type == "Gather";
  }
  if (n->op_type != "Add" || n->inputs.size() != 2) return false;
  return is_embedding_sum(n->inputs[0], depth + 1) && is_embedding_sum(n->inputs[1], depth + 1);
}

bool Matcher::is_linear(const std::string& value) const {
  const onnx::Node* add = g_.producer(value);
  if (!add || !is_default_domain(*add) || add->op_type != "Add" || add->inputs.size() != 2) return false;
  for (int i = 0; i < 2; ++i) {
    const onnx::Node* mm = g_.producer(add->inputs[i]);
    if (!g_.constant(add->inputs[1 - i]) || !mm) continue;
    if (mm->op_type == "MatMul" && mm->inputs.size() == 2 && g_.constant(mm->inputs[1])) return true;
    if (mm->op_type == "MatMul" && mm->inputs.size() == 2)  // a weight stored fp16, cast to float
      if (const onnx::Node* cast = g_.producer(mm->inputs[1]);
          cast && cast->op_type == "Cast" && !cast->inputs.empty() && g_.constant(cast->inputs[0]))
        return true;
    if (mm->op_type == "MatMulNBits" && mm->domain == "com.microsoft") return true;
    if (mm->op_type == "Mul" && is_default_domain(*mm) && mm->inputs.size() == 2)  // quantized: Cast(MatMulInteger) * scales
      for (const auto& in : mm->inputs)
        if (const onnx::Node* cast = g_.producer(in); cast && cast->op_type == "Cast" && !cast->inputs.empty())
          if (const onnx::Node* mmi = g_.producer(cast->inputs[0]); mmi && mmi->op_type == "MatMulInteger") return true;
  }
  return false;
}

LinearMatch Matcher::match_linear(const std::string& out, int64_t in, int64_t out_dim, const std::string& role) {
  const onnx::Node& add = node_of(out, "Add", role + " (bias Add of a linear layer)");
  auto [bias, product] = split_constant(add, role + " (bias Add of a linear layer)");
  LinearMatch m;
  const onnx::Node* p = g_.producer(product);
  if (p && p->domain == "com.microsoft" && p->op_type == "MatMulNBits") {
    match_nbits_product(*p, in, out_dim, role, m);
  } else if (p && is_default_domain(*p) && p->op_type == "Mul") {
    match_integer_product(*p, in, out_dim, role, m);
  } else {
    const onnx::Node& mm = node_of(product, "MatMul", role + " (MatMul, MatMulInteger or MatMulNBits of a linear layer)");
    if (mm.inputs.size() != 2 || g_.constant(mm.inputs[0]))
      not_recognised(role + ": " + GraphIndex::describe(mm) + " should multiply activations by a weight");
    // fp16 storage with fp32 compute (leanembed's fp16 files): MatMul(x, Cast<float>(W fp16)).
    std::string weight = mm.inputs[1];
    const onnx::Node* cast = g_.producer(weight);
    if (cast && is_default_domain(*cast) && cast->op_type == "Cast") {
      const onnx::Attribute* to = cast->attribute("to");
      if (!to || to->i != static_cast<int64_t>(onnx::DataType::float32) || cast->inputs.empty())
        not_recognised(role + ": " + GraphIndex::describe(*cast) + " should cast an fp16 weight to float");
      weight = cast->inputs[0];
    }
    m.weights = forms_.float_linear(weight, in, out_dim, role, cast != nullptr);
    m.input = mm.inputs[0];
  }
  m.weights.bias = forms_.vector(bias, {m.weights.out}, role + " bias");
  return m;
}

// ONNX Runtime's dynamic quantization of x W:
//   Mul(Cast<float>(MatMulInteger(q, Wq, zp, Wzp)), Mul(scale, Wscale))  with  q, scale, zp = DynamicQuantizeLinear(x)
// (either operand order in both Muls). Wq: uint8/int8 [in, out]; Wscale: fp32, 1 or `out` values;
// Wzp: Wq's type, 1 or `out` values, or absent.
void Matcher::match_integer_product(const onnx::Node& mul, int64_t in, int64_t out_dim, const std::string& role,
                                    LinearMatch& m) {
  const std::string where = role + " (quantized product Cast(MatMulInteger) * scales)";
  if (mul.inputs.size() != 2) not_recognised(where + ": " + GraphIndex::describe(mul) + " should have 2 inputs");
  int c = -1;
  for (int i = 0; i < 2; ++i)
    if (const onnx::Node* n = g_.producer(mul.inputs[i]); n && is_default_domain(*n) && n->op_type == "Cast") c = i;
  if (c < 0)
    not_recognised(where + ": " + GraphIndex::describe(mul) + " multiplies " + g_.describe_value(mul.inputs[0]) + " by " +
                   g_.describe_value(mul.inputs[1]) + ", expected a linear layer's MatMul or a Cast of a MatMulInteger");
  const onnx::Node& cast = *g_.producer(mul.inputs[c]);
  const onnx::Attribute* to = cast.attribute("to");
  if (!to || to->i != static_cast<int64_t>(onnx::DataType::float32))
    not_recognised(where + ": " + GraphIndex::describe(cast) + " should cast the integer product to float");
  const onnx::Node& mmi = node_of(cast.inputs.at(0), "MatMulInteger", where);
  if (mmi.inputs.size() < 3 || mmi.inputs[2].empty())
    not_recognised(where + ": " + GraphIndex::describe(mmi) + " has no activation zero point (input 3)");
  const onnx::Node& dql = node_of(mmi.inputs[0], "DynamicQuantizeLinear", where + " activation quantization");
  if (dql.outputs.size() != 3 || dql.outputs[0] != mmi.inputs[0] || dql.outputs[2] != mmi.inputs[2])
    not_recognised(where + ": " + GraphIndex::describe(mmi) + " should take the quantized activations and their zero point "
                   "from " + GraphIndex::describe(dql));
  if (g_.constant(dql.inputs[0]))
    not_recognised(where + ": " + GraphIndex::describe(dql) + " quantizes a constant, expected activations");

  if (mmi.inputs.size() > 4)
    not_recognised(where + ": " + GraphIndex::describe(mmi) + " has " + std::to_string(mmi.inputs.size()) + " inputs, expected at most 4");

  const onnx::Node& scales = node_of(mul.inputs[1 - c], "Mul", where + " (activation scale * weight scale)");
  if (scales.inputs.size() != 2) not_recognised(where + ": " + GraphIndex::describe(scales) + " should have 2 inputs");
  int s = scales.inputs[0] == dql.outputs[1] ? 0 : scales.inputs[1] == dql.outputs[1] ? 1 : -1;
  if (s < 0)
    not_recognised(where + ": " + GraphIndex::describe(scales) + " should multiply the activation scale '" + dql.outputs[1] +
                   "' of " + GraphIndex::describe(dql) + " by the weight scale");
  const std::string& wscale = scales.inputs[1 - s];
  if (!g_.constant(wscale))
    not_recognised(role + ": the weight scale of " + GraphIndex::describe(mmi) + " is not a constant: " +
                   GraphIndex::describe(scales) + " multiplies by " + g_.describe_value(wscale));
  m.weights = forms_.int8_linear(mmi, wscale, in, out_dim, role);
  m.input = unwrap_input_scale(dql.inputs[0], m.weights.in, role, &m.weights.input_scale);
}

// Mul(x, s) with s a constant fp32 [k] (k > 1): the channel scaling `leanembed quantize` puts
// before a quantized product. Returns x and sets *scale; any other value is returned unchanged.
std::string Matcher::unwrap_input_scale(const std::string& x, int64_t k, const std::string& role, AlignedFloatView* scale) {
  const onnx::Node* mul = g_.producer(x);
  if (!mul || !is_default_domain(*mul) || mul->op_type != "Mul" || mul->inputs.size() != 2 || k <= 1) return x;
  for (int i = 0; i < 2; ++i) {
    const onnx::TensorData* t = g_.constant(mul->inputs[i]);
    if (t && !g_.constant(mul->inputs[1 - i]) && t->dtype == onnx::DataType::float32 && t->dims == std::vector<int64_t>{k}) {
      *scale = forms_.vector(mul->inputs[i], {k}, role + " input scale (" + GraphIndex::describe(*mul) + ")");
      w_.config.scaled_inputs = true;
      return mul->inputs[1 - i];
    }
  }
  return x;
}

// com.microsoft MatMulNBits(x, packed, scales [, zero_points]) with bits 4, K = in, N = out.
void Matcher::match_nbits_product(const onnx::Node& mm, int64_t in, int64_t out_dim, const std::string& role,
                                  LinearMatch& m) {
  if (mm.inputs.empty() || g_.constant(mm.inputs[0]))
    not_recognised(role + ": " + GraphIndex::describe(mm) + " should multiply activations, not a constant");
  m.weights = forms_.q4_linear(mm, in, out_dim, role);
  m.input = unwrap_input_scale(mm.inputs[0], m.weights.in, role, &m.weights.input_scale);
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
  if (!scalar_is(half, 0.5, role + " (GELU 0.5)"))
    not_recognised(expected + "; the constant factor '" + half + "' is not 0.5");
  const onnx::Node& one_plus = node_of(erf_part, "Add", role + " (GELU 1 + erf)");
  auto [one, erf_out] = split_constant(one_plus, role + " (GELU 1 + erf)");
  if (!scalar_is(one, 1.0, role + " (GELU 1)")) not_recognised(expected + "; '" + one + "' is not 1");
  const onnx::Node& erf = node_of(erf_out, "Erf", role + " (GELU erf)");
  const onnx::Node* arg = g_.producer(erf.inputs.at(0));
  if (!arg || !is_default_domain(*arg) || (arg->op_type != "Div" && arg->op_type != "Mul"))
    not_recognised(expected + "; erf's argument should be x / sqrt(2), found " + g_.describe_value(erf.inputs[0]));
  auto [c, erf_x] = split_constant(*arg, role + " (GELU x / sqrt(2))");
  bool ok = arg->op_type == "Div" ? (arg->inputs[1] == c && scalar_is(c, std::sqrt(2.0), role + " (GELU sqrt(2))"))
                                  : scalar_is(c, 1.0 / std::sqrt(2.0), role + " (GELU 1/sqrt(2))");
  if (!ok) not_recognised(expected + "; " + GraphIndex::describe(*arg) + " does not divide by sqrt(2)");
  if (erf_x != x) not_recognised(expected + "; erf is applied to '" + erf_x + "', not to the factor '" + x + "'");
  return x;
}

void Matcher::match_mask(const std::string& mask, const std::string& role) {
  if (mask == mask_value_) return;
  const std::string where = role + " (attention mask (1 - mask) * fill)";
  const onnx::Node& mul = node_of(mask, "Mul", where);
  auto [fill, inverted] = split_constant(mul, where);
  float fill_value = forms_.scalar(fill, where);
  if (!(fill_value <= -1e4f))
    not_recognised(where + ": the fill " + std::to_string(fill_value) + " is not a large negative number");
  const onnx::Node& sub = node_of(inverted, "Sub", where);
  if (sub.inputs.size() != 2 || !g_.constant(sub.inputs[0]) || forms_.scalar(sub.inputs[0], where) != 1.0f)
    not_recognised(where + ": " + GraphIndex::describe(sub) + " should compute 1 - mask");
  // Back through Unsqueeze/Cast to the graph input; the Unsqueezes must give [B, 1, 1, L].
  std::vector<std::vector<int64_t>> unsqueezes;
  int casts = 0;
  std::string v = sub.inputs[1];
  for (int guard = 0; guard < 8 && g_.producer(v); ++guard) {
    const onnx::Node& n = *g_.producer(v);
    if (is_default_domain(n) && n.op_type == "Cast") {
      // To the type the scores have: the fill constant's (float, or float16 in fp16 graphs).
      const onnx::Attribute* to = n.attribute("to");
      const onnx::DataType fill_type = g_.constant(fill)->dtype;
      if (!to || to->i != static_cast<int64_t>(fill_type))
        not_recognised(where + ": " + GraphIndex::describe(n) + " should cast to " + onnx::data_type_name(fill_type) +
                       ", the type of the mask fill");
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
  float c = forms_.scalar(scale.inputs[1], role + " (attention scale)");
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
  if (layer.query.input_scale.data != layer.key.input_scale.data ||
      layer.query.input_scale.data != layer.value.input_scale.data)
    not_recognised(role + ": Q, K and V scale their shared input differently (the fast path scales it once)");
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
    std::vector<int64_t> dims;
    const onnx::Node* n = g_.producer(term);
    const bool quantized = n && is_default_domain(*n) && n->op_type == "DequantizeLinear";
    const bool widened = n && is_default_domain(*n) && n->op_type == "Cast";  // Cast<float>(Gather(fp16 table))
    const onnx::Node& gather =
        node_of(quantized || widened ? n->inputs.at(0) : term, "Gather", role + " (a table lookup in the embedding sum)");
    const onnx::Attribute* axis = gather.attribute("axis");
    if (axis && axis->i != 0) not_recognised(role + ": " + GraphIndex::describe(gather) + " should gather rows");
    const std::string& indices = gather.inputs.at(1);
    const bool is_word = indices == w_.config.input_ids_name, is_type = !is_word && g_.is_graph_input(indices);
    const std::string table_role = role + (is_word ? " word table" : is_type ? " token-type table" : " position table");
    EmbeddingTable table = quantized ? forms_.quantized_table(*n, gather.inputs[0], H, table_role, &dims)
                           : widened ? forms_.half_table(*n, gather.inputs[0], H, table_role, &dims)
                                     : forms_.table(gather.inputs[0], {-1, H}, table_role, &dims);
    if (is_word) {
      if (word) not_recognised(role + ": two word-embedding lookups");
      w_.word_embeddings = table;
      w_.config.vocab = dims[0];
      word = true;
    } else if (is_type) {
      if (type) not_recognised(role + ": two lookups by graph inputs other than input_ids");
      w_.token_type_embeddings = table;
      w_.config.type_vocab = dims[0];
      w_.config.token_type_ids_name = indices;
      type = true;
    } else {
      if (position) not_recognised(role + ": two position lookups");
      match_position_ids(indices);
      w_.position_embeddings = table;
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

  const onnx::ValueInfo& out = graph.outputs[0];
  if (out.elem_type != onnx::DataType::float32 && out.elem_type != onnx::DataType::undefined)
    not_recognised("output '" + out.name + "' is " + onnx::data_type_name(out.elem_type) + "; the fast path computes float32");
  std::vector<EncoderLayerWeights> layers_reversed;
  std::string current = graph.outputs[0].name;
  // fp16 graphs end in a Cast of the last LayerNorm to float (checked below to be one).
  const onnx::Node* output_cast = g_.producer(current);
  if (output_cast && is_default_domain(*output_cast) && output_cast->op_type == "Cast") {
    const onnx::Attribute* to = output_cast->attribute("to");
    if (!to || to->i != static_cast<int64_t>(onnx::DataType::float32) || output_cast->inputs.empty())
      not_recognised("output '" + current + "': " + GraphIndex::describe(*output_cast) + " should cast to float");
    current = output_cast->inputs[0];
  } else {
    output_cast = nullptr;
  }
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
  if (output_cast && !forms_.saw_half())
    not_recognised("output '" + out.name + "': " + GraphIndex::describe(*output_cast) +
                   " casts the result of a graph without fp16 weights; expected the last LayerNorm");
  w_.weight_form = describe_weight_form(w_);
  if (out.has_shape && (out.shape.size() != 3 || (out.shape[2].value >= 0 && out.shape[2].value != hidden_)))
    not_recognised("output '" + out.name + "' is declared with a shape other than [batch, sequence, " + std::to_string(hidden_) + "]");
  for (const auto& s : model_.storage) forms_.keep(s);
  return std::move(w_);
}

}  // namespace

RecognizeResult recognize_encoder(const onnx::Model& model, const RecognizeOptions& options) {
  RecognizeResult result;
  try {
    result.weights = Matcher(model).run();
    if (options.table_rows_by_pread)
      attach_model_row_source(result.weights->word_embeddings, result.weights->config.hidden, model);
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
