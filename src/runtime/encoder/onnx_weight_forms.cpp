#include "runtime/encoder/onnx_weight_forms.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/float16.h"

namespace leanembed::runtime::encoder {

const onnx::TensorData& OnnxWeightForms::constant(const std::string& value, const std::vector<int64_t>& dims,
                                                  const std::string& role, std::initializer_list<onnx::DataType> dtypes,
                                                  std::vector<int64_t>* actual) {
  std::string allowed;
  for (onnx::DataType d : dtypes) allowed += std::string(allowed.empty() ? "" : " or ") + onnx::data_type_name(d);
  const onnx::TensorData* t = g_.constant(value);
  if (!t) not_recognised(role + ": expected a constant " + allowed + " weight, found " + g_.describe_value(value));
  if (std::find(dtypes.begin(), dtypes.end(), t->dtype) == dtypes.end())
    not_recognised(role + ": weight '" + value + "' is " + onnx::data_type_name(t->dtype) + ", expected " + allowed);
  bool ok = t->dims.size() == dims.size();
  for (std::size_t i = 0; ok && i < dims.size(); ++i) ok = dims[i] < 0 || dims[i] == t->dims[i];
  if (!ok) not_recognised(role + ": weight '" + value + "' has shape " + dims_text(t->dims) + ", expected " + dims_text(dims));
  if (actual) *actual = t->dims;
  if (t->bytes.size() != static_cast<std::size_t>(t->numel()) * onnx::data_type_size(t->dtype))
    not_recognised(role + ": weight '" + value + "' has a wrong byte size");
  if (t->dtype == onnx::DataType::float16) saw_half_ = true;
  if (counted_.insert(t).second) w_.weight_bytes += t->bytes.size();
  keep(t->owner);
  return *t;
}

void OnnxWeightForms::keep(const std::shared_ptr<const void>& owner) {
  if (owner && owner_set_.insert(owner.get()).second) w_.owners.push_back(owner);
}

EmbeddingTable OnnxWeightForms::table(const std::string& value, const std::vector<int64_t>& dims, const std::string& role,
                                      std::vector<int64_t>* actual) {
  const onnx::TensorData& t = constant(value, dims, role, {onnx::DataType::float32, onnx::DataType::float16}, actual);
  EmbeddingTable table;
  table.encoding = t.dtype == onnx::DataType::float16 ? TableEncoding::fp16 : TableEncoding::fp32;
  table.bytes = t.bytes.data();
  table.size = t.numel();
  return table;
}

EmbeddingTable OnnxWeightForms::half_table(const onnx::Node& cast, const std::string& value, int64_t hidden,
                                           const std::string& role, std::vector<int64_t>* actual) {
  const onnx::Attribute* to = cast.attribute("to");
  if (!to || to->i != static_cast<int64_t>(onnx::DataType::float32))
    not_recognised(role + ": " + GraphIndex::describe(cast) + " should cast the looked-up rows to float");
  const onnx::TensorData& t = constant(value, {-1, hidden}, role + " (cast to float)", {onnx::DataType::float16}, actual);
  EmbeddingTable table;
  table.encoding = TableEncoding::fp16;
  table.bytes = t.bytes.data();
  table.size = t.numel();
  return table;
}

EmbeddingTable OnnxWeightForms::quantized_table(const onnx::Node& n, const std::string& value, int64_t H,
                                                const std::string& role, std::vector<int64_t>* actual) {
  const onnx::TensorData& q = constant(value, {-1, H}, role + " (quantized)", {onnx::DataType::uint8, onnx::DataType::int8}, actual);
  // One scale / zero point for the table, or one per column (axis -1 or 1, [hidden] values).
  const std::string where = role + ": " + GraphIndex::describe(n);
  const onnx::Attribute* axis = n.attribute("axis");
  const bool per_column_axis = !axis || axis->i == -1 || axis->i == 1;  // the default axis is 1
  const onnx::TensorData* scale = g_.constant(n.inputs.at(1));
  const bool per_tensor = scale && scale->numel() == 1 && scale->dims.size() <= 1;
  const bool per_column = scale && per_column_axis && scale->dims == std::vector<int64_t>{H};
  if (!scale || scale->dtype != onnx::DataType::float32 || !(per_tensor || per_column))
    not_recognised(where + " should have a constant fp32 scale per table or per column ([" + std::to_string(H) +
                   "], axis -1), found " + g_.describe_value(n.inputs[1]));
  constant(n.inputs[1], scale->dims, role + " scale", {onnx::DataType::float32}, nullptr);
  EmbeddingTable table;
  table.encoding = q.dtype == onnx::DataType::uint8 ? TableEncoding::uint8 : TableEncoding::int8;
  table.bytes = q.bytes.data();
  table.size = q.numel();
  auto int_at = [&](const onnx::TensorData& t, int64_t i) {
    return q.dtype == onnx::DataType::uint8 ? static_cast<int32_t>(static_cast<uint8_t>(t.bytes[i]))
                                            : static_cast<int32_t>(static_cast<int8_t>(t.bytes[i]));
  };
  std::vector<float> scales(static_cast<std::size_t>(scale->numel()));
  std::memcpy(scales.data(), scale->bytes.data(), scales.size() * sizeof(float));
  for (float f : scales)
    if (!(std::isfinite(f) && f > 0.0f)) not_recognised(where + " has a scale that is not positive");
  std::vector<int32_t> zero_points(scales.size(), 0);
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    const onnx::TensorData* zp = g_.constant(n.inputs[2]);
    if (!zp || zp->dtype != q.dtype || zp->dims != scale->dims)
      not_recognised(where + " should have constant zero points of the table's type shaped like its scale, found " +
                     g_.describe_value(n.inputs[2]));
    constant(n.inputs[2], zp->dims, role + " zero point", {q.dtype}, nullptr);
    for (std::size_t i = 0; i < zero_points.size(); ++i) zero_points[i] = int_at(*zp, static_cast<int64_t>(i));
  }
  if (n.inputs.size() > 3) not_recognised(where + " has more than 3 inputs");
  if (per_column && !per_tensor) {
    w_.bytes_copied += scales.size() * (sizeof(float) + sizeof(int32_t));
    table.column_scale = std::move(scales);
    table.column_zero_point = std::move(zero_points);
  } else {
    table.scale = scales[0];
    table.zero_point = zero_points[0];
  }
  return table;
}

