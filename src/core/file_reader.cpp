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

}  // namespace

FileReader::FileReader(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(ErrorCode::io, "cannot open '" + path + "' for reading: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    throw Error(ErrorCode::io, "cannot stat '" + path + "': " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw Error(ErrorCode::io, "'" + path + "' is not a regular file");
  }
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
