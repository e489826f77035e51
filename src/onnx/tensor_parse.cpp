// TensorProto -> TensorData: picks the field holding the data, checks sizes, makes views where the
// bytes can be used as they are and decodes the rest into owned storage.
#include <sys/mman.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <new>
#include <optional>

#include "leanembed/error.h"
#include "onnx/parse_context.h"

namespace leanembed::onnx {

static_assert(std::endian::native == std::endian::little,
              "the reader hands out little-endian file bytes as elements; big-endian hosts need byte swaps");

namespace {

using wire::Field;
using wire::WireType;

// TensorProto field numbers (onnx.proto).
enum TensorField : uint32_t {
  kDims = 1, kDataType = 2, kSegment = 3, kFloatData = 4, kInt32Data = 5, kStringData = 6, kInt64Data = 7,
  kName = 8, kRawData = 9, kDoubleData = 10, kUint64Data = 11, kExternalData = 13, kDataLocation = 14,
};

// The fields of one TensorProto as found on the wire (payloads are views into the file).
struct TensorFields {
  std::string name;
  std::vector<int64_t> dims;
  int32_t data_type = 0;
  std::optional<std::span<const std::byte>> raw_data;
  std::vector<Field> float_data, int32_data, int64_data, double_data, uint64_data;  // every occurrence
  bool has_string_data = false;
  bool has_segment = false;
  int32_t data_location = 0;
  std::vector<std::pair<std::string, std::string>> external_data;
};

void read_string_entry(std::span<const std::byte> msg, const wire::Source& src, const std::string& where,
                       std::vector<std::pair<std::string, std::string>>& out) {
  wire::Reader r(msg, src, where);
  Field f;
  std::string key, value;
  while (r.next(f)) {
    if (f.number == 1) key = wire::field_string(f, src, where, "key");
    else if (f.number == 2) value = wire::field_string(f, src, where, "value");
  }
  out.emplace_back(std::move(key), std::move(value));
}

TensorFields read_fields(std::span<const std::byte> message, const wire::Source& src, const std::string& where) {
  TensorFields t;
  wire::Reader r(message, src, where);
  Field f;
  while (r.next(f)) {
    switch (f.number) {
      case kDims: wire::append_varints(f, src, where, "dims", t.dims); break;
      case kDataType: t.data_type = wire::field_int32(f, src, where, "data_type"); break;
      case kSegment: wire::field_bytes(f, src, where, "segment"); t.has_segment = true; break;
      case kFloatData: t.float_data.push_back(f); break;
      case kInt32Data: t.int32_data.push_back(f); break;
      case kStringData: wire::field_bytes(f, src, where, "string_data"); t.has_string_data = true; break;
      case kInt64Data: t.int64_data.push_back(f); break;
      case kName: t.name = wire::field_string(f, src, where, "name"); break;
      case kRawData: t.raw_data = wire::field_bytes(f, src, where, "raw_data"); break;
      case kDoubleData: t.double_data.push_back(f); break;
      case kUint64Data: t.uint64_data.push_back(f); break;
      case kExternalData:
        read_string_entry(wire::field_bytes(f, src, where, "external_data"), src, where + ".external_data",
                          t.external_data);
        break;
      case kDataLocation: t.data_location = wire::field_int32(f, src, where, "data_location"); break;
      default: break;  // doc_string and fields of later versions
    }
  }
  return t;
}

// Checks a data_type code is one we can hold; throws otherwise.
DataType checked_data_type(int32_t code, const std::string& what) {
  switch (code) {
    case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 9: case 10: case 11: case 12: case 13: case 16:
      return static_cast<DataType>(code);
    case 0:
      throw Error(ErrorCode::model_format, what + ": data_type is missing (UNDEFINED)");
    case 8: case 14: case 15: case 17: case 18: case 19: case 20: case 21: case 22: case 23:
      throw Error(ErrorCode::unsupported, what + ": data type code " + std::to_string(code) +
                                              " (string, complex, float8 or 4-bit) is not supported");
    default:
      throw Error(ErrorCode::model_format, what + ": unknown data_type code " + std::to_string(code));
  }
}

std::string dims_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// numel * element size in bytes, checking dims are >= 0 and nothing overflows.
std::size_t checked_byte_size(const std::vector<int64_t>& dims, std::size_t elem_size, const std::string& what) {
  uint64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) throw Error(ErrorCode::model_format, what + ": negative dimension in dims " + dims_text(dims));
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n) || n > static_cast<uint64_t>(INT64_MAX)) {
      throw Error(ErrorCode::model_format, what + ": dims " + dims_text(dims) + " overflow the element count");
    }
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(n, static_cast<uint64_t>(elem_size), &bytes) || bytes > SIZE_MAX) {
    throw Error(ErrorCode::model_format, what + ": dims " + dims_text(dims) + " give a byte size that overflows");
  }
  return static_cast<std::size_t>(bytes);
}

