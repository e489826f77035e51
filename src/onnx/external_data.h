// Resolves TensorProto external data under the ONNX security rules and maps each file once.
// Internal to the reader.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace leanembed {
class MappedFile;
}

namespace leanembed::onnx {

class ExternalDataFiles {
 public:
  // `model_dir`: the folder locations are relative to; empty = external data is refused.
  explicit ExternalDataFiles(std::string model_dir) : model_dir_(std::move(model_dir)) {}

  struct View {
    std::span<const std::byte> bytes;
    std::shared_ptr<const void> owner;  // the file's mapping
  };

  // Returns the `expected_bytes` bytes the external_data key/value `entries` point at. Rules:
  // `location` required, relative, no `..` component, its real path inside the real model folder;
  // `offset` (default 0) and `length` (default: the rest of the file) decimal, inside the file;
  // the length must equal `expected_bytes`. `checksum` and unknown keys are ignored.
  // Throws Error(model_format) for rule violations and malformed values, Error(io) if the file
  // cannot be found or mapped, Error(unsupported) if there is no model folder. `what` names the
  // tensor for messages (e.g. "model.onnx: graph.initializer[3] 'w'").
  View resolve(const std::vector<std::pair<std::string, std::string>>& entries, std::size_t expected_bytes,
               const std::string& what);

  // The mappings made so far (one per file), to keep in Model::storage.
  std::vector<std::shared_ptr<const void>> mappings() const;
  // The same, as files, in the order they were first used (Model::source_files).
  const std::vector<std::shared_ptr<const MappedFile>>& files() const { return in_order_; }

 private:
  std::shared_ptr<const MappedFile> map_file(const std::string& location, const std::string& what);
  std::string model_dir_;
  std::string model_dir_real_;  // realpath(model_dir_), computed on first use
  std::map<std::string, std::shared_ptr<const MappedFile>> files_;  // by real path
  std::vector<std::shared_ptr<const MappedFile>> in_order_;
};

}  // namespace leanembed::onnx
