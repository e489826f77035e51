#include "onnx/external_data.h"

#include <climits>
#include <cstdlib>
#include <string_view>

#include "core/mapped_file.h"
#include "leanembed/error.h"

namespace leanembed::onnx {

namespace {

[[noreturn]] void bad(const std::string& what, const std::string& why) {
  throw Error(ErrorCode::model_format, what + ": external data " + why);
}

// Parses a non-negative decimal integer (digits only); nullopt-like false on anything else or overflow.
bool parse_size(const std::string& s, std::size_t& out) {
  if (s.empty() || s.size() > 19) return false;
  std::size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::size_t>(c - '0');  // 19 digits cannot overflow 64 bits
  }
  out = v;
  return true;
}

std::string real_path(const std::string& p, bool& ok) {
  char* r = ::realpath(p.c_str(), nullptr);
  ok = r != nullptr;
  if (!ok) return {};
  std::string out(r);
  std::free(r);
  return out;
}

}  // namespace

std::shared_ptr<const MappedFile> ExternalDataFiles::map_file(const std::string& location, const std::string& what) {
  if (location.empty()) bad(what, "has an empty 'location'");
  if (location.find('\0') != std::string::npos) bad(what, "location contains a NUL byte");
  if (location.front() == '/') bad(what, "location '" + location + "' is an absolute path; only paths relative to the model folder are allowed");
  // No `..` component anywhere (also refuses the Windows separator form).
  std::string_view rest(location);
  while (!rest.empty()) {
    std::size_t cut = rest.find_first_of("/\\");
    std::string_view part = rest.substr(0, cut);
    if (part == "..") bad(what, "location '" + location + "' contains a '..' component");
    if (cut == std::string_view::npos) break;
    rest.remove_prefix(cut + 1);
  }
  if (model_dir_real_.empty()) {
    bool ok = false;
    model_dir_real_ = real_path(model_dir_, ok);
    if (!ok) throw Error(ErrorCode::io, what + ": cannot resolve the model folder '" + model_dir_ + "'");
  }
  bool ok = false;
  std::string full = real_path(model_dir_ + "/" + location, ok);
  if (!ok) throw Error(ErrorCode::io, what + ": external data file '" + location + "' not found in '" + model_dir_ + "'");
  std::string prefix = model_dir_real_ == "/" ? "/" : model_dir_real_ + "/";
  if (full.compare(0, prefix.size(), prefix) != 0) {
    bad(what, "location '" + location + "' resolves to '" + full + "', outside the model folder '" + model_dir_real_ + "'");
  }
  auto it = files_.find(full);
  if (it != files_.end()) return it->second;
  // Not a regular file (a FIFO, a device): refused by MappedFile without blocking (Error(io)).
  auto mapped = std::make_shared<const MappedFile>(full);
  files_.emplace(full, mapped);
  in_order_.push_back(mapped);
  return mapped;
}

ExternalDataFiles::View ExternalDataFiles::resolve(const std::vector<std::pair<std::string, std::string>>& entries,
                                                   std::size_t expected_bytes, const std::string& what) {
  if (model_dir_.empty()) {
    throw Error(ErrorCode::unsupported, what + ": uses external data, which is not available here (no model folder)");
  }
  const std::string* location = nullptr;
  const std::string* offset_text = nullptr;
  const std::string* length_text = nullptr;
  for (const auto& [key, value] : entries) {
    const std::string** slot = key == "location" ? &location : key == "offset" ? &offset_text
                               : key == "length" ? &length_text : nullptr;
    if (slot == nullptr) continue;  // checksum, basepath, ...: ignored
    if (*slot != nullptr) bad(what, "gives '" + key + "' twice");
    *slot = &value;
  }
  if (location == nullptr) bad(what, "has no 'location'");
  std::size_t offset = 0;
  if (offset_text != nullptr && !parse_size(*offset_text, offset)) {
    bad(what, "offset '" + *offset_text + "' is not a non-negative decimal integer");
  }
  std::size_t length = 0;
  if (length_text != nullptr && !parse_size(*length_text, length)) {
    bad(what, "length '" + *length_text + "' is not a non-negative decimal integer");
  }
  auto file = map_file(*location, what);
  std::size_t size = file->size();
  if (offset > size) {
    bad(what, "offset " + std::to_string(offset) + " is past the end of '" + *location + "' (" + std::to_string(size) + " bytes)");
  }
  if (length_text == nullptr) length = size - offset;
  if (length > size - offset) {
    bad(what, "offset " + std::to_string(offset) + " + length " + std::to_string(length) + " is past the end of '" +
                  *location + "' (" + std::to_string(size) + " bytes)");
  }
  if (length != expected_bytes) {
    bad(what, "length " + std::to_string(length) + " (in '" + *location + "') does not match the tensor's size of " +
                  std::to_string(expected_bytes) + " bytes");
  }
  return View{file->bytes().subspan(offset, length), std::shared_ptr<const void>(file, file.get())};
}

std::vector<std::shared_ptr<const void>> ExternalDataFiles::mappings() const {
  std::vector<std::shared_ptr<const void>> out;
  for (const auto& [path, file] : files_) out.emplace_back(file);
  return out;
}

}  // namespace leanembed::onnx
