#include "onnx/protobuf_wire.h"

#include <cstring>

#include "leanembed/error.h"

namespace leanembed::onnx::wire {

const char* wire_type_name(WireType t) noexcept {
  switch (t) {
    case WireType::varint: return "varint";
    case WireType::fixed64: return "fixed64";
    case WireType::length_delimited: return "length-delimited";
    case WireType::start_group: return "start-group";
    case WireType::end_group: return "end-group";
    case WireType::fixed32: return "fixed32";
  }
  return "invalid";
}

void fail_at(const Source& src, const std::byte* at, const std::string& where, const std::string& what) {
  std::string msg = src.name + ": " + where + ": " + what;
  if (src.begin != nullptr && at != nullptr && at >= src.begin) {
    msg += " (at byte " + std::to_string(static_cast<std::size_t>(at - src.begin)) + ")";
  }
  throw Error(ErrorCode::model_format, msg);
}

bool decode_varint(std::span<const std::byte> bytes, std::size_t& pos, uint64_t& value) noexcept {
  uint64_t v = 0;
  for (int i = 0; i < 10; ++i) {
    if (pos >= bytes.size()) return false;
    auto b = static_cast<uint8_t>(bytes[pos++]);
    // The 10th byte may only carry the 64th bit.
    if (i == 9 && b > 1) return false;
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      value = v;
      return true;
    }
  }
  return false;
}

void Reader::fail(const std::string& what) const { fail_at(source_, data_.data() + pos_, where_, what); }

uint64_t Reader::read_varint(const char* what) {
  std::size_t start = pos_;
  uint64_t v = 0;
  if (!decode_varint(data_, pos_, v)) {
    pos_ = start;
    fail(std::string("truncated or over-long ") + what);
  }
  return v;
}

bool Reader::next(Field& field) {
  if (pos_ >= data_.size()) return false;
  std::size_t start = pos_;
  uint64_t key = read_varint("field key");
  uint64_t number = key >> 3;
  auto type = static_cast<uint8_t>(key & 7);
  if (number == 0 || number > 0x1fffffff) {
    pos_ = start;
    fail("invalid field number " + std::to_string(number));
  }
  field.number = static_cast<uint32_t>(number);
  field.value = 0;
  std::size_t payload = pos_;
  switch (type) {
    case 0:
      field.type = WireType::varint;
      field.value = read_varint("varint");
      field.bytes = data_.subspan(payload, pos_ - payload);
      return true;
    case 1:
    case 5: {
      std::size_t n = type == 1 ? 8 : 4;
      field.type = type == 1 ? WireType::fixed64 : WireType::fixed32;
      if (data_.size() - pos_ < n) fail("truncated " + std::string(wire_type_name(field.type)) + " field " + std::to_string(number));
      uint64_t v = 0;
      std::memcpy(&v, data_.data() + pos_, n);  // little-endian on the wire and on our targets
      field.value = v;
      field.bytes = data_.subspan(pos_, n);
      pos_ += n;
      return true;
    }
    case 2: {
      field.type = WireType::length_delimited;
      uint64_t len = read_varint("length");
      if (len > data_.size() - pos_) {
        fail("field " + std::to_string(number) + " says it has " + std::to_string(len) + " bytes but only " +
             std::to_string(data_.size() - pos_) + " remain (truncated file?)");
      }
      field.bytes = data_.subspan(pos_, static_cast<std::size_t>(len));
      pos_ += static_cast<std::size_t>(len);
      return true;
    }
    case 3:
    case 4:
      pos_ = start;
      fail("field " + std::to_string(number) + " uses protobuf groups (wire type " + std::to_string(type) +
           "), which ONNX never uses");
    default:
      pos_ = start;
      fail("field " + std::to_string(number) + " has invalid wire type " + std::to_string(type));
  }
}

namespace {

[[noreturn]] void wrong_type(const Field& f, const Source& src, const std::string& where, const char* field_name,
                             const char* expected) {
  fail_at(src, f.bytes.data(), where,
          std::string(field_name) + ": expected wire type " + expected + ", found " + wire_type_name(f.type));
}

}  // namespace

int64_t field_int64(const Field& f, const Source& src, const std::string& where, const char* field_name) {
  if (f.type != WireType::varint) wrong_type(f, src, where, field_name, "varint");
  return static_cast<int64_t>(f.value);
}

int32_t field_int32(const Field& f, const Source& src, const std::string& where, const char* field_name) {
  int64_t v = field_int64(f, src, where, field_name);
  if (v < INT32_MIN || v > INT32_MAX) {
    fail_at(src, f.bytes.data(), where, std::string(field_name) + ": value " + std::to_string(v) + " does not fit int32");
  }
  return static_cast<int32_t>(v);
}

float field_float(const Field& f, const Source& src, const std::string& where, const char* field_name) {
  if (f.type != WireType::fixed32) wrong_type(f, src, where, field_name, "fixed32");
  auto bits = static_cast<uint32_t>(f.value);
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

std::span<const std::byte> field_bytes(const Field& f, const Source& src, const std::string& where,
                                       const char* field_name) {
  if (f.type != WireType::length_delimited) wrong_type(f, src, where, field_name, "length-delimited");
  return f.bytes;
}

std::string field_string(const Field& f, const Source& src, const std::string& where, const char* field_name) {
  auto b = field_bytes(f, src, where, field_name);
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::size_t count_packed_varints(std::span<const std::byte> payload, const Source& src, const std::string& where,
                                 const char* field_name) {
  std::size_t n = 0;
  for (std::byte b : payload) n += (static_cast<uint8_t>(b) & 0x80) == 0 ? 1 : 0;
  // A well-formed packed payload ends with a terminating byte and has no varint over 10 bytes;
  // full validation happens when the values are decoded.
  if (!payload.empty() && (static_cast<uint8_t>(payload.back()) & 0x80) != 0) {
    fail_at(src, payload.data() + payload.size() - 1, where,
            std::string(field_name) + ": packed field ends inside a varint");
  }
  return n;
}

void append_floats(const Field& f, const Source& src, const std::string& where, const char* field_name,
                   std::vector<float>& out) {
  if (f.type == WireType::fixed32) {
    out.push_back(field_float(f, src, where, field_name));
    return;
  }
  if (f.type != WireType::length_delimited) wrong_type(f, src, where, field_name, "fixed32 or packed (length-delimited)");
  if (f.bytes.size() % 4 != 0) {
    fail_at(src, f.bytes.data(), where,
            std::string(field_name) + ": packed float field of " + std::to_string(f.bytes.size()) +
                " bytes is not a multiple of 4");
  }
  std::size_t n = f.bytes.size() / 4;
  std::size_t old = out.size();
  out.resize(old + n);
  if (n != 0) std::memcpy(out.data() + old, f.bytes.data(), n * 4);
}

}  // namespace leanembed::onnx::wire