// Which typed field goes with each data type (onnx.proto's comments on TensorProto).
const char* typed_field_for(DataType t) {
  switch (t) {
    case DataType::float32: return "float_data";
    case DataType::int32: case DataType::int16: case DataType::int8: case DataType::uint16: case DataType::uint8:
    case DataType::boolean: case DataType::float16: case DataType::bfloat16: return "int32_data";
    case DataType::int64: return "int64_data";
    case DataType::float64: return "double_data";
    case DataType::uint32: case DataType::uint64: return "uint64_data";
    default: return "?";
  }
}

// Total payload of a repeated fixed-width field (float_data / double_data), checking wire types.
std::size_t fixed_payload_bytes(const std::vector<Field>& fields, std::size_t width, const wire::Source& src,
                                const std::string& where, const char* name) {
  WireType single = width == 4 ? WireType::fixed32 : WireType::fixed64;
  std::size_t total = 0;
  for (const Field& f : fields) {
    if (f.type == single) {
      total += width;
    } else if (f.type == WireType::length_delimited) {
      if (f.bytes.size() % width != 0) {
        wire::fail_at(src, f.bytes.data(), where, std::string(name) + ": packed payload of " +
                                                      std::to_string(f.bytes.size()) + " bytes is not a multiple of " +
                                                      std::to_string(width));
      }
      total += f.bytes.size();
    } else {
      wire::fail_at(src, f.bytes.data(), where, std::string(name) + ": expected wire type " + wire::wire_type_name(single) +
                                                    " or packed (length-delimited), found " + wire::wire_type_name(f.type));
    }
  }
  return total;
}

// Number of elements of a repeated varint field, checking wire types.
std::size_t varint_count(const std::vector<Field>& fields, const wire::Source& src, const std::string& where,
                         const char* name) {
  std::size_t n = 0;
  for (const Field& f : fields) {
    if (f.type == WireType::varint) {
      ++n;
    } else if (f.type == WireType::length_delimited) {
      n += wire::count_packed_varints(f.bytes, src, where, name);
    } else {
      wire::fail_at(src, f.bytes.data(), where, std::string(name) + ": expected wire type varint or packed (length-delimited), found " +
                                                    wire::wire_type_name(f.type));
    }
  }
  return n;
}

// Range each element type accepts from a varint field (int32_data holds the bits for fp16/bf16).
bool varint_fits(DataType t, uint64_t raw) {
  auto v = static_cast<int64_t>(raw);
  switch (t) {
    case DataType::int32: return v >= INT32_MIN && v <= INT32_MAX;
    case DataType::int16: return v >= INT16_MIN && v <= INT16_MAX;
    case DataType::int8: return v >= INT8_MIN && v <= INT8_MAX;
    case DataType::uint16: case DataType::float16: case DataType::bfloat16: return v >= 0 && v <= UINT16_MAX;
    case DataType::uint8: return v >= 0 && v <= UINT8_MAX;
    case DataType::boolean: return v == 0 || v == 1;
    case DataType::uint32: return raw <= UINT32_MAX;
    case DataType::int64: case DataType::uint64: return true;
    default: return false;
  }
}

