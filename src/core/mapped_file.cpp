#include "core/mapped_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "core/file_reader.h"
#include "leanembed/error.h"

namespace leanembed {

MappedFile::MappedFile() = default;

MappedFile::MappedFile(const std::string& path)
    : path_(path), file_(std::make_unique<FileReader>(path)) {  // open, fstat, regular-file check
  identity_ = identity_of_descriptor(file_->descriptor(), path);
  size_ = file_->size();
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, file_->descriptor(), 0);
    if (p == MAP_FAILED) throw Error(ErrorCode::io, "cannot map '" + path + "': " + std::strerror(errno));
    data_ = p;
  }
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      file_(std::move(other.file_)),
      identity_(other.identity_) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    file_ = std::move(other.file_);
    identity_ = other.identity_;
  }
  return *this;
}

void MappedFile::release() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
  file_.reset();
}

std::string MappedFile::changes() const {
  if (!file_) return "";
  FileIdentity now;
  try {
    now = identity_of_descriptor(file_->descriptor(), path_);
  } catch (const Error& e) {
    return e.what();
  }
  if (now == identity_) return "";
  return describe_change(identity_, now);
}

void MappedFile::read(std::size_t offset, std::span<std::byte> dst) const {
  if (!file_) throw Error(ErrorCode::io, "cannot read an empty mapping");
  file_->read(offset, dst);
}

void drop_resident_pages(const void* data, std::size_t bytes) noexcept {
#ifdef MADV_PAGEOUT
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  if (data == nullptr || page == 0) return;
  const std::uintptr_t first = (begin + page - 1) / page * page, last = (begin + bytes) / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_PAGEOUT);  // advice: errors ignored
#else
  (void)data;
  (void)bytes;
#endif
}

void unmap_file_pages(const void* data, std::size_t bytes) noexcept {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  if (data == nullptr || page == 0) return;
  const std::uintptr_t first = (begin + page - 1) / page * page, last = (begin + bytes) / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);  // advice: errors ignored
}

}  // namespace leanembed
