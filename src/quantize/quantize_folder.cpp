#include "quantize/quantize_folder.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
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
    // Each file is copied to a temporary and renamed: an interrupted copy never leaves a torn file.
    const fs::path temp = target.string() + ".tmp-" + std::to_string(::getpid());
    fs::create_directories(target.parent_path(), ec);
    if (ec || !fs::copy_file(it->path(), temp, fs::copy_options::overwrite_existing, ec) || ec) {
      std::error_code rm;
      fs::remove(temp, rm);
      throw Error(ErrorCode::io, "cannot copy '" + it->path().string() + "' to '" + target.string() +
                                     "': " + (ec ? ec.message() : std::string("copy failed")));
    }
    fs::permissions(temp, fs::perms::owner_write, fs::perm_options::add, ec);  // sources may be read-only
    fs::rename(temp, target, ec);
    if (ec) {
      std::error_code rm;
      fs::remove(temp, rm);
      throw Error(ErrorCode::io, "cannot copy '" + it->path().string() + "' to '" + target.string() + "': " + ec.message());
    }
    copied.push_back(rel.string());
  }
  if (ec) throw Error(ErrorCode::io, "cannot list the model folder '" + from.string() + "': " + ec.message());
  return copied;
}

// "NAME.tmp-PID" beside `target` (a file or a folder) whose process no longer runs: what a killed
// run of ours left behind (onnx/writer.cpp and the --out staging folder use that name).
void remove_stale_temporaries(const fs::path& target) {
  const std::string prefix = target.filename().string() + ".tmp-";
  const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(prefix)) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.size() > 9 || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    std::error_code rm;
    if (pid > 0 && pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) fs::remove_all(it->path(), rm);
  }
}

// Removes a staging folder unless release() was called (the run failed before renaming it).
struct StagingFolder {
  fs::path path;
  ~StagingFolder() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

}  // namespace

QuantizeReport quantize_folder(const QuantizeFolderOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  QuantizeReport r;
  r.source = o.source;
  const fs::path out_folder = o.out_folder.empty() ? fs::path(o.folder) : fs::path(o.out_folder);
  const fs::path target = out_folder / o.file_name;
  r.written = target.string();
  std::error_code ec;
  remove_stale_temporaries(target);
  if (!o.out_folder.empty()) remove_stale_temporaries(fs::absolute(out_folder, ec).lexically_normal());
  if (fs::exists(target, ec) && !o.force) {
    throw Error(ErrorCode::invalid_argument,
                "'" + target.string() + "' exists already; pass --force to replace it");
  }
  if (fs::exists(target, ec) && fs::equivalent(target, o.source, ec)) {
    throw Error(ErrorCode::invalid_argument, "the output '" + target.string() + "' is the fp32 source file itself");
  }
  const onnx::Model fp32 = onnx::read_model(o.source, onnx::ReadOptions{.copy_misaligned = false});
  r.source_bytes = fp32.file_bytes.size();
  QuantizeSummary summary;
  const onnx::Model q = quantize_model(fp32, o.dtype, o.quantize, &summary);
  r.scheme = summary.scheme;
  r.matmuls = summary.matmuls;
  r.tables = summary.gathers;
  r.weight_bytes_before = summary.weight_bytes_before;
  r.weight_bytes_after = summary.weight_bytes_after;
  r.clamped_to_fp16 = summary.clamped_to_fp16;
  // A new --out folder is made under a temporary name (metadata, then the model) and renamed last,
  // so it exists only once complete. Into an existing folder the model goes first (written to a
  // temporary and renamed), then the metadata it lacks: an interrupted run is visibly incomplete.
  const bool new_folder = !o.out_folder.empty() && !fs::exists(out_folder, ec);
  StagingFolder staging;
  fs::path write_to = out_folder;
  if (new_folder) {
    const fs::path final_path = fs::absolute(out_folder, ec).lexically_normal();
    staging.path = final_path.parent_path() / (final_path.filename().string() + ".tmp-" + std::to_string(::getpid()));
    fs::remove_all(staging.path, ec);
    write_to = staging.path;
  }
  const fs::path write_target = write_to / o.file_name;
  fs::create_directories(write_target.parent_path(), ec);
  if (ec) throw Error(ErrorCode::io, "cannot create the folder '" + write_target.parent_path().string() + "': " + ec.message());
  const bool copy = !o.out_folder.empty() && (new_folder || !fs::equivalent(out_folder, fs::path(o.folder), ec));
  if (copy && new_folder) r.copied = copy_metadata(o.folder, write_to);
  r.written_bytes = onnx::write_model(q, write_target.string());
  if (copy && !new_folder) r.copied = copy_metadata(o.folder, out_folder);
  if (new_folder) {
    fs::rename(staging.path, out_folder, ec);
    if (ec) {
      throw Error(ErrorCode::io, "cannot rename the finished folder '" + staging.path.string() + "' to '" +
                                     out_folder.string() + "': " + ec.message());
    }
    staging.path.clear();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace leanembed::quantize