// Decodes varint fields into `out` (count elements of elem_size bytes each, little-endian).
void decode_varints(const std::vector<Field>& fields, DataType t, std::size_t elem_size, std::byte* out,
                    const wire::Source& src, const std::string& where, const char* name) {
  std::size_t i = 0;
  auto store = [&](uint64_t raw, const std::byte* at) {
    if (!varint_fits(t, raw)) {
      wire::fail_at(src, at, where, std::string(name) + ": element " + std::to_string(i) + " (" +
                                        std::to_string(static_cast<int64_t>(raw)) + ") is out of range for " +
                                        data_type_name(t));
    }
    std::memcpy(out + i * elem_size, &raw, elem_size);  // low bytes of a little-endian uint64
    ++i;
  };
  for (const Field& f : fields) {
    if (f.type == WireType::varint) {
      store(f.value, f.bytes.data());
      continue;
    }
    std::size_t pos = 0;
    while (pos < f.bytes.size()) {
      std::size_t start = pos;
      uint64_t v = 0;
      if (!wire::decode_varint(f.bytes, pos, v)) {
        wire::fail_at(src, f.bytes.data() + start, where, std::string(name) + ": malformed varint in packed field");
      }
      store(v, f.bytes.data() + start);
    }
  }
}

}  // namespace

std::shared_ptr<std::byte> allocate_aligned(std::size_t n, const std::string& what) {
  constexpr std::align_val_t kAlign{64};
  void* p = ::operator new(n == 0 ? 1 : n, kAlign, std::nothrow);
  if (p == nullptr) throw Error(ErrorCode::out_of_memory, what + ": cannot allocate " + std::to_string(n) + " bytes");
  return std::shared_ptr<std::byte>(static_cast<std::byte*>(p), [](std::byte* q) { ::operator delete(q, kAlign); });
}

namespace {

// A view into the model bytes or an external mapping; copied to aligned storage if it is misaligned
// and the options ask for that.
// After copying a range out of a file mapping, gives its whole pages back (they are clean file pages:
// if anything reads them again they are faulted in from the file). Keeps RSS at one copy, not two.
void release_pages(std::span<const std::byte> bytes) {
  static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  auto begin = (reinterpret_cast<std::uintptr_t>(bytes.data()) + page - 1) / page * page;
  auto end = (reinterpret_cast<std::uintptr_t>(bytes.data()) + bytes.size()) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);  // advisory: errors ignored
}

void set_view(TensorData& t, std::span<const std::byte> bytes, std::shared_ptr<const void> owner, bool from_mapping,
              ParseContext& ctx, const std::string& what) {
  t.bytes = bytes;
  t.owner = std::move(owner);
  t.mapped = true;
  if (ctx.options.copy_misaligned && !t.aligned()) {
    auto buf = allocate_aligned(bytes.size(), what);
    if (!bytes.empty()) std::memcpy(buf.get(), bytes.data(), bytes.size());
    if (from_mapping) release_pages(bytes);
    t.bytes = {buf.get(), bytes.size()};
    t.owner = std::move(buf);
    t.mapped = false;
    ctx.model->bytes_copied += bytes.size();
    ctx.model->tensors_copied += 1;
  }
}

}  // namespace

