#include "safetensors/safetensors.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "leanembed/error.h"

namespace leanembed::safetensors {
namespace {

using nlohmann::json;

struct DtypeEntry {
  Dtype dtype;
  const char* name;
  std::size_t size;
};
constexpr DtypeEntry kDtypes[] = {
    {Dtype::BOOL, "BOOL", 1}, {Dtype::U8, "U8", 1},   {Dtype::I8, "I8", 1},     {Dtype::F8_E5M2, "F8_E5M2", 1},
    {Dtype::F8_E4M3, "F8_E4M3", 1}, {Dtype::I16, "I16", 2}, {Dtype::U16, "U16", 2}, {Dtype::F16, "F16", 2},
    {Dtype::BF16, "BF16", 2}, {Dtype::I32, "I32", 4}, {Dtype::U32, "U32", 4},   {Dtype::F32, "F32", 4},
    {Dtype::F64, "F64", 8},   {Dtype::I64, "I64", 8}, {Dtype::U64, "U64", 8},
};

// Deepest nesting a valid header has: the top object, a tensor entry, its shape array.
constexpr int kMaxDepth = 4;

[[noreturn]] void bad(const std::string& file, const std::string& what) {
  throw Error(ErrorCode::model_format, "'" + file + "' is not a valid safetensors file: " + what);
}

// Refuses nesting deeper than kMaxDepth before the parser sees it (strings skipped).
void check_depth(std::string_view text, const std::string& file) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) bad(file, "the JSON header is nested deeper than " + std::to_string(kMaxDepth) + " levels");
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
}

// A non-negative JSON integer, or nothing.
bool unsigned_value(const json& j, uint64_t& out) {
  if (!j.is_number_unsigned()) return false;
  out = j.get<uint64_t>();
  return true;
}

std::string tensor_where(const std::string& name) { return "tensor '" + name + "'"; }

}  // namespace

const char* dtype_name(Dtype dtype) noexcept {
  for (const auto& e : kDtypes)
    if (e.dtype == dtype) return e.name;
  return "?";
}

