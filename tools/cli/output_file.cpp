#include "output_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "leanembed/error.h"

namespace leanembed::cli {
namespace {

// The temporary being written, for the signal handler (one output per process).
char g_temp[PATH_MAX + 32];

void remove_temp_and_die(int sig) {
  if (g_temp[0]) ::unlink(g_temp);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void on_stop_signals_remove(const std::string& temp) {
  if (temp.size() >= sizeof g_temp) return;
  std::memcpy(g_temp, temp.c_str(), temp.size() + 1);
  struct sigaction sa {};
  sa.sa_handler = remove_temp_and_die;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

void forget_temp() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::signal(sig, SIG_DFL);
  g_temp[0] = 0;
}

// "NAME.tmp-PID" files beside `target` whose process is gone: left by a run that was killed.
void remove_stale_temporaries(const std::filesystem::path& target) {
  namespace fs = std::filesystem;
  const std::string prefix = target.filename().string() + ".tmp-";
  std::error_code ec;
  for (fs::directory_iterator it(target.parent_path().empty() ? "." : target.parent_path(), ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(prefix)) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos || pid_text.size() > 9) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) fs::remove(it->path(), ec);
  }
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(ErrorCode::io, "cannot write '" + path + "': " + what);
}

}  // namespace

OutputFile::OutputFile(const std::string& path) : path_(path), target_(path) {
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && !S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode)) fail(path, "it is a directory");
    stream_ = std::fopen(path.c_str(), "wb");  // a device or FIFO: written in place
    if (!stream_) fail(path, std::strerror(errno));
    return;
  }
  if (exists) {
    if (char* real = ::realpath(path.c_str(), nullptr)) {  // a symbolic link: replace its target
      target_ = real;
      std::free(real);
    }
  }
  remove_stale_temporaries(target_);
  temp_ = target_ + ".tmp-" + std::to_string(::getpid());
  ::unlink(temp_.c_str());  // ours only if a process of the same number died before us
  const int fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) fail(path, std::strerror(errno));
  if (exists) ::fchmod(fd, st.st_mode & 07777);
  on_stop_signals_remove(temp_);
  stream_ = ::fdopen(fd, "wb");
  if (!stream_) {
    ::close(fd);
    ::unlink(temp_.c_str());
    forget_temp();
    fail(path, "fdopen failed");
  }
}

OutputFile::~OutputFile() {
  if (committed_) return;
  if (stream_) std::fclose(stream_);
  if (!temp_.empty()) {
    ::unlink(temp_.c_str());
    forget_temp();
  }
}

void OutputFile::commit() {
  std::FILE* f = stream_;
  stream_ = nullptr;
  committed_ = true;
  std::string problem;
  if (std::fflush(f) != 0 || std::ferror(f)) problem = std::strerror(errno);
  if (problem.empty() && !temp_.empty() && ::fsync(fileno(f)) != 0) problem = std::strerror(errno);
  if (std::fclose(f) != 0 && problem.empty()) problem = std::strerror(errno);
  if (problem.empty() && !temp_.empty() && std::rename(temp_.c_str(), target_.c_str()) != 0) problem = std::strerror(errno);
  if (!temp_.empty()) {
    if (!problem.empty()) ::unlink(temp_.c_str());
    forget_temp();
  }
  if (!problem.empty()) fail(path_, problem);
}

}  // namespace leanembed::cli