TensorData parse_tensor(std::span<const std::byte> message, ParseContext& ctx, const std::string& where) {
  const wire::Source& src = ctx.source;
  TensorFields f = read_fields(message, src, where);
  std::string named = where + (f.name.empty() ? std::string() : " '" + f.name + "'");
  std::string what = ctx.label(named);

  TensorData t;
  t.name = std::move(f.name);
  t.dims = std::move(f.dims);
  if (f.has_segment) throw Error(ErrorCode::unsupported, what + ": segmented tensors are not supported");
  t.dtype = checked_data_type(f.data_type, what);
  std::size_t elem = data_type_size(t.dtype);
  std::size_t expected = checked_byte_size(t.dims, elem, what);
  std::size_t numel = expected / elem;

  const char* typed = typed_field_for(t.dtype);
  struct DataField { const char* name; const std::vector<Field>* fields; };
  const DataField typed_fields[] = {{"float_data", &f.float_data}, {"int32_data", &f.int32_data},
                                 {"int64_data", &f.int64_data}, {"double_data", &f.double_data},
                                 {"uint64_data", &f.uint64_data}};
  const DataField* present = nullptr;
  int n_sources = f.raw_data ? 1 : 0;
  for (const DataField& s : typed_fields) {
    if (s.fields->empty()) continue;
    if (std::string_view(s.name) != typed) {
      throw Error(ErrorCode::model_format, what + ": tensor of type " + data_type_name(t.dtype) + " has " + s.name +
                                               " (expected raw_data or " + typed + ")");
    }
    present = &s;
    ++n_sources;
  }
  if (f.has_string_data) {
    throw Error(ErrorCode::model_format, what + ": tensor of type " + data_type_name(t.dtype) + " has string_data");
  }

  if (f.data_location != 0 && f.data_location != 1) {
    throw Error(ErrorCode::model_format, what + ": unknown data_location " + std::to_string(f.data_location));
  }
  if (f.data_location == 1) {
    if (n_sources != 0) {
      throw Error(ErrorCode::model_format, what + ": data_location is EXTERNAL but the tensor also has data in the file");
    }
    if (!ctx.options.allow_external_data) {
      throw Error(ErrorCode::unsupported, what + ": uses external data, which these read options refuse");
    }
    auto view = ctx.external.resolve(f.external_data, expected, what);
    set_view(t, view.bytes, std::move(view.owner), true, ctx, what);
    return t;
  }
  if (!f.external_data.empty()) {
    throw Error(ErrorCode::model_format, what + ": has external_data entries but data_location is not EXTERNAL");
  }
  if (n_sources > 1) {
    throw Error(ErrorCode::model_format, what + ": has its data in more than one field (raw_data and " + typed + ")");
  }

  if (f.raw_data) {
    if (f.raw_data->size() != expected) {
      throw Error(ErrorCode::model_format, what + ": raw_data has " + std::to_string(f.raw_data->size()) +
                                               " bytes but dims " + dims_text(t.dims) + " of " + data_type_name(t.dtype) +
                                               " need " + std::to_string(expected));
    }
    set_view(t, *f.raw_data, ctx.owner, ctx.bytes_are_mapping, ctx, what);
    return t;
  }
  if (present == nullptr) {
    if (numel != 0) {
      throw Error(ErrorCode::model_format, what + ": has no data but dims " + dims_text(t.dims) + " give " +
                                               std::to_string(numel) + " elements");
    }
    t.bytes = {};
    t.owner.reset();
    return t;
  }

  const std::vector<Field>& fields = *present->fields;
  bool fixed = t.dtype == DataType::float32 || t.dtype == DataType::float64;
  std::size_t count = fixed ? fixed_payload_bytes(fields, elem, src, named, present->name) / elem
                            : varint_count(fields, src, named, present->name);
  if (count != numel) {
    throw Error(ErrorCode::model_format, what + ": " + present->name + " holds " + std::to_string(count) +
                                             " elements but dims " + dims_text(t.dims) + " give " + std::to_string(numel));
  }
  if (fixed && fields.size() == 1 && fields[0].type == WireType::length_delimited) {
    set_view(t, fields[0].bytes, ctx.owner, ctx.bytes_are_mapping, ctx, what);  // packed float/double: the file's bytes as they are
    return t;
  }
  auto buf = allocate_aligned(expected, what);
  if (fixed) {
    std::size_t at = 0;
    for (const Field& fld : fields) {
      std::size_t n = fld.type == WireType::length_delimited ? fld.bytes.size() : elem;
      if (fld.type == WireType::length_delimited) {
        if (n != 0) std::memcpy(buf.get() + at, fld.bytes.data(), n);
      } else {
        std::memcpy(buf.get() + at, &fld.value, n);  // low bytes of the fixed value
      }
      at += n;
    }
  } else {
    decode_varints(fields, t.dtype, elem, buf.get(), src, named, present->name);
  }
  t.bytes = {buf.get(), expected};
  t.owner = std::move(buf);
  t.mapped = false;
  ctx.model->bytes_decoded += expected;
  return t;
}

}  // namespace leanembed::onnx
