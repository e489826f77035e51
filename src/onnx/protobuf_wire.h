// A minimal reader of the protobuf wire format (what the ONNX reader walks; no generated code).
//
// Wire format: a message is a sequence of fields; each starts with a varint key
// (field_number << 3 | wire_type), then the payload: a varint (type 0), 8 bytes (type 1), a varint
// length and that many bytes (type 2: strings, bytes, embedded messages, packed repeated scalars) or
// 4 bytes (type 5). Types 3/4 (groups, deprecated) are rejected; 6 and 7 do not exist.
//
// Fields are views into the input span (the Reader allocates nothing). Every malformed input (truncated
// varint or payload, over-long varint, field number 0, unknown wire type, group) throws
// Error(model_format) naming the message being read, `where`, and the byte offset in the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace leanembed::onnx::wire {

enum class WireType : uint8_t {
  varint = 0,
  fixed64 = 1,
  length_delimited = 2,
  start_group = 3,
  end_group = 4,
  fixed32 = 5,
};

const char* wire_type_name(WireType t) noexcept;

// One field of a message as it appears on the wire.
struct Field {
  uint32_t number = 0;
  WireType type = WireType::varint;
  uint64_t value = 0;                 // the varint (type 0) or the fixed32/fixed64 bits (types 5/1)
  std::span<const std::byte> bytes;   // the payload: a type-2 field's content; for types 0/1/5 the
                                      // encoded value's bytes (used for error offsets)
};

// Where errors say they happened: a label for the file and the address of its first byte, so
// offsets in messages are offsets in the file.
struct Source {
  std::string name;                   // e.g. the model path
  const std::byte* begin = nullptr;
};

// Iterates over the fields of one message. `where` names the message for errors (e.g.
// "graph.node[3]"); it must outlive the reader.
class Reader {
 public:
  Reader(std::span<const std::byte> message, const Source& source, const std::string& where)
      : data_(message), source_(source), where_(where) {}

  // Reads the next field into `field`; returns false at the end of the message.
  bool next(Field& field);

  // Throws Error(model_format) "<source>: <where>: <what> (at byte N)" for the current position.
  [[noreturn]] void fail(const std::string& what) const;

 private:
  uint64_t read_varint(const char* what);
  std::span<const std::byte> data_;
  std::size_t pos_ = 0;
  const Source& source_;
  const std::string& where_;
};

// Decodes one varint from bytes[pos...]; advances pos. Returns false if truncated or longer than
// 10 bytes / more than 64 bits (the caller reports the error).
bool decode_varint(std::span<const std::byte> bytes, std::size_t& pos, uint64_t& value) noexcept;

// Typed accessors: check the wire type a field must have (throw Error(model_format) naming
// `where`.`field_name`, the expected and the found wire type) and convert.
int64_t field_int64(const Field& f, const Source& src, const std::string& where, const char* field_name);
int32_t field_int32(const Field& f, const Source& src, const std::string& where, const char* field_name);
float field_float(const Field& f, const Source& src, const std::string& where, const char* field_name);
std::span<const std::byte> field_bytes(const Field& f, const Source& src, const std::string& where,
                                       const char* field_name);
std::string field_string(const Field& f, const Source& src, const std::string& where, const char* field_name);

// Appends the elements of a repeated varint field (int64/int32/uint64 ...) whether it arrived packed
// (one length-delimited field) or unpacked (one varint per field). Values are the raw 64-bit varints
// (int32 negatives are sign-extended to 64 bits on the wire, so a cast to int64 recovers them).
// Growth is bounded by the input: at most one element per input byte.
template <typename Out>
void append_varints(const Field& f, const Source& src, const std::string& where, const char* field_name,
                    Out& out);
// Number of varints in a packed payload: counts terminating bytes and checks the payload does not
// end inside a varint (over-long varints are caught when the values are decoded).
std::size_t count_packed_varints(std::span<const std::byte> payload, const Source& src,
                                 const std::string& where, const char* field_name);
// Appends a repeated float field, packed (type 2, a multiple of 4 bytes) or unpacked (type 5).
void append_floats(const Field& f, const Source& src, const std::string& where, const char* field_name,
                   std::vector<float>& out);

// Throws Error(model_format) "<src.name>: <where>: <what> (at byte <at - src.begin>)".
[[noreturn]] void fail_at(const Source& src, const std::byte* at, const std::string& where,
                          const std::string& what);

// ---- implementation of the template ----

template <typename Out>
void append_varints(const Field& f, const Source& src, const std::string& where, const char* field_name,
                    Out& out) {
  if (f.type == WireType::varint) {
    out.push_back(static_cast<typename Out::value_type>(f.value));
    return;
  }
  if (f.type != WireType::length_delimited) {
    fail_at(src, f.bytes.data(), where,
            std::string(field_name) + ": expected wire type varint or packed (length-delimited), found " +
                wire_type_name(f.type));
  }
  std::size_t pos = 0;
  while (pos < f.bytes.size()) {
    uint64_t v = 0;
    if (!decode_varint(f.bytes, pos, v)) {
      fail_at(src, f.bytes.data() + pos, where, std::string(field_name) + ": malformed varint in packed field");
    }
    out.push_back(static_cast<typename Out::value_type>(v));
  }
}

}  // namespace leanembed::onnx::wire
