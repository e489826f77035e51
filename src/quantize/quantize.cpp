// Graph rewriting for quantize_model (quantize.h); the numbers come from weight_quant.h.
#include "quantize/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "leanembed/error.h"
#include "quantize/calibration.h"
#include "quantize/gptq.h"
#include "quantize/weight_quant.h"

namespace leanembed::quantize {
namespace {

using onnx::Attribute;
using onnx::AttributeType;
using onnx::DataType;
using onnx::Graph;
using onnx::Node;
using onnx::TensorData;

constexpr int64_t kQ4Block = 32;
constexpr int64_t kTableRows = 1000;  // a Gather table with at least this many rows is a vocabulary

const char* name_of(Dtype d) {
  switch (d) {
    case Dtype::q8: return "q8";
    case Dtype::uint8: return "uint8";
    case Dtype::int8: return "int8";
    case Dtype::q4: return "q4";
    case Dtype::fp16: return "fp16";
    case Dtype::fp32: return "fp32";
    case Dtype::q4f16: return "q4f16";
    case Dtype::bnb4: return "bnb4";
  }
  return "?";
}

// A tensor owning `values` (moved into shared storage).
template <typename T>
TensorData owned_tensor(const std::string& name, DataType dtype, std::vector<int64_t> dims, std::vector<T> values) {
  auto storage = std::make_shared<std::vector<T>>(std::move(values));
  TensorData t;
  t.name = name;
  t.dtype = dtype;
  t.dims = std::move(dims);
  t.bytes = std::as_bytes(std::span<const T>(*storage));
  t.owner = storage;
  return t;
}

// A copy of `t` in storage of its own (so the result does not keep the input's mapping alive).
TensorData own_copy(const TensorData& t) {
  std::vector<std::byte> bytes(t.bytes.begin(), t.bytes.end());
  TensorData c = owned_tensor(t.name, t.dtype, t.dims, std::move(bytes));
  return c;
}

void own_graph_tensors(Graph& g);

void own_node_tensors(Node& n) {
  for (Attribute& a : n.attributes) {
    if (a.type == AttributeType::tensor) a.t = own_copy(a.t);
    for (TensorData& t : a.tensors) t = own_copy(t);
    if (a.g) {
      auto copy = std::make_shared<Graph>(*a.g);
      own_graph_tensors(*copy);
      a.g = copy;
    }
    for (auto& sub : a.graphs) {
      auto copy = std::make_shared<Graph>(*sub);
      own_graph_tensors(*copy);
      sub = copy;
    }
  }
}

void own_graph_tensors(Graph& g) {
  for (TensorData& t : g.initializers) t = own_copy(t);
  for (Node& n : g.nodes) own_node_tensors(n);
}

// The float values of a float32 tensor, read with memcpy (views may be misaligned).
std::vector<float> floats_of(const TensorData& t) {
  if (t.dtype != DataType::float32 || t.bytes.size() != static_cast<std::size_t>(t.numel()) * sizeof(float)) {
    throw Error(ErrorCode::model_format, "quantize: tensor '" + t.name + "' should hold " + std::to_string(t.numel()) +
                                             " float32 values, has " + std::to_string(t.bytes.size()) + " bytes of " +
                                             onnx::data_type_name(t.dtype));
  }
  std::vector<float> v(static_cast<std::size_t>(t.numel()));
  if (!v.empty()) std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      throw Error(ErrorCode::model_format, "quantize: tensor '" + t.name + "' holds a value that is not finite at index " +
                                               std::to_string(i) + " (" + std::to_string(v[i]) + "); cannot quantize it");
  return v;
}

Attribute int_attribute(const std::string& name, int64_t value) {
  Attribute a;
  a.name = name;
  a.type = AttributeType::integer;
  a.i = value;
  return a;
}

Node make_node(std::string op, std::vector<std::string> inputs, std::vector<std::string> outputs, std::string name,
               std::vector<Attribute> attributes = {}, std::string domain = "") {
  Node n;
  n.op_type = std::move(op);
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  n.name = std::move(name);
  n.attributes = std::move(attributes);
  n.domain = std::move(domain);
  return n;
}

class Rewriter {
 public:
  Rewriter(const onnx::Model& in, Dtype dtype, const QuantizeOptions& options, QuantizeSummary& summary)
      : in_(in), g_(in.graph), dtype_(dtype), s_(summary), options_(options) {
    for (const auto& t : g_.initializers) {
      names_.insert(t.name);
      inits_[t.name] = &t;
    }
    for (const auto& v : g_.inputs) names_.insert(v.name);
    for (std::size_t i = 0; i < g_.nodes.size(); ++i) {
      names_.insert(g_.nodes[i].name);
      for (const auto& o : g_.nodes[i].outputs) {
        names_.insert(o);
        producer_[o] = i;
      }
    }
    if (!options.calibration.empty() && dtype != Dtype::fp16) calibrate(options);
  }

