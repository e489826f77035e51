#include "embed/model_fingerprint.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "cache/blake2b.h"
#include "core/mapped_file.h"

namespace leanembed {
namespace {

class Hasher {
 public:
  explicit Hasher(const onnx::Model& model) : model_(model), hash_(32) {}

  void u64(std::uint64_t v) {
    std::uint8_t le[8];
    for (int i = 0; i < 8; ++i) le[i] = static_cast<std::uint8_t>(v >> (8 * i));
    hash_.update(le, sizeof le);
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void str(const std::string& s) {
    u64(s.size());
    hash_.update(s.data(), s.size());
  }
  void tag(const char* t) { str(t); }

  void value_infos(const std::vector<onnx::ValueInfo>& list) {
    u64(list.size());
    for (const auto& v : list) {
      str(v.name);
      i64(static_cast<std::int64_t>(v.elem_type));
      u64(v.has_shape ? v.shape.size() + 1 : 0);
      for (const auto& d : v.shape) {
        i64(d.value);
        str(d.param);
      }
    }
  }

  // A tensor's bytes: from the file that holds them (pread through its descriptor) when they are a
  // view of a mapping, else from memory.
  void tensor(const onnx::TensorData& t) {
    str(t.name);
    i64(static_cast<std::int64_t>(t.dtype));
    u64(t.dims.size());
    for (std::int64_t d : t.dims) i64(d);
    u64(t.bytes.size());
    if (t.bytes.empty()) return;
    const auto begin = reinterpret_cast<std::uintptr_t>(t.bytes.data());
    for (const auto& file : model_.source_files) {
      if (!file || file->size() == 0) continue;
      const auto base = reinterpret_cast<std::uintptr_t>(file->bytes().data());
      if (begin < base || begin - base > file->size() || t.bytes.size() > file->size() - (begin - base)) continue;
      buffer_.resize(std::min<std::size_t>(t.bytes.size(), std::size_t{1} << 20));
      for (std::size_t at = 0; at < t.bytes.size(); at += buffer_.size()) {
        const std::span<std::byte> chunk(buffer_.data(), std::min(buffer_.size(), t.bytes.size() - at));
        file->read(begin - base + at, chunk);
        hash_.update(chunk);
      }
      return;
    }
    hash_.update(t.bytes);
  }

  void attribute(const onnx::Attribute& a) {
    str(a.name);
    i64(static_cast<std::int64_t>(a.type));
    u64(std::bit_cast<std::uint32_t>(a.f));
    i64(a.i);
    str(a.s);
    tensor(a.t);
    u64(a.floats.size());
    for (float f : a.floats) u64(std::bit_cast<std::uint32_t>(f));
    u64(a.ints.size());
    for (std::int64_t i : a.ints) i64(i);
    u64(a.strings.size());
    for (const auto& s : a.strings) str(s);
    u64(a.g ? 1 : 0);
    if (a.g) graph(*a.g);
    u64(a.tensors.size());
    for (const auto& t : a.tensors) tensor(t);
    u64(a.graphs.size());
    for (const auto& g : a.graphs)
      if (g) graph(*g);
  }

  void graph(const onnx::Graph& g) {
    tag("graph");
    value_infos(g.inputs);
    value_infos(g.outputs);
    std::set<std::string> used;
    u64(g.nodes.size());
    for (const auto& n : g.nodes) {
      str(n.op_type);
      str(n.domain);
      u64(n.inputs.size());
      for (const auto& i : n.inputs) {
        str(i);
        used.insert(i);
      }
      u64(n.outputs.size());
      for (const auto& o : n.outputs) str(o);
      u64(n.attributes.size());
      for (const auto& a : n.attributes) {
        attribute(a);
        if (a.g) names_used_inside(*a.g, used);
        for (const auto& sub : a.graphs)
          if (sub) names_used_inside(*sub, used);
      }
    }
    for (const auto& o : g.outputs) used.insert(o.name);
    tag("initializers");
    for (const auto& t : g.initializers) {
      if (used.count(t.name)) tensor(t);
    }
  }

  ModelFingerprint finish() {
    ModelFingerprint out{};
    hash_.finish(std::as_writable_bytes(std::span(out)));
    return out;
  }

 private:
  // Names a subgraph reads from its enclosing scopes (initializers of this graph among them).
  static void names_used_inside(const onnx::Graph& g, std::set<std::string>& used) {
    for (const auto& n : g.nodes) {
      for (const auto& i : n.inputs) used.insert(i);
      for (const auto& a : n.attributes) {
        if (a.g) names_used_inside(*a.g, used);
        for (const auto& sub : a.graphs)
          if (sub) names_used_inside(*sub, used);
      }
    }
  }

  const onnx::Model& model_;
  cache::Blake2b hash_;
  std::vector<std::byte> buffer_;
};

}  // namespace

ModelFingerprint model_fingerprint(const onnx::Model& model) {
  Hasher h(model);
  h.tag("leanembed-model-fingerprint-v1");
  h.i64(model.ir_version);
  h.u64(model.opset_imports.size());
  for (const auto& [domain, version] : model.opset_imports) {
    h.str(domain);
    h.i64(version);
  }
  h.graph(model.graph);
  return h.finish();
}

ModelFingerprint model_fingerprint(const MappedFile& safetensors_file) {
  cache::Blake2b hash(32);
  const std::string tag = "leanembed-safetensors-fingerprint-v1";
  hash.update(tag.data(), tag.size());
  std::vector<std::byte> buffer(std::min<std::size_t>(std::max<std::size_t>(safetensors_file.size(), 1), std::size_t{1} << 20));
  for (std::size_t at = 0; at < safetensors_file.size(); at += buffer.size()) {
    const std::span<std::byte> chunk(buffer.data(), std::min(buffer.size(), safetensors_file.size() - at));
    safetensors_file.read(at, chunk);
    hash.update(chunk);
  }
  ModelFingerprint out{};
  hash.finish(std::as_writable_bytes(std::span(out)));
  return out;
}

}  // namespace leanembed
