#include "core/file_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "leanembed/error.h"

namespace leanembed {
namespace {

[[noreturn]] void read_failed(const std::string& path, std::size_t offset, std::size_t size, const std::string& reason) {
  throw Error(ErrorCode::io, "cannot read " + std::to_string(size) + " bytes at offset " + std::to_string(offset) +
                                 " of '" + path + "': " + reason);
}

[[noreturn]] void not_regular(const std::string& path, mode_t mode) {
  const char* kind = S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO" : S_ISCHR(mode) ? "a character device"
                     : S_ISBLK(mode) ? "a block device" : S_ISSOCK(mode) ? "a socket" : "of another kind";
  throw Error(ErrorCode::io, "'" + path + "' is not a regular file (it is " + kind + ")");
}

}  // namespace

// Only regular files are read: a FIFO would block open() until a writer comes (forever, for a model
// folder), a device may never end. The path is checked before opening (opening some devices has
// effects), then opened non-blocking (a FIFO swapped in between does not block) and checked again
// on the descriptor, which is what is read.
FileReader::FileReader(const std::string& path) : path_(path) {
  struct stat before {};
  if (::stat(path.c_str(), &before) == 0 && !S_ISREG(before.st_mode)) not_regular(path, before.st_mode);
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd_ < 0) throw Error(ErrorCode::io, "cannot open '" + path + "' for reading: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    throw Error(ErrorCode::io, "cannot stat '" + path + "': " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    not_regular(path, st.st_mode);
  }
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);  // no effect on regular files; cleared for clarity
  size_ = static_cast<std::size_t>(st.st_size);
}

FileReader::~FileReader() { ::close(fd_); }

void FileReader::read(std::size_t offset, std::span<std::byte> dst) const {
  constexpr auto max_offset = static_cast<std::size_t>(std::numeric_limits<off_t>::max());
  if (offset > max_offset || dst.size() > max_offset - offset)
    read_failed(path_, offset, dst.size(), "the range lies beyond any file offset");
  std::size_t done = 0;
  while (done < dst.size()) {
    const ssize_t n = ::pread(fd_, dst.data() + done, dst.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      read_failed(path_, offset, dst.size(), std::strerror(errno));
    }
    if (n == 0) read_failed(path_, offset, dst.size(), "end of file after " + std::to_string(offset + done) + " bytes");
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace leanembed
