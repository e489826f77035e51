#include "core/file_identity.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "leanembed/error.h"

namespace leanembed {
namespace {

FileIdentity from_stat(const struct stat& st) {
  FileIdentity id;
  id.device = static_cast<std::uint64_t>(st.st_dev);
  id.inode = static_cast<std::uint64_t>(st.st_ino);
  id.size = static_cast<std::uint64_t>(st.st_size);
  id.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return id;
}

}  // namespace

FileIdentity identity_of_descriptor(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error(ErrorCode::io, "cannot stat '" + path + "': " + std::strerror(errno));
  return from_stat(st);
}

std::optional<FileIdentity> identity_of_path(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return from_stat(st);
}

std::string describe_change(const FileIdentity& was, const std::optional<FileIdentity>& now) {
  if (!now) return "it was removed or cannot be read";
  if (now->device != was.device || now->inode != was.inode) {
    return "it was replaced by another file (inode " + std::to_string(was.inode) + " -> " + std::to_string(now->inode) + ")";
  }
  if (now->size != was.size) {
    return "its size went from " + std::to_string(was.size) + " to " + std::to_string(now->size) + " bytes";
  }
  if (now->mtime_ns != was.mtime_ns) return "it was modified in place (same size, new modification time)";
  return "it is unchanged";
}

}  // namespace leanembed