// A view if aligned fp32, else a 64-byte-aligned copy (only with ReadOptions::copy_misaligned =
// false for fp32), counted in bytes_copied.
AlignedFloatView OnnxWeightForms::vector(const std::string& value, const std::vector<int64_t>& dims, const std::string& role) {
  const onnx::TensorData& t = constant(value, dims, role, {onnx::DataType::float32, onnx::DataType::float16}, nullptr);
  if (auto it = vectors_.find(value); it != vectors_.end()) return it->second;
  AlignedFloatView& view = vectors_[value];
  view.size = t.numel();
  if (t.dtype == onnx::DataType::float32 && t.aligned()) {
    view.data = t.as<float>().data();
    return view;
  }
  // A misaligned fp32 vector is copied; an fp16 one widened (exactly) into fp32.
  const std::size_t n = static_cast<std::size_t>(view.size) * sizeof(float);
  const std::size_t rounded = (n + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p) throw std::bad_alloc();
  if (t.dtype == onnx::DataType::float32) {
    std::memcpy(p, t.bytes.data(), n);
  } else {
    for (int64_t i = 0; i < view.size; ++i) static_cast<float*>(p)[i] = load_half(t.bytes.data() + 2 * i);
  }
  w_.owners.push_back(std::shared_ptr<const void>(p, [](const void* q) { std::free(const_cast<void*>(q)); }));
  w_.bytes_copied += n;
  view.data = static_cast<const float*>(p);
  return view;
}

float OnnxWeightForms::scalar(const std::string& value, const std::string& role) const {
  auto v = g_.constant_scalar(value);
  if (!v) not_recognised(role + ": expected a constant float scalar, found " + g_.describe_value(value));
  return static_cast<float>(*v);
}

