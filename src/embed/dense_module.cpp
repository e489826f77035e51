#include "embed/dense_module.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/float16.h"
#include "leanembed/error.h"

namespace leanembed {
namespace {

using nlohmann::json;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::io, "cannot read '" + path + "'");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error(ErrorCode::io, "cannot read '" + path + "'");
  return s.str();
}

// One tensor of a safetensors file, widened to float, checked against the expected shape.
std::vector<float> tensor(const json& header, const std::string& bytes, std::size_t data_begin, const std::string& name,
                          const std::vector<int64_t>& shape, const std::string& file) {
  auto bad = [&](const std::string& what) {
    throw Error(ErrorCode::model_format, "'" + file + "': tensor \"" + name + "\" " + what);
  };
  auto it = header.find(name);
  if (it == header.end()) bad("is missing (a sentence-transformers Dense module stores linear.weight and linear.bias)");
  if (!it->is_object() || !it->contains("dtype") || !(*it)["dtype"].is_string() || !it->contains("shape") ||
      !(*it)["shape"].is_array() || !it->contains("data_offsets") || !(*it)["data_offsets"].is_array() ||
      (*it)["data_offsets"].size() != 2) {
    bad("has no dtype / shape / data_offsets entry");
  }
  std::vector<int64_t> got;
  for (const auto& d : (*it)["shape"]) {
    if (!d.is_number_unsigned()) bad("has a shape that is not a list of sizes");
    got.push_back(static_cast<int64_t>(std::min<uint64_t>(d.get<uint64_t>(), uint64_t{1} << 40)));
  }
  if (got != shape) {
    std::string want, have;
    for (int64_t d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
    for (int64_t d : got) have += (have.empty() ? "" : ", ") + std::to_string(d);
    bad("has shape [" + have + "], expected [" + want + "] (from the module's config.json)");
  }
  const std::string dtype = (*it)["dtype"].get<std::string>();
  const std::size_t width = dtype == "F32" ? 4 : (dtype == "F16" || dtype == "BF16") ? 2 : 0;
  if (width == 0) {
    throw Error(ErrorCode::unsupported, "'" + file + "': tensor \"" + name + "\" has dtype " + dtype +
                                            "; Dense weights are read as F32, F16 or BF16");
  }
  const auto& off = (*it)["data_offsets"];
  if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) bad("has data_offsets that are not byte offsets");
  const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
  std::size_t count = 1;
  for (int64_t d : shape) count *= static_cast<std::size_t>(d);
  const uint64_t available = bytes.size() - data_begin;
  if (b > e || e > available || e - b != count * width) {
    bad("has data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "] that do not hold " +
        std::to_string(count) + " " + dtype + " values within the file's " + std::to_string(available) + " data bytes");
  }
  std::vector<float> v(count);
  const char* p = bytes.data() + data_begin + b;
  for (std::size_t i = 0; i < count; ++i) {
    if (width == 4) {
      std::memcpy(&v[i], p + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      v[i] = dtype == "F16" ? half_to_float(h) : bfloat16_to_float(h);
    }
    if (!std::isfinite(v[i])) bad("holds a non-finite value at index " + std::to_string(i));
  }
  return v;
}

}  // namespace

DenseLayer load_dense_layer(const DenseModuleInfo& info) {
  const std::string& file = info.weights_file;
  const std::string bytes = read_all(file);
  if (bytes.size() < 8) throw Error(ErrorCode::model_format, "'" + file + "' is too short for a safetensors file");
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(k)]);
  if (n > bytes.size() - 8 || n > (uint64_t{100} << 20)) {
    throw Error(ErrorCode::model_format, "'" + file + "': safetensors header length " + std::to_string(n) +
                                             " is beyond the file's " + std::to_string(bytes.size()) + " bytes");
  }
  const std::string_view text(bytes.data() + 8, static_cast<std::size_t>(n));
  int depth = 0;
  for (char c : text) {
    if ((c == '{' || c == '[') && ++depth > 16) throw Error(ErrorCode::model_format, "'" + file + "': header nested too deep");
    if (c == '}' || c == ']') --depth;
  }
  const json header = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    throw Error(ErrorCode::model_format, "'" + file + "': the safetensors header is not a JSON object");
  }
  DenseLayer layer;
  layer.info = info;
  const std::size_t data_begin = 8 + static_cast<std::size_t>(n);
  layer.weight = tensor(header, bytes, data_begin, "linear.weight", {info.out_features, info.in_features}, file);
  if (info.bias) layer.bias = tensor(header, bytes, data_begin, "linear.bias", {info.out_features}, file);
  return layer;
}

void apply_dense(const DenseLayer& layer, std::span<const float> x, std::span<float> y) {
  const auto in = static_cast<std::size_t>(layer.info.in_features), out = static_cast<std::size_t>(layer.info.out_features);
  if (x.size() != in || y.size() != out) {
    throw Error(ErrorCode::invalid_argument, "apply_dense: sizes " + std::to_string(x.size()) + " -> " +
                                                 std::to_string(y.size()) + ", expected " + std::to_string(in) + " -> " +
                                                 std::to_string(out));
  }
  for (std::size_t o = 0; o < out; ++o) {
    const float* w = layer.weight.data() + o * in;
    double s = layer.bias.empty() ? 0.0 : layer.bias[o];
    for (std::size_t i = 0; i < in; ++i) s += static_cast<double>(w[i]) * x[i];
    switch (layer.info.activation) {
      case DenseActivation::identity: break;
      case DenseActivation::tanh: s = std::tanh(s); break;
      case DenseActivation::relu: s = s > 0 ? s : 0; break;
      case DenseActivation::sigmoid: s = 1.0 / (1.0 + std::exp(-s)); break;
      case DenseActivation::gelu: s = 0.5 * s * (1.0 + std::erf(s / std::sqrt(2.0))); break;
    }
    y[o] = static_cast<float>(s);
  }
}

}  // namespace leanembed
