// External data (TensorProto.data_location = EXTERNAL) and the ONNX security rules, on files written
// into a scratch folder under the build directory.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "reader_test_util.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using namespace leanembed::onnx;
using leanembed::ErrorCode;
using leanembed::test::expect_error;
using leanembed::test::le_bytes;
using leanembed::test::model_with_initializer;
using leanembed::test::Proto;
using leanembed::test::tensor_header;

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

Proto external_tensor(const std::string& name, int32_t dtype, std::initializer_list<int64_t> dims,
                      std::initializer_list<std::pair<std::string, std::string>> entries) {
  Proto t = tensor_header(name, dtype, dims);
  for (const auto& [k, v] : entries) t.message(13, Proto().bytes(1, k).bytes(2, v));
  t.varint(14, 1);
  return t;
}

class ExternalData : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(leanembed::test::binary_dir()) / ("onnx_external_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    dir_ = root_ / "model";
    fs::create_directories(dir_);
    // weights.bin: 8 bytes of padding, then float32 {1,2,3} at offset 8, then int64 {-7} at offset 20.
    write(dir_ / "weights.bin", std::string(8, '\0') + le_bytes<float>({1, 2, 3}) + le_bytes<int64_t>({-7}));
    write(root_ / "outside.bin", le_bytes<float>({9, 9, 9}));
  }
  void TearDown() override { fs::remove_all(root_); }

  // Writes `m` as model.onnx in the model folder and reads it.
  Model read(const Proto& m, const ReadOptions& opt = {}) {
    write(dir_ / "model.onnx", m.str());
    return read_model((dir_ / "model.onnx").string(), opt);
  }
  void expect_read_error(const Proto& m, ErrorCode code, std::initializer_list<std::string> words) {
    expect_error([&] { read(m); }, code, words);
  }

  fs::path root_, dir_;
};

template <typename T>
std::vector<T> values(const TensorData& t) {
  std::vector<T> v(t.bytes.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}

TEST_F(ExternalData, TensorsShareOneMappingOfTheirFile) {
  Proto g;
  g.message(1, leanembed::test::node("Identity", {"a"}, {"y"}));
  g.message(1, leanembed::test::node("Identity", {"b"}, {"z"}));
  g.message(5, external_tensor("a", 1, {3}, {{"location", "weights.bin"}, {"offset", "8"}, {"length", "12"},
                                             {"checksum", "ignored"}}));
  g.message(5, external_tensor("b", 7, {1}, {{"location", "weights.bin"}, {"offset", "20"}}));  // length: to the end
  g.message(12, leanembed::test::value_info("y", 1, {3})).message(12, leanembed::test::value_info("z", 7, {1}));
  ReadOptions zero_copy;
  zero_copy.copy_misaligned = false;
  Model m = read(leanembed::test::model(g), zero_copy);
  const TensorData& a = *m.graph.initializer("a");
  const TensorData& b = *m.graph.initializer("b");
  EXPECT_EQ(values<float>(a), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(values<int64_t>(b), (std::vector<int64_t>{-7}));
  EXPECT_TRUE(a.mapped);
  EXPECT_TRUE(b.mapped);
  EXPECT_EQ(a.owner.get(), b.owner.get());  // one mapping
  EXPECT_EQ(b.bytes.data(), a.bytes.data() + 12);
  EXPECT_EQ(m.storage.size(), 2u);          // the model file and weights.bin
  EXPECT_EQ(m.bytes_copied, 0u);
  // By default the int64 at offset 20 (not a multiple of 8) is copied; the floats at 8 stay a view.
  Model d = read(leanembed::test::model(g));
  EXPECT_EQ(d.bytes_copied, 8u);
  EXPECT_EQ(d.tensors_copied, 1u);
  EXPECT_TRUE(d.graph.initializer("a")->mapped);
  EXPECT_FALSE(d.graph.initializer("b")->mapped);
  EXPECT_EQ(d.graph.initializer("b")->as<int64_t>()[0], -7);
}

TEST_F(ExternalData, SubfoldersAndSymlinksInsideTheFolderAreAllowed) {
  write(dir_ / "data" / "w.bin", le_bytes<float>({4, 5}));
  fs::create_symlink("data/w.bin", dir_ / "link.bin");
  Model m = read(model_with_initializer(external_tensor("w", 1, {2}, {{"location", "data/w.bin"}})));
  EXPECT_EQ(values<float>(*m.graph.initializer("w")), (std::vector<float>{4, 5}));
  Model l = read(model_with_initializer(external_tensor("w", 1, {2}, {{"location", "link.bin"}})));
  EXPECT_EQ(values<float>(*l.graph.initializer("w")), (std::vector<float>{4, 5}));
}

TEST_F(ExternalData, AbsolutePathsAreRefused) {
  std::string abs = (root_ / "outside.bin").string();
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", abs}})), ErrorCode::model_format,
                    {"model.onnx", "'w'", "absolute path"});
}

TEST_F(ExternalData, DotDotComponentsAreRefused) {
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "../outside.bin"}})),
                    ErrorCode::model_format, {"'w'", "'..'"});
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "sub/../../outside.bin"}})),
                    ErrorCode::model_format, {"'..'"});
}

