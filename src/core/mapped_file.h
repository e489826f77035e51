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

// Tells the kernel that the pages wholly inside [data, data + bytes) will not be read again soon
// (madvise MADV_PAGEOUT): pages of a file mapping leave the process' resident set and are read back
// from the file if touched again; anonymous memory (heap) is left as it is (there is no swap to
// page it out to). Never changes what the bytes read as, so it is safe on any readable range. For
// weights a kernel has copied into its own layout (the file's copy is then never read). Best effort:
// errors and kernels without MADV_PAGEOUT are ignored.
void drop_resident_pages(const void* data, std::size_t bytes) noexcept;

// For a range of a MappedFile only (read-only, private: never written): unmaps the pages wholly
// inside [data, data + bytes) from the process (MADV_DONTNEED) — they leave its resident set at
// once but stay in the kernel's page cache (unlike drop_resident_pages, which evicts them), so the
// next process loading the file finds them there; touched again, they are faulted back in from the
// file, unchanged. On any other memory this would discard its contents: never call it on heap or
// writable mappings. Best effort: errors are ignored.
void unmap_file_pages(const void* data, std::size_t bytes) noexcept;

}  // namespace leanembed
