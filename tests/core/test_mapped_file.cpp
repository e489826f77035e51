#include <gtest/gtest.h>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>
#include <fstream>

#include "core/fault_guard.h"
#include "core/mapped_file.h"
#include "leanembed/error.h"
#include "test_support.h"

using leanembed::Error;
using leanembed::ErrorCode;
using leanembed::MappedFile;

TEST(MappedFile, MapsTheBytesOfAFile) {
  std::string path = leanembed::test::binary_dir() + "/mapped_file_test.bin";
  { std::ofstream(path, std::ios::binary) << "hello"; }
  MappedFile f(path);
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.bytes().data()), f.size()), "hello");
  MappedFile moved = std::move(f);
  EXPECT_EQ(moved.size(), 5u);
  EXPECT_EQ(f.size(), 0u);
  std::remove(path.c_str());
}

TEST(MappedFile, MissingFileIsAnIoErrorNamingThePath) {
  try {
    MappedFile f("/nonexistent/dir/model.onnx");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.onnx"), std::string::npos);
  }
}

TEST(MappedFile, DirectoryIsRefused) {
  EXPECT_THROW(MappedFile f("/tmp"), Error);
}

namespace {

std::string scratch_file(const std::string& name, std::size_t bytes) {
  const std::string path = leanembed::test::binary_dir() + "/" + name + "-" + std::to_string(::getpid());
  std::ofstream(path, std::ios::binary) << std::string(bytes, 'a');
  return path;
}

}  // namespace

// Issue 16, item 3: what is mapped can be checked against what was mapped.
TEST(MappedFile, ChangesReportsARewriteInPlace) {
  const std::string path = scratch_file("mapped_rewrite", 3 * 4096);
  MappedFile f(path);
  EXPECT_EQ(f.changes(), "");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a new timestamp tick
  {
    std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.seekp(5000);
    out << "b";
  }
  EXPECT_EQ(static_cast<char>(f.bytes()[5000]), 'b');  // the mapping sees the write (MAP_PRIVATE does not copy)
  EXPECT_NE(f.changes().find("modified in place"), std::string::npos) << f.changes();
  std::remove(path.c_str());
}

TEST(MappedFile, ReplacingThePathDoesNotChangeTheMapping) {
  const std::string path = scratch_file("mapped_replace", 4096);
  MappedFile f(path);
  const std::string other = scratch_file("mapped_replace_new", 100);
  ASSERT_EQ(std::rename(other.c_str(), path.c_str()), 0);
  EXPECT_EQ(f.changes(), "");  // the mapped inode is untouched
  EXPECT_EQ(f.size(), 4096u);
  EXPECT_EQ(static_cast<char>(f.bytes()[4095]), 'a');
  std::remove(path.c_str());
}

TEST(MappedFile, ChangesReportsATruncation) {
  const std::string path = scratch_file("mapped_truncate", 4 * 4096);
  MappedFile f(path);
  ASSERT_EQ(::truncate(path.c_str(), 4096), 0);
  EXPECT_NE(f.changes().find("size went from 16384 to 4096"), std::string::npos) << f.changes();
  std::vector<std::byte> b(10);
  EXPECT_THROW(f.read(3 * 4096, b), Error);  // pread of the truncated range: an error, not a signal
  std::remove(path.c_str());
}

namespace {
// Reads the first byte of the page at p (an inaccessible page: SIGSEGV).
void read_byte(void* p) { (void)*static_cast<const volatile char*>(p); }
void add_one(void* p) { ++*static_cast<int*>(p); }
}  // namespace

// The guard the LMDB store reads under: a fault inside is a false return; outside, the default.
TEST(FaultGuard, AFaultInsideIsAFalseReturn) {
  void* page = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  EXPECT_FALSE(leanembed::fault_guard::call_catching_faults(read_byte, page));
  int n = 0;
  EXPECT_TRUE(leanembed::fault_guard::call_catching_faults(add_one, &n));
  EXPECT_EQ(n, 1);
  EXPECT_FALSE(leanembed::fault_guard::call_catching_faults(read_byte, page));  // again: the handler stays
  ::munmap(page, 4096);
  const std::string path = scratch_file("fault_guard_truncate", 4 * 4096);
  EXPECT_EXIT(
      {
        MappedFile f(path);
        ::truncate(path.c_str(), 4096);
        volatile char x = static_cast<char>(f.bytes()[3 * 4096]);  // outside any guard: SIGBUS as ever
        (void)x;
        std::exit(0);
      },
      // Killed by SIGBUS (or, under a sanitizer whose handler was there before ours, its report and
      // an abort or failing exit): never a normal exit.
      [](int status) {
        return WIFSIGNALED(status) ? WTERMSIG(status) == SIGBUS || WTERMSIG(status) == SIGABRT : WEXITSTATUS(status) != 0;
      },
      "");
  std::remove(path.c_str());
}