std::size_t dtype_size(Dtype dtype) noexcept {
  for (const auto& e : kDtypes)
    if (e.dtype == dtype) return e.size;
  return 0;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::shared_ptr<const File> File::open(const std::string& path) {
  MappedFile mapping(path);
  auto file = std::make_shared<File>(parse(mapping.bytes(), path));
  file->mapping_ = std::move(mapping);  // the views stay valid: moving a mapping keeps its address
  return file;
}

File File::parse(std::span<const std::byte> bytes, const std::string& name) {
  File f;
  f.path_ = name;
  f.bytes_ = bytes;
  if (bytes.size() < 8)
    bad(name, "it is " + std::to_string(bytes.size()) + " bytes long, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[static_cast<std::size_t>(i)]);
  if (n > kMaxHeaderBytes)
    bad(name, "the header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxHeaderBytes) + " bytes");
  if (n > bytes.size() - 8)
    bad(name, "the header length " + std::to_string(n) + " runs past the end of the file (" +
                  std::to_string(bytes.size()) + " bytes; truncated?)");
  f.header_bytes_ = static_cast<std::size_t>(n);
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + 8, f.header_bytes_);
  check_depth(text, name);

  // Parse, refusing a key twice in any object (a JSON object library would keep one silently).
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  json::parser_callback_t watch = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    else if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    else if (event == json::parse_event_t::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second &&
             duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  json header = json::parse(text.begin(), text.end(), watch, /*allow_exceptions=*/false);
  if (header.is_discarded()) bad(name, "the " + std::to_string(n) + "-byte header is not valid JSON");
  if (!duplicate.empty()) bad(name, "the header names '" + duplicate + "' twice");
  if (!header.is_object()) bad(name, "the header is JSON but not an object");

  const std::size_t data_size = bytes.size() - f.data_offset();
  struct Range {
    uint64_t begin, end;
    std::size_t tensor;
  };
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const json& value = it.value();
    if (key == "__metadata__") {
      if (!value.is_object()) bad(name, "__metadata__ is not an object of strings");
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string()) bad(name, "__metadata__ entry '" + m.key() + "' is not a string");
        f.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = tensor_where(key);
    if (!value.is_object()) bad(name, where + " is not an object with dtype, shape and data_offsets");
    Tensor t;
    t.name = key;
    auto dt = value.find("dtype");
    if (dt == value.end() || !dt->is_string()) bad(name, where + " has no dtype string");
    const std::string dtype_text = dt->get<std::string>();
    auto known = std::find_if(std::begin(kDtypes), std::end(kDtypes), [&](const DtypeEntry& e) { return dtype_text == e.name; });
    if (known == std::end(kDtypes)) bad(name, where + " has an unknown dtype '" + dtype_text + "'");
    t.dtype = known->dtype;

    auto shape = value.find("shape");
    if (shape == value.end() || !shape->is_array()) bad(name, where + " has no shape array");
    uint64_t elements = 1;
    for (const json& d : *shape) {
      uint64_t v = 0;
      if (!unsigned_value(d, v)) bad(name, where + " has a shape entry that is not a non-negative integer: " + d.dump());
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || __builtin_mul_overflow(elements, v, &elements) ||
          elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        bad(name, where + " has a shape " + shape->dump() + " whose element count overflows");
      t.shape.push_back(static_cast<int64_t>(v));
    }
    uint64_t byte_length = 0;
    if (__builtin_mul_overflow(elements, static_cast<uint64_t>(known->size), &byte_length))
      bad(name, where + " has a shape " + shape->dump() + " whose byte length overflows");

    auto offsets = value.find("data_offsets");
    uint64_t begin = 0, end = 0;
    if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 || !unsigned_value((*offsets)[0], begin) ||
        !unsigned_value((*offsets)[1], end))
      bad(name, where + " has no data_offsets of two non-negative integers [begin, end]");
    if (end < begin) bad(name, where + " has data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] that end before they begin");
    if (end - begin != byte_length)
      bad(name, where + " (" + dtype_text + " " + shape->dump() + ") needs " + std::to_string(byte_length) +
                    " bytes, but its data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] hold " +
                    std::to_string(end - begin));
    if (end > data_size)
      bad(name, where + " ends at byte " + std::to_string(end) + " of the data, past its end (" + std::to_string(data_size) +
                    " bytes; truncated?)");
    t.file_offset = f.data_offset() + static_cast<std::size_t>(begin);
    t.bytes = bytes.subspan(t.file_offset, static_cast<std::size_t>(byte_length));
    ranges.push_back({begin, end, f.tensors_.size()});
    f.tensors_.push_back(std::move(t));
  }

  // The tensors cover the data buffer: back to back in offset order, from 0 to its end.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const std::string* previous = nullptr;
  for (const Range& r : ranges) {
    const std::string& tensor = f.tensors_[r.tensor].name;
    if (r.begin > covered)
      bad(name, "the data has a gap: bytes [" + std::to_string(covered) + ", " + std::to_string(r.begin) +
                    ") before " + tensor_where(tensor) + " belong to no tensor");
    if (r.begin < covered)
      bad(name, tensor_where(tensor) + " (data_offsets [" + std::to_string(r.begin) + ", " + std::to_string(r.end) +
                    "]) overlaps " + (previous ? tensor_where(*previous) : std::string("another tensor")) +
                    ", which ends at " + std::to_string(covered));
    covered = r.end;
    previous = &tensor;
  }
  if (covered != data_size)
    bad(name, "the tensors cover " + std::to_string(covered) + " bytes of the " + std::to_string(data_size) +
                  "-byte data buffer; the rest belongs to no tensor");
  std::sort(f.tensors_.begin(), f.tensors_.end(), [](const Tensor& a, const Tensor& b) { return a.name < b.name; });
  return f;
}

const Tensor* File::find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const Tensor& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

}  // namespace leanembed::safetensors
