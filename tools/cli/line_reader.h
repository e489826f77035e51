// Texts one per line from a file descriptor (stdin or --input FILE), for the CLI.
//
// - Lines split on "\n" only; a trailing "\r" is dropped; other bytes are kept as they are.
// - Streaming: next() can return `paused` when a partial chunk is waiting and no input arrived
//   for a short while, so the caller embeds (and flushes) what it has instead of waiting for a
//   full chunk: a client writing one line and waiting gets its vector.
// - Long lines: with a shortener (Embedder::shorten_partial_text), a line's bytes are checked as
//   they arrive and only what its tokens need is kept (exact). A line that still holds more than
//   `hard_cap` bytes after shortening (text whose bytes give very few tokens in ways the shortener
//   does not compress, see src/tokenizer/README.md) is cut there, with a warning on stderr naming
//   the line. Bytes kept per line: at most 2 × hard_cap + one read block (64 KiB).
// - Read errors (a directory, EIO) throw Error(io) naming the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace leanembed::cli {

class LineReader {
 public:
  // `name` names the input in messages ("stdin", "--input 'texts.txt'"). Does not own `fd`.
  LineReader(int fd, std::string name);
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Shortens a line's bytes so far; returns true when the rest of the line can be skipped.
  void set_shortener(std::function<bool(std::string&)> shorten, std::size_t hard_cap);

  enum class Next { line, end, paused };
  // The next line into `line`. pause_ms >= 0: if no complete line is buffered and nothing arrives
  // for pause_ms, returns `paused` (a partial line stays buffered for the next call); < 0: waits.
  Next next(std::string& line, int pause_ms = -1);
  // Lines returned so far.
  int64_t lines() const { return lines_; }

 private:
  void append(const char* p, std::size_t n);
  void fill();  // one read(); sets eof_; throws Error(io)

  int fd_;
  std::string name_;
  std::string block_;             // read buffer
  std::size_t pos_ = 0, len_ = 0;
  bool eof_ = false;
  std::string current_;           // the line being read
  bool partial_ = false;          // current_ holds bytes of a line not finished yet
  bool skipping_ = false;         // the rest of this line is not needed
  std::function<bool(std::string&)> shorten_;
  std::size_t hard_cap_ = 0;
  std::size_t next_check_ = 0;
  int64_t lines_ = 0;
};

}  // namespace leanembed::cli
