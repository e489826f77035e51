// FileReader: pread of byte ranges, checked against a mapping of the same file; errors name the path.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/file_reader.h"
#include "core/mapped_file.h"
#include "leanembed/error.h"
#include "test_support.h"

using leanembed::Error;
using leanembed::ErrorCode;
using leanembed::FileReader;
using leanembed::MappedFile;

namespace {

// A file of n pseudo-random bytes under the build folder; removed by the destructor.
struct TempFile {
  std::string path;
  explicit TempFile(std::size_t n, const std::string& name) : path(leanembed::test::binary_dir() + "/" + name) {
    std::vector<char> bytes(n);
    uint32_t x = 12345;
    for (char& b : bytes) {
      x = x * 1664525u + 1013904223u;
      b = static_cast<char>(x >> 24);
    }
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(n));
  }
  ~TempFile() { std::remove(path.c_str()); }
};

std::vector<std::byte> read(const FileReader& r, std::size_t offset, std::size_t n) {
  std::vector<std::byte> v(n);
  r.read(offset, v);
  return v;
}

// Expects f() to throw Error(io) whose message contains every word.
template <typename F>
void expect_io_error(F f, std::initializer_list<std::string> words) {
  try {
    f();
    ADD_FAILURE() << "expected Error(io)";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io) << e.what();
    for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what() << " lacks " << w;
  }
}

}  // namespace

TEST(FileReader, ReadsWhatTheMappingHolds) {
  TempFile file(100'003, "file_reader_test.bin");
  FileReader reader(file.path);
  MappedFile mapped(file.path);
  ASSERT_EQ(reader.size(), 100'003u);
  EXPECT_EQ(reader.path(), file.path);
  struct Range {
    std::size_t offset, n;
  };
  for (Range r : {Range{0, 1}, Range{0, 100'003}, Range{1, 4095}, Range{4095, 2}, Range{4096, 4096}, Range{77'777, 1536},
                  Range{100'002, 1}, Range{100'003, 0}, Range{50'000, 0}}) {
    std::vector<std::byte> got = read(reader, r.offset, r.n);
    ASSERT_EQ(got.size(), r.n);
    if (r.n > 0) {
      EXPECT_EQ(std::memcmp(got.data(), mapped.bytes().data() + r.offset, r.n), 0) << "offset " << r.offset << " n " << r.n;
    }
  }
}

TEST(FileReader, ReadsFromSeveralThreadsAtOnce) {
  TempFile file(64 * 1024, "file_reader_threads.bin");
  const FileReader reader(file.path);
  MappedFile mapped(file.path);
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (std::size_t i = 0; i < 2000; ++i) {
        const std::size_t offset = (i * 7919 + static_cast<std::size_t>(t) * 131) % (64 * 1024 - 384);
        std::vector<std::byte> got = read(reader, offset, 384);
        mismatches[t] += std::memcmp(got.data(), mapped.bytes().data() + offset, 384) != 0;
      }
    });
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST(FileReader, ReadingPastTheEndIsAnIoErrorNamingThePathAndRange) {
  TempFile file(1000, "file_reader_short.bin");
  FileReader reader(file.path);
  expect_io_error([&] { read(reader, 990, 11); }, {file.path, "990", "11 bytes", "end of file"});
  expect_io_error([&] { read(reader, 1000, 1); }, {file.path, "1000", "end of file"});
  expect_io_error([&] { read(reader, 5000, 4); }, {file.path, "5000"});
  expect_io_error([&] { read(reader, SIZE_MAX - 2, 4); }, {file.path, "beyond"});
}

TEST(FileReader, AFileTruncatedAfterOpeningIsAnIoError) {
  TempFile file(8192, "file_reader_truncated.bin");
  FileReader reader(file.path);
  EXPECT_EQ(read(reader, 8000, 192).size(), 192u);
  ASSERT_EQ(::truncate(file.path.c_str(), 4096), 0);
  expect_io_error([&] { read(reader, 8000, 192); }, {file.path, "8000", "end of file"});
  expect_io_error([&] { read(reader, 4000, 192); }, {file.path, "4000", "end of file after 4096 bytes"});
  EXPECT_EQ(read(reader, 0, 4096).size(), 4096u);
}

TEST(FileReader, AMissingFileIsAnIoErrorNamingThePath) {
  expect_io_error([] { FileReader r("/nonexistent/dir/model.onnx"); }, {"/nonexistent/dir/model.onnx"});
}

TEST(FileReader, ADirectoryIsRefused) {
  expect_io_error([] { FileReader r("/tmp"); }, {"/tmp", "not a regular file"});
}

// Issue 16, item 6: a FIFO or a device is refused at once (opening a FIFO for reading used to wait
// for a writer forever).
TEST(FileReader, AFifoIsRefusedWithoutBlocking) {
  const std::string path = leanembed::test::binary_dir() + "/file_reader_fifo-" + std::to_string(::getpid());
  std::remove(path.c_str());
  ASSERT_EQ(::mkfifo(path.c_str(), 0644), 0);
  expect_io_error([&] { FileReader r(path); }, {path, "not a regular file", "FIFO"});
  expect_io_error([&] { MappedFile m(path); }, {path, "not a regular file"});
  std::remove(path.c_str());
}

TEST(FileReader, ADeviceIsRefused) {
  expect_io_error([] { FileReader r("/dev/zero"); }, {"/dev/zero", "not a regular file", "character device"});
}
