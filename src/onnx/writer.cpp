// onnx::Model -> protobuf wire format. Field numbers are those of onnx.proto (ONNX 1.12), the same
// the reader walks (reader.cpp).
//
// Every message is emitted by one function template over an output "sink": a Counter (only adds up
// sizes) or a real output. A length-delimited sub-message is first emitted into a Counter to learn
// its size, then for real; nesting is shallow (model > graph > node > attribute > tensor), and the
// counting pass never reads tensor bytes, so this costs little beside the copy of the bytes.
#include "onnx/writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "leanembed/error.h"

namespace leanembed::onnx {
namespace {

enum : uint32_t { kVarint = 0, kFixed32 = 5, kBytes = 2 };

struct Counter {
  std::size_t n = 0;
  void put(const void*, std::size_t len) { n += len; }
};

struct VectorOut {
  std::vector<std::byte>& v;
  void put(const void* p, std::size_t len) {
    const auto* b = static_cast<const std::byte*>(p);
    v.insert(v.end(), b, b + len);
  }
};

// Buffered writes to a FILE*; the first failure is remembered (errno) and later writes are dropped.
class FileOut {
 public:
  FileOut(std::FILE* f, std::string path) : f_(f), path_(std::move(path)) { buffer_.reserve(kBuffer); }
  void put(const void* p, std::size_t len) {
    const auto* b = static_cast<const char*>(p);
    if (len >= kBuffer) {
      flush();
      write(b, len);
      return;
    }
    if (buffer_.size() + len > kBuffer) flush();
    buffer_.insert(buffer_.end(), b, b + len);
  }
  void flush() {
    write(buffer_.data(), buffer_.size());
    buffer_.clear();
  }
  int error() const { return error_; }
  std::size_t written() const { return written_; }