TEST_F(ExternalData, SymlinksPointingOutsideAreRefused) {
  fs::create_symlink(root_ / "outside.bin", dir_ / "escape.bin");
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "escape.bin"}})),
                    ErrorCode::model_format, {"'w'", "outside the model folder"});
  fs::create_symlink(root_, dir_ / "up");
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "up/outside.bin"}})),
                    ErrorCode::model_format, {"outside the model folder"});
}

TEST_F(ExternalData, RangesMustLieInsideTheFile) {
  // weights.bin has 28 bytes.
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "weights.bin"}, {"offset", "20"}, {"length", "12"}})),
                    ErrorCode::model_format, {"'w'", "offset 20 + length 12", "28 bytes"});
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "weights.bin"}, {"offset", "29"}})),
                    ErrorCode::model_format, {"offset 29", "past the end"});
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "weights.bin"}, {"offset", "9999999999999999999"}, {"length", "12"}})),
                    ErrorCode::model_format, {"past the end"});
}

TEST_F(ExternalData, LengthMustMatchTheTensor) {
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "weights.bin"}, {"offset", "8"}, {"length", "8"}})),
                    ErrorCode::model_format, {"'w'", "length 8", "12 bytes"});
  // Without a length the rest of the file (28 - 8 = 20 bytes) must be the tensor.
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "weights.bin"}, {"offset", "8"}})),
                    ErrorCode::model_format, {"length 20", "12 bytes"});
}

TEST_F(ExternalData, MalformedEntries) {
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"offset", "8"}})), ErrorCode::model_format,
                    {"'w'", "no 'location'"});
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", ""}})), ErrorCode::model_format,
                    {"empty 'location'"});
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "weights.bin"}, {"offset", "-8"}})),
                    ErrorCode::model_format, {"offset '-8'"});
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "weights.bin"}, {"length", "12x"}})),
                    ErrorCode::model_format, {"length '12x'"});
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "weights.bin"}, {"location", "weights.bin"}})),
                    ErrorCode::model_format, {"'location' twice"});
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "missing.bin"}})), ErrorCode::io,
                    {"'w'", "missing.bin", "not found"});
  fs::create_directories(dir_ / "folder");
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "folder"}})), ErrorCode::io,
                    {"not a regular file"});
  // EXTERNAL together with data in the file, and external entries without EXTERNAL.
  Proto both = external_tensor("w", 1, {3}, {{"location", "weights.bin"}});
  both.bytes(9, le_bytes<float>({1, 2, 3}));
  expect_read_error(model_with_initializer(both), ErrorCode::model_format, {"also has data in the file"});
  Proto not_ext = leanembed::test::raw_tensor("w", 1, {3}, le_bytes<float>({1, 2, 3}));
  not_ext.message(13, Proto().bytes(1, "location").bytes(2, "weights.bin"));
  expect_read_error(model_with_initializer(not_ext), ErrorCode::model_format, {"data_location is not EXTERNAL"});
}

TEST_F(ExternalData, RefusedWithoutAFolderOrWhenDisabled) {
  Proto m = model_with_initializer(external_tensor("w", 1, {3}, {{"location", "weights.bin"}, {"offset", "8"}}));
  expect_error([&] { leanembed::test::parse(m); }, ErrorCode::unsupported, {"'w'", "external data"});
  ReadOptions off;
  off.allow_external_data = false;
  expect_error([&] { read(m, off); }, ErrorCode::unsupported, {"'w'", "external data"});
}

}  // namespace

namespace {

// Issue 16, item 6: a location naming a FIFO (or any file that is not a regular file) inside the
// folder is refused at once; opening a FIFO for reading used to wait forever for a writer.
class ExternalDataNotRegular : public ExternalData {};

TEST_F(ExternalDataNotRegular, FifoIsRefusedWithoutBlocking) {
  ASSERT_EQ(::mkfifo((dir_ / "fifo.bin").c_str(), 0644), 0);
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "fifo.bin"}})), ErrorCode::io,
                    {"fifo.bin", "not a regular file"});
}

TEST_F(ExternalDataNotRegular, DirectoryIsRefused) {
  fs::create_directories(dir_ / "folder.bin");
  expect_read_error(model_with_initializer(external_tensor("w", 1, {3}, {{"location", "folder.bin"}})), ErrorCode::io,
                    {"folder.bin", "not a regular file"});
}

}  // namespace