  onnx::Model run() {
    for (const Node& n : g_.nodes) {
      if (const TensorData* w = constant_matmul_weight(n)) {
        rewrite_matmul(n, *w);
      } else if (const TensorData* table = gather_table(n)) {
        rewrite_gather(n, *table);
      } else {
        nodes_.push_back(n);
      }
    }
    if (s_.matmuls == 0) {
      throw Error(ErrorCode::unsupported, "quantize: '" + in_.path + "' has no MatMul on a constant float32 2-D weight "
                                          "to quantize (already quantized, or not an encoder graph)");
    }
    onnx::Model out;
    out.ir_version = std::max<int64_t>(in_.ir_version, 7);
    out.producer_name = "leanembed";
    out.producer_version = std::string("0.1.0 quantize ") + name_of(dtype_);
    out.opset_imports = in_.opset_imports;
    if (dtype_ == Dtype::q4) out.opset_imports.emplace("com.microsoft", 1);
    out.path = in_.path;
    Graph& g = out.graph;
    g.name = g_.name;
    g.inputs = g_.inputs;
    g.outputs = g_.outputs;
    // value_info is optional and some of its types may no longer hold: left out.
    std::set<std::string> used;
    for (const Node& n : nodes_)
      for (const auto& i : n.inputs) used.insert(i);
    for (const auto& o : g_.outputs) used.insert(o.name);
    for (const auto& t : g_.initializers)
      if (used.count(t.name)) g.initializers.push_back(t);
    for (auto& t : new_inits_) g.initializers.push_back(std::move(t));
    g.nodes = std::move(nodes_);
    own_graph_tensors(g);  // copies the kept views; the new tensors are copied once more (small cost, simple)
    return out;
  }

 private:
  // Measures the inputs of the weight MatMuls; with smoothing, derives each input's channel scales.
  void calibrate(const QuantizeOptions& options) {
    std::map<std::string, std::vector<float>> weight_max;  // input -> per row max |W| over its MatMuls
    for (const Node& n : g_.nodes) {
      const TensorData* w = constant_matmul_weight(n);
      if (!w) continue;
      const int64_t K = w->dims[0], N = w->dims[1];
      const std::vector<float> v = floats_of(*w);
      std::vector<float>& m = weight_max[n.inputs[0]];
      m.resize(static_cast<std::size_t>(K), 0.0f);
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < N; ++j) m[k] = std::max(m[k], std::fabs(v[static_cast<std::size_t>(k * N + j)]));
    }
    std::vector<std::string> names;
    for (const auto& [x, m] : weight_max) names.push_back(x);
    stats_ = activation_stats(in_, names, options.calibration, gptq_wanted());
    for (const auto& seq : options.calibration) s_.calibration_tokens += static_cast<int>(seq.size());
    if (!options.smooth) return;
    if (dtype_ == Dtype::q4) {
      // Activation-aware scaling (activations stay float here): rows whose inputs are large are
      // scaled up so their weights are rounded relatively finer, s_k = rms(x_k)^0.25 / geometric
      // mean. No clipping (the search weighs rows equally).
      constexpr double alpha = 0.25;
      for (const auto& [x, m] : weight_max) {
        const ChannelStats& st = stats_.at(x);
        if (st.mean_square.size() != m.size()) continue;
        std::vector<float> sc(m.size(), 1.0f);
        double log_sum = 0;
        for (std::size_t k = 0; k < m.size(); ++k) {
          sc[k] = static_cast<float>(std::pow(std::max<double>(std::sqrt(st.mean_square[k]), 1e-6), alpha));
          log_sum += std::log(sc[k]);
        }
        const float g = static_cast<float>(std::exp(log_sum / static_cast<double>(m.size())));
        for (float& v : sc) v /= g;
        smooth_[x] = std::move(sc);
      }
      return;
    }
    for (const auto& [x, m] : weight_max) {
      const ChannelStats& st = stats_.at(x);
      if (st.max_abs.size() != m.size()) continue;
      std::vector<float> s(m.size(), 1.0f);
      for (std::size_t k = 0; k < m.size(); ++k)
        if (st.max_abs[k] > 0 && m[k] > 0) s[k] = std::sqrt(st.max_abs[k] / m[k]);
      smooth_[x] = std::move(s);
    }
  }

