// A read-only memory mapping of a whole file (RAII). Model weights are views into it.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace leanembed {

class MappedFile {
 public:
  MappedFile() = default;
  // Maps `path` read-only. Throws Error(io) naming the path and the system's reason.
  // An empty file maps to an empty span.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {static_cast<const std::byte*>(data_), size_}; }
  const std::string& path() const { return path_; }
  std::size_t size() const { return size_; }

 private:
  void release() noexcept;
  std::string path_;
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace leanembed