 private:
  static constexpr std::size_t kBuffer = 1 << 20;
  void write(const char* p, std::size_t len) {
    if (error_ || len == 0) return;
    if (std::fwrite(p, 1, len, f_) != len) error_ = errno ? errno : EIO;
    written_ += len;
  }
  std::FILE* f_;
  std::string path_;
  std::vector<char> buffer_;
  int error_ = 0;
  std::size_t written_ = 0;
};

template <typename Out>
void varint(Out& o, uint64_t v) {
  unsigned char buf[10];
  std::size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<unsigned char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<unsigned char>(v);
  o.put(buf, n);
}

template <typename Out>
void key(Out& o, uint32_t field, uint32_t wire_type) {
  varint(o, (static_cast<uint64_t>(field) << 3) | wire_type);
}

// int64 fields: negative values are ten-byte two's-complement varints (proto int64, not sint64).
template <typename Out>
void int_field(Out& o, uint32_t field, int64_t v) {
  key(o, field, kVarint);
  varint(o, static_cast<uint64_t>(v));
}

template <typename Out>
void float_field(Out& o, uint32_t field, float v) {
  key(o, field, kFixed32);
  unsigned char b[4];
  std::memcpy(b, &v, 4);  // little-endian hosts only (as the reader)
  o.put(b, 4);
}

template <typename Out>
void bytes_field(Out& o, uint32_t field, const void* p, std::size_t len) {
  key(o, field, kBytes);
  varint(o, len);
  o.put(p, len);
}

template <typename Out>
void string_field(Out& o, uint32_t field, const std::string& s) {
  bytes_field(o, field, s.data(), s.size());
}

// A length-delimited sub-message whose content `body(sink)` emits.
template <typename Out, typename Body>
void message_field(Out& o, uint32_t field, Body&& body) {
  Counter c;
  body(c);
  key(o, field, kBytes);
  varint(o, c.n);
  body(o);
}

template <typename Out>
void emit_graph(Out& o, const Graph& g);

// TensorProto: dims 1, data_type 2, name 8, raw_data 9.
template <typename Out>
void emit_tensor(Out& o, const TensorData& t) {
  for (int64_t d : t.dims) int_field(o, 1, d);
  int_field(o, 2, static_cast<int32_t>(t.dtype));
  if (!t.name.empty()) string_field(o, 8, t.name);
  bytes_field(o, 9, t.bytes.data(), t.bytes.size());
}

// AttributeProto: name 1, f 2, i 3, s 4, t 5, g 6, floats 7, ints 8, strings 9, tensors 10,
// graphs 11, type 20.
template <typename Out>
void emit_attribute(Out& o, const Attribute& a) {
  string_field(o, 1, a.name);
  switch (a.type) {
    case AttributeType::floating: float_field(o, 2, a.f); break;
    case AttributeType::integer: int_field(o, 3, a.i); break;
    case AttributeType::string: string_field(o, 4, a.s); break;
    case AttributeType::tensor: message_field(o, 5, [&](auto& s) { emit_tensor(s, a.t); }); break;
    case AttributeType::graph: message_field(o, 6, [&](auto& s) { emit_graph(s, *a.g); }); break;
    case AttributeType::floats:
      for (float f : a.floats) float_field(o, 7, f);
      break;
    case AttributeType::integers:
      for (int64_t i : a.ints) int_field(o, 8, i);
      break;
    case AttributeType::strings:
      for (const auto& s : a.strings) string_field(o, 9, s);
      break;
    case AttributeType::tensors:
      for (const auto& t : a.tensors) message_field(o, 10, [&](auto& s) { emit_tensor(s, t); });
      break;
    case AttributeType::graphs:
      for (const auto& g : a.graphs) message_field(o, 11, [&](auto& s) { emit_graph(s, *g); });
      break;
    case AttributeType::undefined: break;
  }
  int_field(o, 20, static_cast<int32_t>(a.type));
}

// NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7.
template <typename Out>
void emit_node(Out& o, const Node& n) {
  for (const auto& i : n.inputs) string_field(o, 1, i);
  for (const auto& out : n.outputs) string_field(o, 2, out);
  if (!n.name.empty()) string_field(o, 3, n.name);
  string_field(o, 4, n.op_type);
  for (const auto& a : n.attributes) message_field(o, 5, [&](auto& s) { emit_attribute(s, a); });
  if (!n.domain.empty()) string_field(o, 7, n.domain);
}

// ValueInfoProto: name 1, type 2 { tensor_type 1 { elem_type 1, shape 2 { dim 1 { dim_value 1 |
// dim_param 2 } } } }.
template <typename Out>
void emit_value_info(Out& o, const ValueInfo& v) {
  string_field(o, 1, v.name);
  if (v.elem_type == DataType::undefined && !v.has_shape) return;
  message_field(o, 2, [&](auto& type) {
    message_field(type, 1, [&](auto& tensor_type) {
      if (v.elem_type != DataType::undefined) int_field(tensor_type, 1, static_cast<int32_t>(v.elem_type));
      if (!v.has_shape) return;
      message_field(tensor_type, 2, [&](auto& shape) {
        for (const Dim& d : v.shape) {
          message_field(shape, 1, [&](auto& dim) {
            if (d.value >= 0) int_field(dim, 1, d.value);
            else if (!d.param.empty()) string_field(dim, 2, d.param);
          });
        }
      });
    });
  });
}

// GraphProto: node 1, name 2, initializer 5, input 11, output 12, value_info 13.
template <typename Out>
void emit_graph(Out& o, const Graph& g) {
  for (const auto& n : g.nodes) message_field(o, 1, [&](auto& s) { emit_node(s, n); });
  if (!g.name.empty()) string_field(o, 2, g.name);
  for (const auto& t : g.initializers) message_field(o, 5, [&](auto& s) { emit_tensor(s, t); });
  for (const auto& v : g.inputs) message_field(o, 11, [&](auto& s) { emit_value_info(s, v); });
  for (const auto& v : g.outputs) message_field(o, 12, [&](auto& s) { emit_value_info(s, v); });
  for (const auto& v : g.value_info) message_field(o, 13, [&](auto& s) { emit_value_info(s, v); });
}

// ModelProto: ir_version 1, producer_name 2, producer_version 3, graph 7, opset_import 8
// { domain 1, version 2 }.
template <typename Out>
void emit_model(Out& o, const Model& m) {
  int_field(o, 1, m.ir_version);
  if (!m.producer_name.empty()) string_field(o, 2, m.producer_name);
  if (!m.producer_version.empty()) string_field(o, 3, m.producer_version);
  message_field(o, 7, [&](auto& s) { emit_graph(s, m.graph); });
  for (const auto& opset : m.opset_imports) {  // (no structured bindings: clang 14 cannot capture them)
    message_field(o, 8, [&](auto& s) {
      if (!opset.first.empty()) string_field(s, 1, opset.first);
      int_field(s, 2, opset.second);
    });
  }
}

void check_tensor(const TensorData& t, const std::string& where) {
  const std::size_t size = data_type_size(t.dtype);
  if (size == 0) {
    throw Error(ErrorCode::invalid_argument, where + " '" + t.name + "': data type " + data_type_name(t.dtype) +
                                                 " cannot be written as raw_data");
  }
  int64_t n = 1;
  for (int64_t d : t.dims) {
    if (d < 0) throw Error(ErrorCode::invalid_argument, where + " '" + t.name + "': negative dim " + std::to_string(d));
    if (__builtin_mul_overflow(n, d, &n))
      throw Error(ErrorCode::invalid_argument, where + " '" + t.name + "': the element count overflows");
  }
  if (static_cast<std::size_t>(n) * size != t.bytes.size()) {
    throw Error(ErrorCode::invalid_argument, where + " '" + t.name + "': " + std::to_string(t.bytes.size()) +
                                                 " bytes for " + std::to_string(n) + " elements of " +
                                                 data_type_name(t.dtype));
  }
}

void check_graph(const Graph& g, const std::string& where) {
  for (const auto& t : g.initializers) check_tensor(t, where + " initializer");
  for (const auto& n : g.nodes) {
    for (const auto& a : n.attributes) {
      const std::string at = where + " node '" + n.name + "' attribute '" + a.name + "'";
      if (a.type == AttributeType::tensor) check_tensor(a.t, at);
      for (const auto& t : a.tensors) check_tensor(t, at);
      if (a.type == AttributeType::graph && !a.g)
        throw Error(ErrorCode::invalid_argument, at + ": GRAPH attribute without a graph");
      if (a.g) check_graph(*a.g, at);
      for (const auto& sub : a.graphs) {
        if (!sub) throw Error(ErrorCode::invalid_argument, at + ": empty graph in GRAPHS");
        check_graph(*sub, at);
      }
    }
  }
}

}  // namespace

std::vector<std::byte> serialize_model(const Model& model) {
  check_graph(model.graph, "graph");
  Counter c;
  emit_model(c, model);
  std::vector<std::byte> bytes;
  bytes.reserve(c.n);
  VectorOut out{bytes};
  emit_model(out, model);
  return bytes;
}

std::size_t write_model(const Model& model, const std::string& path) {
  check_graph(model.graph, "graph");
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(ErrorCode::io, "cannot create '" + tmp + "': " + std::strerror(errno));
  FileOut out(f, tmp);
  emit_model(out, model);
  out.flush();
  int err = out.error();
  if (std::fflush(f) != 0 && !err) err = errno ? errno : EIO;
  if (!err && ::fsync(::fileno(f)) != 0) err = errno;
  if (std::fclose(f) != 0 && !err) err = errno ? errno : EIO;
  if (!err && std::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err) {
    std::remove(tmp.c_str());
    throw Error(ErrorCode::io, "cannot write '" + path + "': " + std::strerror(err));
  }
  return out.written();
}

}  // namespace leanembed::onnx
