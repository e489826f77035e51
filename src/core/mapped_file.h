// A read-only memory mapping of a whole file (RAII). Model weights are views into it.
//
// The file stays open (one descriptor) while it is mapped, so that what is mapped can be checked:
// changes() tells whether the file was written, truncated or grown since it was mapped (fstat of
// that descriptor against the identity taken at mapping; core/file_identity.h), and read() preads
// the mapped file's bytes without touching the mapping.
//
// A file rewritten in place changes what the mapping reads (MAP_PRIVATE does not copy pages that
// were never written by us); a file truncated below a mapped page raises SIGBUS when that page is
// read (the process ends). An owner that must not use changed bytes checks changes() before and
// after using them and discards what it made from them (src/embed/embedder.cpp does, around every
// batch). A file replaced by rename (a new inode) does not affect the mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/file_identity.h"

namespace leanembed {

class FileReader;

class MappedFile {
 public:
  MappedFile();
  // Maps `path` read-only. Throws Error(io) naming the path and the system's reason (also for a
  // path that is not a regular file: FIFOs and devices are refused without blocking).
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

  // The file's identity when it was mapped.
  const FileIdentity& identity() const { return identity_; }
  // "" when the mapped file is as it was mapped (same device, inode, size and modification time),
  // else what changed, for messages ("its size went from ... to ...").
  // One fstat; thread-safe.
  std::string changes() const;
  // preads [offset, offset + dst.size()) of the mapped file (the same inode, whatever its path names
  // now) into dst, leaving the mapping untouched; Error(io) as FileReader::read.
  void read(std::size_t offset, std::span<std::byte> dst) const;
  // The reader on that descriptor (for a row source that must read the very file mapped). Only
  // for a non-empty mapping.
  const FileReader& reader() const { return *file_; }

 private:
  void release() noexcept;
  std::string path_;
  void* data_ = nullptr;
  std::size_t size_ = 0;
  std::unique_ptr<FileReader> file_;  // the open descriptor of the mapped file
  FileIdentity identity_;
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