  const TensorData* init(const std::string& name) const {
    auto it = inits_.find(name);
    return it == inits_.end() ? nullptr : it->second;
  }

  const TensorData* constant_matmul_weight(const Node& n) const {
    if (n.op_type != "MatMul" || !(n.domain.empty() || n.domain == "ai.onnx") || n.inputs.size() != 2) return nullptr;
    const TensorData* w = init(n.inputs[1]);
    if (!w || w->dtype != DataType::float32 || w->dims.size() != 2 || w->numel() == 0) return nullptr;
    return w;
  }

  const TensorData* gather_table(const Node& n) const {
    if (n.op_type != "Gather" || !(n.domain.empty() || n.domain == "ai.onnx") || n.inputs.size() != 2) return nullptr;
    if (const Attribute* axis = n.attribute("axis"); axis && axis->i != 0) return nullptr;
    const TensorData* t = init(n.inputs[0]);
    if (!t || t->dtype != DataType::float32 || t->dims.size() != 2 || t->dims[0] < kTableRows || t->numel() == 0) return nullptr;
    return t;
  }

  std::string unique(const std::string& base) {
    std::string name = base;
    for (int i = 1; names_.count(name); ++i) name = base + "_" + std::to_string(i);
    names_.insert(name);
    return name;
  }

  template <typename T>
  std::string add_init(const std::string& base, DataType dtype, std::vector<int64_t> dims, std::vector<T> values) {
    const std::string name = unique(base);
    s_.weight_bytes_after += values.size() * sizeof(T);
    new_inits_.push_back(owned_tensor(name, dtype, std::move(dims), std::move(values)));
    return name;
  }

  // X -> DynamicQuantizeLinear, once per activation.
  struct Dql {
    std::string q, scale, zero_point;
  };
  // X, or X / s per channel when X is smoothed (once per X).
  std::string smoothed(const std::string& x) {
    std::string input = x;
    if (auto done = smoothed_.find(x); done != smoothed_.end()) return done->second;
    if (auto s = smooth_.find(x); s != smooth_.end()) {
      // X / s per channel (the weights reading X were multiplied by s).
      std::vector<float> inverse(s->second.size());
      for (std::size_t k = 0; k < inverse.size(); ++k) inverse[k] = 1.0f / s->second[k];
      const int64_t channels = static_cast<int64_t>(inverse.size());
      const std::string scale = add_init(x + "_smooth_scale", DataType::float32, {channels}, std::move(inverse));
      input = unique(x + "_smoothed");
      nodes_.push_back(make_node("Mul", {x, scale}, {input}, unique(x + "_smooth")));
      ++s_.smoothed;
    }
    smoothed_[x] = input;
    return input;
  }

  const Dql& dynamic_quantized(const std::string& x) {
    auto it = dql_.find(x);
    if (it != dql_.end()) return it->second;
    Dql d{unique(x + "_quantized"), unique(x + "_scale"), unique(x + "_zero_point")};
    const std::string input = smoothed(x);
    nodes_.push_back(make_node("DynamicQuantizeLinear", {input}, {d.q, d.scale, d.zero_point}, unique(x + "_QuantizeLinear")));
    return dql_.emplace(x, d).first->second;
  }

