// -o FILE, written so that a failing run never destroys what FILE held: the vectors go to
// "FILE.tmp-PID" in the same folder (same permissions as FILE, else 0666 less the umask), which
// commit() flushes, syncs and renames over FILE. A run that fails, or is stopped by SIGINT, SIGTERM
// or SIGHUP, removes its temporary; temporaries of processes that died harder (SIGKILL, power
// loss) are removed by the next run writing the same FILE. A FILE that is a symbolic link is
// replaced at its target. Devices and FIFOs (/dev/null, /dev/full, a named pipe) are written in
// place: there is nothing to protect and no rename is possible.
#pragma once

#include <cstdio>
#include <string>

namespace leanembed::cli {

class OutputFile {
 public:
  // Opens the temporary (or the device); throws Error(io) naming the path.
  explicit OutputFile(const std::string& path);
  ~OutputFile();  // uncommitted: closes and removes the temporary; FILE is untouched
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  std::FILE* stream() const { return stream_; }
  // Finishes: flush, fsync, close, rename over FILE. Throws Error(io) (the temporary is removed).
  void commit();

 private:
  std::string path_;    // as the user named it, for messages
  std::string target_;  // where the file ends up (symbolic links resolved)
  std::string temp_;    // "" when writing in place
  std::FILE* stream_ = nullptr;
  bool committed_ = false;
};

}  // namespace leanembed::cli