LinearWeights OnnxWeightForms::float_linear(const std::string& weight, int64_t in, int64_t out, const std::string& role,
                                            bool cast_to_float) {
  std::vector<int64_t> dims;
  const onnx::TensorData& w =
      cast_to_float ? constant(weight, {in, out}, role + " weight (cast to float)", {onnx::DataType::float16}, &dims)
                    : constant(weight, {in, out}, role + " weight", {onnx::DataType::float32, onnx::DataType::float16}, &dims);
  LinearWeights l;
  l.in = dims[0];
  l.out = dims[1];
  if (w.dtype == onnx::DataType::float16) {
    l.encoding = LinearEncoding::fp16;
    l.f16 = {w.bytes.data(), dims[0], dims[1]};
  } else {
    l.encoding = LinearEncoding::fp32;
    l.weight = {w.bytes.data(), w.numel()};
  }
  return l;
}

// Wq: uint8/int8 [in, out]; Wscale: fp32, 1 or `out` values; Wzp: Wq's type, 1 or `out` values, or absent.
LinearWeights OnnxWeightForms::int8_linear(const onnx::Node& mmi, const std::string& wscale, int64_t in, int64_t out_dim,
                                           const std::string& role) {
  std::vector<int64_t> dims;
  const onnx::TensorData& w = constant(mmi.inputs[1], {in, out_dim}, role + " quantized weight (MatMulInteger B)",
                                       {onnx::DataType::uint8, onnx::DataType::int8}, &dims);
  const int64_t n = dims[1];
  kernels::Int8WeightsView v;
  v.data = w.bytes.data();
  v.is_signed = w.dtype == onnx::DataType::int8;
  v.k = dims[0];
  v.n = n;
  // A per-tensor ([] or [1]) or per-column ([out]) constant of `dtype`.
  auto per_tensor_or_column = [&](const std::string& value, onnx::DataType dtype, const std::string& what) {
    const onnx::TensorData* t = g_.constant(value);
    if (!t) not_recognised(role + ": the " + what + " of " + GraphIndex::describe(mmi) + " is not a constant: " + g_.describe_value(value));
    if ((t->numel() != 1 || t->dims.size() > 1) && !(t->dims.size() == 1 && t->dims[0] == n))
      not_recognised(role + ": the " + what + " '" + value + "' of " + GraphIndex::describe(mmi) + " has shape " +
                     dims_text(t->dims) + ", expected one value or [" + std::to_string(n) + "]");
    return &constant(value, t->dims, role + " " + what, {dtype}, nullptr);
  };
  if (mmi.inputs.size() > 3 && !mmi.inputs[3].empty()) {
    const onnx::TensorData* zp = per_tensor_or_column(mmi.inputs[3], w.dtype, "weight zero point");
    v.zero_points = zp->bytes.data();
    v.zero_point_count = zp->numel();
  }
  const onnx::TensorData* scale = per_tensor_or_column(wscale, onnx::DataType::float32, "weight scale");
  for (int64_t i = 0; i < scale->numel(); ++i) {
    float f;
    std::memcpy(&f, scale->bytes.data() + i * 4, sizeof f);
    if (!std::isfinite(f)) not_recognised(role + ": the weight scale '" + wscale + "' holds a value that is not finite");
  }
  v.scales = scale->bytes.data();
  v.scale_count = scale->numel();
  LinearWeights l;
  l.encoding = LinearEncoding::int8;
  l.int8 = v;
  l.in = v.k;
  l.out = n;
  return l;
}

