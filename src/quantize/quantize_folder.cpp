#include "quantize/quantize_folder.h"

#include <chrono>
#include <filesystem>

#include "leanembed/error.h"
#include "onnx/reader.h"
#include "onnx/writer.h"

namespace leanembed::quantize {
namespace {

namespace fs = std::filesystem;

bool is_weight_file(const fs::path& p) {
  static const char* kWeights[] = {".onnx", ".onnx_data", ".bin", ".safetensors", ".h5", ".msgpack", ".ot"};
  const std::string ext = p.extension().string();
  for (const char* w : kWeights)
    if (ext == w) return true;
  return false;
}

// Copies the metadata files of `from` into `to` (see quantize_folder.h); returns their relative paths.
std::vector<std::string> copy_metadata(const fs::path& from, const fs::path& to) {
  std::vector<std::string> copied;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(from, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path rel = fs::relative(it->path(), from, ec);
    if (ec) break;
    const bool directory = it->is_directory(ec);
    if (ec) break;
    if (directory && (rel == "onnx" || rel.string().starts_with("."))) {
      it.disable_recursion_pending();
      continue;
    }
    const bool regular = it->is_regular_file(ec);
    if (ec) break;
    if (!regular || is_weight_file(rel) || rel.filename().string().starts_with(".")) continue;
    const fs::path target = to / rel;
    const bool present = fs::exists(target, ec);
    if (ec) break;
    if (present) continue;
    fs::create_directories(target.parent_path(), ec);
    if (ec || !fs::copy_file(it->path(), target, ec) || ec) {
      throw Error(ErrorCode::io, "cannot copy '" + it->path().string() + "' to '" + target.string() +
                                     "': " + (ec ? ec.message() : std::string("copy failed")));
    }
    fs::permissions(target, fs::perms::owner_write, fs::perm_options::add, ec);  // sources may be read-only
    copied.push_back(rel.string());
  }
  if (ec) throw Error(ErrorCode::io, "cannot list the model folder '" + from.string() + "': " + ec.message());
  return copied;
}

}  // namespace

QuantizeFolderResult quantize_folder(const QuantizeFolderOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  QuantizeFolderResult r;
  const fs::path out_folder = o.out_folder.empty() ? fs::path(o.folder) : fs::path(o.out_folder);
  const fs::path target = out_folder / o.file_name;
  r.written = target.string();
  std::error_code ec;
  if (fs::exists(target, ec) && !o.force) {
    throw Error(ErrorCode::invalid_argument,
                "'" + target.string() + "' exists already; pass --force to replace it");
  }
  if (fs::exists(target, ec) && fs::equivalent(target, o.source, ec)) {
    throw Error(ErrorCode::invalid_argument, "the output '" + target.string() + "' is the fp32 source file itself");
  }
  const onnx::Model fp32 = onnx::read_model(o.source, onnx::ReadOptions{.copy_misaligned = false});
  r.source_bytes = fp32.file_bytes.size();
  const onnx::Model q = quantize_model(fp32, o.dtype, o.quantize, &r.summary);
  fs::create_directories(target.parent_path(), ec);
  if (ec) throw Error(ErrorCode::io, "cannot create the folder '" + target.parent_path().string() + "': " + ec.message());
  if (!fs::equivalent(out_folder, fs::path(o.folder), ec)) r.copied = copy_metadata(o.folder, out_folder);
  r.written_bytes = onnx::write_model(q, target.string());
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace leanembed::quantize
