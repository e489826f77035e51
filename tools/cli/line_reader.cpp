#include "line_reader.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "leanembed/error.h"

namespace leanembed::cli {
namespace {

constexpr std::size_t kBlockBytes = std::size_t{64} << 10;
constexpr std::size_t kFirstCheckBytes = 4096;  // shorter lines are never looked at twice

}  // namespace

LineReader::LineReader(int fd, std::string name) : fd_(fd), name_(std::move(name)) {
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && S_ISDIR(st.st_mode)) {
    throw Error(ErrorCode::io, "cannot read " + name_ + ": it is a directory");
  }
  block_.resize(kBlockBytes);
}

void LineReader::set_shortener(std::function<bool(std::string&)> shorten, std::size_t hard_cap) {
  shorten_ = std::move(shorten);
  hard_cap_ = hard_cap;
  next_check_ = kFirstCheckBytes;
}

void LineReader::append(const char* p, std::size_t n) {
  partial_ = true;
  if (skipping_) return;
  current_.append(p, n);
  if (!shorten_ || current_.size() < next_check_) return;
  if (shorten_(current_)) {
    skipping_ = true;
  } else if (current_.size() > hard_cap_) {
    std::size_t cut = hard_cap_;
    while (cut > 0 && (static_cast<unsigned char>(current_[cut]) & 0xC0) == 0x80) --cut;  // a character boundary
    current_.resize(cut);
    skipping_ = true;
    std::fprintf(stderr,
                 "leanembed: warning: %s line %lld: its first %zu bytes (after dropping what gives no token) hold fewer "
                 "tokens than the maximum length; the rest of the line is ignored\n",
                 name_.c_str(), static_cast<long long>(lines_ + 1), hard_cap_);
  }
  next_check_ = std::max(kFirstCheckBytes, 2 * current_.size());
}

void LineReader::fill() {
  for (;;) {
    const ssize_t n = ::read(fd_, block_.data(), block_.size());
    if (n >= 0) {
      pos_ = 0;
      len_ = static_cast<std::size_t>(n);
      eof_ = n == 0;
      return;
    }
    if (errno == EINTR) continue;
    throw Error(ErrorCode::io, "cannot read " + name_ + ": " + std::strerror(errno));
  }
}

LineReader::Next LineReader::next(std::string& line, int pause_ms) {
  for (;;) {
    if (pos_ < len_) {
      const char* start = block_.data() + pos_;
      const void* nl = std::memchr(start, '\n', len_ - pos_);
      const std::size_t n = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - start) : len_ - pos_;
      append(start, n);
      pos_ += n;
      if (nl) {
        ++pos_;
        if (!skipping_ && !current_.empty() && current_.back() == '\r') current_.pop_back();
        line.swap(current_);
        current_.clear();
        partial_ = skipping_ = false;
        next_check_ = kFirstCheckBytes;
        ++lines_;
        return Next::line;
      }
      continue;
    }
    if (eof_) {
      if (!partial_) return Next::end;
      if (!skipping_ && !current_.empty() && current_.back() == '\r') current_.pop_back();
      line.swap(current_);
      current_.clear();
      partial_ = skipping_ = false;
      ++lines_;
      return Next::line;
    }
    if (pause_ms >= 0) {
      pollfd p{fd_, POLLIN, 0};
      int r;
      do r = ::poll(&p, 1, pause_ms); while (r < 0 && errno == EINTR);
      if (r == 0) return Next::paused;
    }
    fill();
  }
}

}  // namespace leanembed::cli
