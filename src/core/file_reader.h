// Reads byte ranges of a file with pread(2) (RAII over one read-only descriptor).
//
// For data a process reads a little at a time from a large file and should not keep resident: the
// bytes go through the kernel's page cache (shared, reclaimable) straight into the caller's buffer,
// so, unlike reads through a mapping, they never count in the process' resident set (RSS). The fast
// path reads the word-embedding table's rows this way (runtime/encoder/encoder_weights.h).
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace leanembed {

class FileReader {
 public:
  // Opens `path` read-only (O_CLOEXEC). Throws Error(io) naming the path and the system's reason
  // if it cannot be opened or is not a regular file.
  explicit FileReader(const std::string& path);
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // Fills dst (size dst.size() bytes) with the file's bytes [offset, offset + dst.size()); an empty
  // dst reads nothing. Retries interrupted (EINTR) and short reads. Throws Error(io) naming the
  // path, the offset and size asked for and the system's reason (or "end of file" when the file
  // ends before the range does, e.g. it was truncated since it was opened).
  // Threading: safe to call from several threads at once (pread has no shared file position).
  void read(std::size_t offset, std::span<std::byte> dst) const;

  const std::string& path() const { return path_; }
  // The open read-only descriptor (valid while this object lives; for mmap in MappedFile).
  int descriptor() const { return fd_; }
  // The file's size in bytes when it was opened.
  std::size_t size() const { return size_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::size_t size_ = 0;
};

}  // namespace leanembed
