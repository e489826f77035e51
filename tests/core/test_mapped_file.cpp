#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

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