LinearWeights OnnxWeightForms::q4_linear(const onnx::Node& mm, int64_t in, int64_t out_dim, const std::string& role) {
  const std::string where = role + ": " + GraphIndex::describe(mm);
  auto attr = [&](const char* name) -> int64_t {
    const onnx::Attribute* a = mm.attribute(name);
    if (!a) not_recognised(where + " has no attribute " + name);
    return a->i;
  };
  const int64_t K = attr("K"), N = attr("N"), bits = attr("bits"), block = attr("block_size");
  if (bits != 4) not_recognised(where + " has bits " + std::to_string(bits) + "; only 4-bit MatMulNBits is recognised");
  if (block < 16 || (block & (block - 1)) != 0)
    not_recognised(where + " has block_size " + std::to_string(block) + ", expected a power of two >= 16");
  if (K <= 0 || N <= 0 || (in >= 0 && K != in) || (out_dim >= 0 && N != out_dim))
    not_recognised(where + " is K " + std::to_string(K) + " x N " + std::to_string(N) + ", expected " +
                   std::to_string(in) + " x " + std::to_string(out_dim) + " (-1 = any)");
  if (mm.inputs.size() < 3) not_recognised(where + " has " + std::to_string(mm.inputs.size()) + " inputs, expected at least 3");
  if (mm.inputs.size() > 4 && !mm.inputs[4].empty())
    not_recognised(where + " has a g_idx input (act-order block mapping), not recognised");
  if (mm.inputs.size() > 5 && !mm.inputs[5].empty())
    not_recognised(where + " has a bias input; the bias should be a following Add");
  if (mm.inputs.size() > 6) not_recognised(where + " has more than 6 inputs");
  if (K <= 0 || N <= 0 || K > (int64_t{1} << 31) || N > (int64_t{1} << 31))
    not_recognised(where + " has K " + std::to_string(K) + " and N " + std::to_string(N) + ", expected 1 .. 2^31 each");
  const int64_t blocks = K / block + (K % block != 0);
  const onnx::TensorData& packed = constant(mm.inputs[1], {N, blocks, block / 2}, role + " 4-bit weight", {onnx::DataType::uint8}, nullptr);
  const onnx::TensorData& scales = constant(mm.inputs[2], {-1}, role + " block scales", {onnx::DataType::float32}, nullptr);
  if (scales.numel() != N * blocks && !(scales.dims.size() == 2 && scales.dims[0] == N && scales.dims[1] == blocks))
    not_recognised(role + ": the block scales '" + mm.inputs[2] + "' have shape " + dims_text(scales.dims) + ", expected [" +
                   std::to_string(N * blocks) + "]");
  for (int64_t i = 0; i < scales.numel(); ++i) {
    float f;
    std::memcpy(&f, scales.bytes.data() + i * 4, sizeof f);
    if (!std::isfinite(f)) not_recognised(role + ": the block scales '" + mm.inputs[2] + "' hold a value that is not finite");
  }
  kernels::BlockQ4WeightsView v;
  v.packed = reinterpret_cast<const uint8_t*>(packed.bytes.data());
  v.scales = scales.bytes.data();
  v.k = K;
  v.n = N;
  v.block_size = block;
  if (mm.inputs.size() > 3 && !mm.inputs[3].empty()) {
    const onnx::TensorData* zp = g_.constant(mm.inputs[3]);
    if (zp && zp->dtype != onnx::DataType::uint8)
      not_recognised(where + " has zero points of type " + std::string(onnx::data_type_name(zp->dtype)) +
                     "; only packed 4-bit (uint8) zero points are recognised");
    constant(mm.inputs[3], {N * ((blocks + 1) / 2)}, role + " 4-bit zero points", {onnx::DataType::uint8}, nullptr);
    v.zero_points = reinterpret_cast<const uint8_t*>(g_.constant(mm.inputs[3])->bytes.data());
  }
  LinearWeights l;
  l.encoding = LinearEncoding::q4;
  l.q4 = v;
  l.in = K;
  l.out = N;
  return l;
}

std::string describe_weight_form(const EncoderWeights& w) {
  std::vector<std::string> forms;
  auto add = [&](const std::string& f) {
    if (std::find(forms.begin(), forms.end(), f) == forms.end()) forms.push_back(f);
  };
  for (const EncoderLayerWeights& l : w.layers)
    for (const LinearWeights* lin : {&l.query, &l.key, &l.value, &l.attention_output, &l.ffn_in, &l.ffn_out}) {
      switch (lin->encoding) {
        case LinearEncoding::fp32: add("fp32"); break;
        case LinearEncoding::fp16: add("fp16"); break;
        case LinearEncoding::q4: add("q4 (block " + std::to_string(lin->q4.block_size) + ")"); break;
        case LinearEncoding::int8:
          add(std::string("int8 (") + (lin->int8.is_signed ? "int8" : "uint8") + " weights, " +
              (lin->int8.scale_count > 1 ? "per-column" : "per-tensor") + " scales)");
          break;
      }
    }
  const TableEncoding word = w.word_embeddings.encoding;
  if ((word == TableEncoding::uint8 || word == TableEncoding::int8) &&
      std::none_of(forms.begin(), forms.end(), [](const std::string& f) { return f.rfind("int8", 0) == 0; }))
    add("8-bit word table");
  std::string s;
  for (const auto& f : forms) s += (s.empty() ? "" : " + ") + f;
  return s;
}

}  // namespace leanembed::runtime::encoder