  void rewrite_matmul(const Node& n, const TensorData& w) {
    const int64_t K = w.dims[0], N = w.dims[1];
    std::vector<float> values = floats_of(w);
    const std::string& x = n.inputs[0];
    const std::string& y = n.outputs.at(0);
    const std::string base = n.name.empty() ? y : n.name;
    s_.weight_bytes_before += w.bytes.size();
    ++s_.matmuls;
    const bool leading = s_.matmuls <= options_.fp16_leading_matmuls;  // s_.matmuls counts this one
    if (dtype_ == Dtype::fp16 || leading) {
      if (dtype_ != Dtype::fp16) ++s_.kept_fp16;
      std::size_t clamped = 0;
      const std::string w16 = add_init(w.name + "_fp16", DataType::float16, w.dims, to_half(values, &clamped));
      s_.clamped_to_fp16 += clamped;
      const std::string wf = unique(w16 + "_cast");
      nodes_.push_back(make_node("Cast", {w16}, {wf}, unique(base + "_weight_cast"),
                                 {int_attribute("to", static_cast<int64_t>(DataType::float32))}));
      nodes_.push_back(make_node("MatMul", {x, wf}, {y}, n.name));
      return;
    }
    // 8-bit: rows weighed by E[x_k^2] when calibrated (E[(x_k / s_k)^2] after smoothing), else
    // equally; the weight rows of a smoothed input are multiplied by s_k.
    std::vector<float> imp;
    if (auto st = stats_.find(x); st != stats_.end() && static_cast<int64_t>(st->second.mean_square.size()) == K) {
      if (dtype_ != Dtype::q4) imp = st->second.mean_square;  // q4: no clipping (measured, README.md)
      if (auto sm = smooth_.find(x); sm != smooth_.end()) {
        for (int64_t k = 0; k < K; ++k) {
          const float sk = sm->second[static_cast<std::size_t>(k)];
          if (!imp.empty()) imp[k] /= sk * sk;
          for (int64_t j = 0; j < N; ++j) values[static_cast<std::size_t>(k * N + j)] *= sk;
        }
      }
      if (!imp.empty()) for (float& i : imp) i += 1e-12f;  // never exactly 0: every row counts a little
    }
    const std::vector<double>* h = gptq_hessian(x, K);
    GptqSettings gs;
    if (h) {
      ++s_.gptq;
      gs.h = *h;
      gs.damp = options_.gptq_damp;
      gs.act_order = options_.gptq_act_order;
    }
    const bool use_gptq = h != nullptr;
    // q4 files: a square weight (in a BERT encoder the attention projections Q, K, V and the output
    // dense, the matrices the worst sentences are sensitive to, measured) may stay 8-bit.
    const Q4Square square = dtype_ == Dtype::q4 && K == N ? options_.q4_square : Q4Square::four_bit;
    if (square == Q4Square::nbits_8bit) {
      Q8Blocks q = quantize_blocks_q8(values, K, N, kQ4Block, use_gptq ? &gs : nullptr);
      const int64_t nb = q.blocks_per_column;
      const std::string b = add_init(w.name + "_Q8", DataType::uint8, {N, nb, kQ4Block}, std::move(q.packed));
      const std::string sc = add_init(w.name + "_scales", DataType::float32, {N * nb}, std::move(q.scales));
      const std::string zp = add_init(w.name + "_zp", DataType::uint8, {N * nb}, std::move(q.zero_points));
      nodes_.push_back(make_node("MatMulNBits", {smoothed(x), b, sc, zp}, {y}, unique(base + "_Q8"),
                                 {int_attribute("K", K), int_attribute("N", N), int_attribute("bits", 8),
                                  int_attribute("block_size", kQ4Block)},
                                 "com.microsoft"));
      ++s_.eight_bit;
      return;
    }
    if (dtype_ == Dtype::q4 && square == Q4Square::four_bit) {
      Q4Blocks q = use_gptq ? quantize_blocks_q4_gptq(values, K, N, kQ4Block, imp, gs)
                     : quantize_blocks_q4(values, K, N, kQ4Block, imp);
      const int64_t nb = q.blocks_per_column;
      const std::string b = add_init(w.name + "_Q4", DataType::uint8, {N, nb, kQ4Block / 2}, std::move(q.packed));
      const std::string sc = add_init(w.name + "_scales", DataType::float32, {N * nb}, std::move(q.scales));
      const std::string zp = add_init(w.name + "_zp", DataType::uint8, {N * ((nb + 1) / 2)}, std::move(q.zero_points));
      nodes_.push_back(make_node("MatMulNBits", {smoothed(x), b, sc, zp}, {y}, unique(base + "_Q4"),
                                 {int_attribute("K", K), int_attribute("N", N), int_attribute("bits", 4),
                                  int_attribute("block_size", kQ4Block)},
                                 "com.microsoft"));
      return;
    }
    // q8 / uint8 / int8 (and q4's square weights with Q4Square::dynamic_8bit): ONNX Runtime's
    // dynamic pattern with per-column weight scales.
    if (square == Q4Square::dynamic_8bit) ++s_.eight_bit;
    std::string wq, ws, wz;
    if (dtype_ == Dtype::int8) {
      Int8Columns q = use_gptq ? quantize_columns_int8_gptq(values, K, N, imp, gs) : quantize_columns_int8(values, K, N, imp);
      wq = add_init(w.name + "_quantized", DataType::int8, {K, N}, std::move(q.q));
      ws = add_init(w.name + "_scale", DataType::float32, {N}, std::move(q.scale));
      wz = add_init(w.name + "_zero_point", DataType::int8, {N}, std::vector<int8_t>(static_cast<std::size_t>(N), 0));
    } else {
      Uint8Columns q = use_gptq ? quantize_columns_uint8_gptq(values, K, N, imp, gs) : quantize_columns_uint8(values, K, N, imp);
      wq = add_init(w.name + "_quantized", DataType::uint8, {K, N}, std::move(q.q));
      ws = add_init(w.name + "_scale", DataType::float32, {N}, std::move(q.scale));
      wz = add_init(w.name + "_zero_point", DataType::uint8, {N}, std::move(q.zero_point));
    }
    const Dql& d = dynamic_quantized(x);
    const std::string yi = unique(y + "_output_quantized");
    const std::string yf = unique(y + "_output_quantized_cast_output");
    const std::string scales = unique(base + "_quant_scales_mul:0");
    nodes_.push_back(make_node("MatMulInteger", {d.q, wq, d.zero_point, wz}, {yi}, unique(base + "_quant")));
    nodes_.push_back(make_node("Cast", {yi}, {yf}, unique(base + "_quant_output_scale_cast"),
                               {int_attribute("to", static_cast<int64_t>(DataType::float32))}));
    nodes_.push_back(make_node("Mul", {d.scale, ws}, {scales}, unique(base + "_quant_scales_mul")));
    nodes_.push_back(make_node("Mul", {yf, scales}, {y}, unique(base + "_quant_output_scale_mul")));
  }

