// A tiny protobuf writer for building ONNX models in tests (test-only; the library only reads).
// Messages are built bottom-up: fill a Proto, then embed it in its parent with message().
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace leanembed::test {

class Proto {
 public:
  // Wire-level writers. Field numbers and wire types are written exactly as asked, so tests can also
  // produce malformed messages.
  Proto& key(uint32_t field, uint32_t wire_type) { return raw_varint((uint64_t{field} << 3) | wire_type); }
  Proto& raw_varint(uint64_t v) {
    do {
      uint8_t b = v & 0x7f;
      v >>= 7;
      if (v != 0) b |= 0x80;
      buf_.push_back(static_cast<char>(b));
    } while (v != 0);
    return *this;
  }
  Proto& raw_bytes(std::string_view b) {
    buf_.append(b);
    return *this;
  }

  Proto& varint(uint32_t field, uint64_t v) { return key(field, 0).raw_varint(v); }
  Proto& int64(uint32_t field, int64_t v) { return varint(field, static_cast<uint64_t>(v)); }
  Proto& fixed32(uint32_t field, uint32_t bits) {
    key(field, 5);
    for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
    return *this;
  }
  Proto& float32(uint32_t field, float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    return fixed32(field, bits);
  }
  Proto& fixed64(uint32_t field, uint64_t bits) {
    key(field, 1);
    for (int i = 0; i < 8; ++i) buf_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
    return *this;
  }
  Proto& bytes(uint32_t field, std::string_view b) { return key(field, 2).raw_varint(b.size()).raw_bytes(b); }
  Proto& message(uint32_t field, const Proto& m) { return bytes(field, m.str()); }
  Proto& packed_varints(uint32_t field, std::initializer_list<int64_t> vs) {
    Proto p;
    for (int64_t v : vs) p.raw_varint(static_cast<uint64_t>(v));
    return bytes(field, p.str());
  }
  Proto& packed_floats(uint32_t field, std::initializer_list<float> vs) {
    std::string b(vs.size() * 4, '\0');
    std::memcpy(b.data(), std::data(vs), b.size());
    return bytes(field, b);
  }

  const std::string& str() const { return buf_; }
  std::size_t size() const { return buf_.size(); }

 private:
  std::string buf_;
};

// ---- ONNX builders (field numbers from onnx.proto) ----------------------------------------------

// Raw little-endian bytes of a few values.
template <typename T>
std::string le_bytes(std::initializer_list<T> vs) {
  std::string b(vs.size() * sizeof(T), '\0');
  std::memcpy(b.data(), std::data(vs), b.size());
  return b;
}

// TensorProto with dims, data_type and name; add the data field yourself.
inline Proto tensor_header(const std::string& name, int32_t data_type, std::initializer_list<int64_t> dims) {
  Proto t;
  for (int64_t d : dims) t.int64(1, d);
  t.varint(2, static_cast<uint64_t>(data_type));
  t.bytes(8, name);
  return t;
}

inline Proto raw_tensor(const std::string& name, int32_t data_type, std::initializer_list<int64_t> dims,
                        const std::string& raw) {
  return tensor_header(name, data_type, dims).bytes(9, raw);
}

// ValueInfoProto of a tensor; dims >= 0 are fixed, -1 means a symbolic dim named "N".
inline Proto value_info(const std::string& name, int32_t elem_type, std::initializer_list<int64_t> dims) {
  Proto shape;
  for (int64_t d : dims) {
    Proto dim;
    if (d >= 0) dim.int64(1, d);
    else dim.bytes(2, "N");
    shape.message(1, dim);
  }
  Proto tensor_type;
  tensor_type.varint(1, static_cast<uint64_t>(elem_type)).message(2, shape);
  Proto type;
  type.message(1, tensor_type);
  Proto vi;
  vi.bytes(1, name).message(2, type);
  return vi;
}

inline Proto node(const std::string& op, std::initializer_list<std::string> inputs,
                  std::initializer_list<std::string> outputs, const std::string& name = "") {
  Proto n;
  for (const auto& i : inputs) n.bytes(1, i);
  for (const auto& o : outputs) n.bytes(2, o);
  if (!name.empty()) n.bytes(3, name);
  n.bytes(4, op);
  return n;
}

inline Proto int_attribute(const std::string& name, int64_t v) {
  Proto a;
  a.bytes(1, name).varint(20, 2).int64(3, v);
  return a;
}

inline Proto model(const Proto& graph, int64_t opset = 14, int64_t ir_version = 7) {
  Proto opset_id;
  opset_id.bytes(1, "").int64(2, opset);
  Proto m;
  m.int64(1, ir_version).bytes(2, "proto_writer").message(8, opset_id).message(7, graph);
  return m;
}

// A small valid model: y = Add(x, w) with w a float32 [2] initializer {1.5, -2}, plus a Relu.
inline Proto small_graph() {
  Proto g;
  g.message(1, node("Add", {"x", "w"}, {"s"}, "add"));
  g.message(1, node("Relu", {"s"}, {"y"}, "relu"));
  g.bytes(2, "small");
  g.message(5, raw_tensor("w", 1, {2}, le_bytes<float>({1.5f, -2.0f})));
  g.message(11, value_info("x", 1, {-1, 2}));
  g.message(12, value_info("y", 1, {-1, 2}));
  return g;
}

}  // namespace leanembed::test