  // GPTQ's H = X^T X for the MatMuls reading x (nullptr: not calibrated, or GPTQ off), from the
  // calibration rows of x divided by its smoothing scales (the weights were multiplied by them).
  // Kept for the next MatMul on the same input (Q, K and V share theirs): one K * K array at a time.
  const std::vector<double>* gptq_hessian(const std::string& x, int64_t K) {
    if (!gptq_wanted()) return nullptr;
    auto st = stats_.find(x);
    if (st == stats_.end() || st->second.rows.empty() || static_cast<int64_t>(st->second.mean_square.size()) != K)
      return nullptr;
    if (factor_input_ != x) {
      std::span<const float> scale;
      if (auto sm = smooth_.find(x); sm != smooth_.end()) scale = sm->second;
      factor_ = gram_matrix(st->second.rows, K, scale);
      factor_input_ = x;
    }
    return &factor_;
  }

  bool gptq_wanted() const { return dtype_ == Dtype::q4 ? options_.gptq_q4 : options_.gptq_8bit; }

  void rewrite_gather(const Node& n, const TensorData& table) {
    const int64_t V = table.dims[0], H = table.dims[1];
    const std::vector<float> values = floats_of(table);
    const std::string& y = n.outputs.at(0);
    const std::string base = n.name.empty() ? y : n.name;
    s_.weight_bytes_before += table.bytes.size();
    ++s_.gathers;
    if (dtype_ == Dtype::fp16 || options_.fp16_tables) {
      if (dtype_ != Dtype::fp16) ++s_.kept_fp16;
      std::size_t clamped = 0;
      const std::string t16 = add_init(table.name + "_fp16", DataType::float16, table.dims, to_half(values, &clamped));
      s_.clamped_to_fp16 += clamped;
      const std::string g16 = unique(y + "_fp16");
      nodes_.push_back(make_node("Gather", {t16, n.inputs[1]}, {g16}, n.name, n.attributes));
      nodes_.push_back(make_node("Cast", {g16}, {y}, unique(base + "_output_cast"),
                                 {int_attribute("to", static_cast<int64_t>(DataType::float32))}));
      return;
    }
    // uint8, one scale / zero point per hidden column ([V, H] as a [K=V, N=H] matrix).
    Uint8Columns q = quantize_columns_uint8(values, V, H, {});
    const std::string tq = add_init(table.name + "_quantized", DataType::uint8, table.dims, std::move(q.q));
    const std::string ts = add_init(table.name + "_scale", DataType::float32, {H}, std::move(q.scale));
    const std::string tz = add_init(table.name + "_zero_point", DataType::uint8, {H}, std::move(q.zero_point));
    const std::string gq = unique(y + "_output_quantized");
    nodes_.push_back(make_node("Gather", {tq, n.inputs[1]}, {gq}, unique(base + "_quant"), n.attributes));
    nodes_.push_back(make_node("DequantizeLinear", {gq, ts, tz}, {y}, unique(base + "_output_DequantizeLinear"),
                               {int_attribute("axis", -1)}));
  }

  const onnx::Model& in_;
  const Graph& g_;
  Dtype dtype_;
  QuantizeSummary& s_;
  const QuantizeOptions& options_;
  std::vector<double> factor_;  // gptq_hessian's last result, for factor_input_
  std::string factor_input_;
  std::set<std::string> names_;
  std::map<std::string, const TensorData*> inits_;
  std::map<std::string, std::size_t> producer_;
  std::map<std::string, Dql> dql_;
  std::map<std::string, ChannelStats> stats_;         // calibration: per MatMul input
  std::map<std::string, std::vector<float>> smooth_;  // smoothing scales s per MatMul input
  std::map<std::string, std::string> smoothed_;       // MatMul input -> the value to read (X or X / s)
  std::vector<Node> nodes_;
  std::vector<TensorData> new_inits_;
};

std::string describe_scheme(Dtype d, const QuantizeOptions& o) {
  const std::string table = o.fp16_tables ? "word embeddings float16" : "word embeddings uint8 per column";
  switch (d) {
    case Dtype::q8:
    case Dtype::uint8:
      return "uint8 weights, per-column scales and zero points (searched), dynamic uint8 activations "
             "(DynamicQuantizeLinear -> MatMulInteger); " + table;
    case Dtype::int8:
      return "int8 weights, symmetric per-column scales (searched), dynamic uint8 activations "
             "(DynamicQuantizeLinear -> MatMulInteger); " + table;
    case Dtype::q4:
      return "4-bit MatMulNBits, block 32 with zero points (searched); " + table;
    case Dtype::fp16:
      return "float16 weights behind Cast to float32 (compute in float32)";
    default: return "";
  }
}

}  // namespace

bool can_quantize_to(Dtype dtype) noexcept {
  return dtype == Dtype::q8 || dtype == Dtype::uint8 || dtype == Dtype::int8 || dtype == Dtype::q4 ||
         dtype == Dtype::fp16;
}

onnx::Model quantize_model(const onnx::Model& fp32, Dtype dtype, const QuantizeOptions& options,
                           QuantizeSummary* summary) {
  if (!can_quantize_to(dtype)) {
    throw Error(ErrorCode::unsupported, std::string("quantize: dtype ") + name_of(dtype) +
                                            " is not one leanembed writes (q8, uint8, int8, q4, fp16)");
  }
  if (dtype != Dtype::fp16 && fp32.opset() < 13) {
    throw Error(ErrorCode::unsupported, "quantize: '" + fp32.path + "' declares default-domain opset " +
                                            std::to_string(fp32.opset()) +
                                            "; the quantized forms need 13 or later (per-axis DequantizeLinear)");
  }
  QuantizeSummary local;
  QuantizeSummary& s = summary ? *summary : local;
  s = QuantizeSummary{};
  s.scheme = describe_scheme(dtype, options);
  onnx::Model out = Rewriter(fp32, dtype, options, s).run();
  if (s.calibration_tokens > 0) {
    s.scheme += "; calibrated on " + std::to_string(s.calibration_tokens) + " tokens (" +
                (dtype == Dtype::q4 ? std::string("no clipping") : std::string("importance-weighted search"));
    if (s.smoothed > 0) {
      s.scheme += ", " + std::to_string(s.smoothed) +
                  (dtype == Dtype::q4 ? " activations scaled per channel (activation-aware)" : " activations smoothed");
    }
    if (s.gptq > 0) s.scheme += ", GPTQ rounding on " + std::to_string(s.gptq) + " MatMuls";
    s.scheme += ")";
  }
  if (s.eight_bit > 0) {
    s.scheme += "; " + std::to_string(s.eight_bit) + " square (attention) weights kept 8-bit (" +
                (options.q4_square == Q4Square::nbits_8bit ? "MatMulNBits bits 8" : "uint8 per column, dynamic MatMulInteger") + ")";
  }
  if (dtype != Dtype::fp16 && options.fp16_leading_matmuls > 0) {
    s.scheme += "; the first " + std::to_string(std::min(options.fp16_leading_matmuls, s.matmuls)) +
                " MatMuls (the first layer's attention) keep float16 weights";
  }
  return out;
}

}  // namespace leanembed::quantize
