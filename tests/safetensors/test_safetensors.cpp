// The safetensors reader: the shared fixtures read as their writer wrote them; files written here
// read back value for value; every malformed header the format rules out is refused with
// Error(model_format) naming what is wrong.
#include "safetensors/safetensors.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "leanembed/error.h"
#include "safetensors_test_writer.h"
#include "test_support.h"

namespace leanembed {
namespace {

namespace fs = std::filesystem;
using safetensors::Dtype;
using safetensors::File;
using test::TestTensor;

std::span<const std::byte> as_span(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

// The message of the Error(model_format) that parsing `bytes` throws ("" if it does not throw).
std::string refusal(const std::string& bytes) {
  try {
    File::parse(as_span(bytes), "bad.safetensors");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::model_format) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "accepted";
  return "";
}

TEST(Safetensors, ReadsTheSharedTinyModel) {
  const std::string path = test::shared_dir() + "/models/tiny-bert-synthetic/model.safetensors";
  auto f = File::open(path);
  EXPECT_EQ(f->path(), path);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  const safetensors::Tensor* word = f->find("embeddings.word_embeddings.weight");
  ASSERT_NE(word, nullptr);
  EXPECT_EQ(word->dtype, Dtype::F32);
  EXPECT_EQ(word->shape, (std::vector<int64_t>{30522, 64}));
  EXPECT_EQ(word->bytes.size(), 30522u * 64 * 4);
  EXPECT_EQ(word->bytes.data(), f->bytes().data() + word->file_offset);
  EXPECT_NE(f->find("pooler.dense.weight"), nullptr);
  EXPECT_EQ(f->find("no.such.tensor"), nullptr);
  EXPECT_TRUE(std::is_sorted(f->tensors().begin(), f->tensors().end(),
                             [](const auto& a, const auto& b) { return a.name < b.name; }));
  // The views are the file's bytes: the tensors cover the data exactly.
  std::size_t total = 0;
  for (const auto& t : f->tensors()) total += t.bytes.size();
  EXPECT_EQ(total + f->data_offset(), fs::file_size(path));
}

TEST(Safetensors, ReadsBackWhatTheTestWriterWrote) {
  const std::vector<float> f32{1.5f, -2.0f, 3.25f};
  const std::vector<uint16_t> half{0x3c00, 0xc000};   // 1, -2
  const std::vector<int64_t> ids{0, 1, 2, 3};
  const std::string bytes = test::safetensors_bytes(
      {{"b", "F32", {3}, test::bytes_of(f32)},
       {"a", "F16", {1, 2}, test::bytes_of(half)},
       {"ids", "I64", {1, 4}, test::bytes_of(ids)},
       {"empty", "BF16", {0, 7}, {}},
       {"scalar", "F32", {}, test::bytes_of(std::vector<float>{7.0f})}},
      {{"format", "pt"}, {"note", "x"}});
  File f = File::parse(as_span(bytes), "test.safetensors");
  ASSERT_EQ(f.tensors().size(), 5u);
  EXPECT_EQ(f.tensors()[0].name, "a");
  EXPECT_EQ(f.metadata().at("note"), "x");
  const auto* b = f.find("b");
  ASSERT_NE(b, nullptr);
  float v;
  std::memcpy(&v, b->bytes.data() + 4, 4);
  EXPECT_EQ(v, -2.0f);
  EXPECT_EQ(f.find("ids")->dtype, Dtype::I64);
  EXPECT_EQ(f.find("ids")->numel(), 4);
  EXPECT_EQ(f.find("empty")->bytes.size(), 0u);
  EXPECT_EQ(f.find("scalar")->numel(), 1);
  EXPECT_EQ(safetensors::dtype_size(Dtype::BF16), 2u);
  EXPECT_STREQ(safetensors::dtype_name(Dtype::F8_E4M3), "F8_E4M3");
}

TEST(Safetensors, RefusesATruncatedFile) {
  std::string bytes = test::read_file(test::shared_dir() + "/models/tiny-bert-synthetic/model.safetensors");
  const std::string cut = refusal(bytes.substr(0, bytes.size() - 100));
  EXPECT_NE(cut.find("past its end"), std::string::npos) << cut;
  EXPECT_NE(refusal(bytes.substr(0, 5)).find("shorter than the 8-byte header length"), std::string::npos);
  EXPECT_NE(refusal(bytes.substr(0, 200)).find("runs past the end of the file"), std::string::npos);
  // The message names the tensor that no longer fits.
  EXPECT_NE(cut.find("tensor '"), std::string::npos);
}

TEST(Safetensors, RefusesAnOversizedHeaderLength) {
  std::string bytes(8, '\0');
  const uint64_t n = safetensors::kMaxHeaderBytes + 1;
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  bytes += std::string(64, ' ');
  EXPECT_NE(refusal(bytes).find("exceeds the limit"), std::string::npos) << refusal(bytes);
  bytes[7] = static_cast<char>(0xff);  // ~2^63: no overflow in the check either
  EXPECT_NE(refusal(bytes).find("exceeds the limit"), std::string::npos);
}

TEST(Safetensors, RefusesAHeaderThatIsNotAJsonObject) {
  EXPECT_NE(refusal(test::safetensors_bytes_with_header("{\"a\": {\"dtype\": \"F32\"", {})).find("not valid JSON"), std::string::npos);
  EXPECT_NE(refusal(test::safetensors_bytes_with_header("\xff\xfe garbage", {})).find("not valid JSON"), std::string::npos);
  EXPECT_NE(refusal(test::safetensors_bytes_with_header("", {})).find("not valid JSON"), std::string::npos);
  EXPECT_NE(refusal(test::safetensors_bytes_with_header("[1, 2]", {})).find("not an object"), std::string::npos);
  EXPECT_NE(refusal(test::safetensors_bytes_with_header("{\"a\": [[[[[[1]]]]]]}", {})).find("nested deeper"), std::string::npos);
}

TEST(Safetensors, RefusesOverlappingTensors) {
  const std::string h = R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                            "y": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})";
  const std::string msg = refusal(test::safetensors_bytes_with_header(h, std::vector<uint8_t>(12)));
  EXPECT_NE(msg.find("tensor 'y'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("overlaps tensor 'x'"), std::string::npos) << msg;
}

TEST(Safetensors, RefusesGapsAndUncoveredBytes) {
  const std::string gap = R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                              "y": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})";
  EXPECT_NE(refusal(test::safetensors_bytes_with_header(gap, std::vector<uint8_t>(12))).find("gap"), std::string::npos);
  const std::string tail = R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})";
  EXPECT_NE(refusal(test::safetensors_bytes_with_header(tail, std::vector<uint8_t>(8))).find("cover 4 bytes of the 8"),
            std::string::npos);
}

TEST(Safetensors, RefusesAByteLengthThatDisagreesWithTheShape) {
  const std::string h = R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})";
  const std::string msg = refusal(test::safetensors_bytes_with_header(h, std::vector<uint8_t>(20)));
  EXPECT_NE(msg.find("tensor 'w'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("needs 24 bytes"), std::string::npos) << msg;
  const std::string overflow = R"({"w": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})";
  EXPECT_NE(refusal(test::safetensors_bytes_with_header(overflow, {})).find("overflows"), std::string::npos);
  const std::string bytes_overflow = R"({"w": {"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 0]}})";
  EXPECT_NE(refusal(test::safetensors_bytes_with_header(bytes_overflow, {})).find("overflows"), std::string::npos);
}

TEST(Safetensors, RefusesMalformedEntries) {
  auto one = [](const std::string& entry) {
    return refusal(test::safetensors_bytes_with_header("{\"t\": " + entry + "}", std::vector<uint8_t>(8)));
  };
  EXPECT_NE(one(R"({"dtype": "F33", "shape": [2], "data_offsets": [0, 8]})").find("unknown dtype 'F33'"), std::string::npos);
  EXPECT_NE(one(R"({"shape": [2], "data_offsets": [0, 8]})").find("no dtype"), std::string::npos);
  EXPECT_NE(one(R"({"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]})").find("non-negative integer"), std::string::npos);
  EXPECT_NE(one(R"({"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]})").find("non-negative integer"), std::string::npos);
  EXPECT_NE(one(R"({"dtype": "F32", "shape": 2, "data_offsets": [0, 8]})").find("no shape"), std::string::npos);
  EXPECT_NE(one(R"({"dtype": "F32", "shape": [2], "data_offsets": [8, 0]})").find("end before they begin"), std::string::npos);
  EXPECT_NE(one(R"({"dtype": "F32", "shape": [2], "data_offsets": [0]})").find("data_offsets"), std::string::npos);
  EXPECT_NE(one(R"("F32")").find("not an object"), std::string::npos);
  EXPECT_NE(refusal(test::safetensors_bytes_with_header(
                        R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                            "t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                        std::vector<uint8_t>(8)))
                .find("names 't' twice"),
            std::string::npos);
  EXPECT_NE(refusal(test::safetensors_bytes_with_header(R"({"__metadata__": {"format": 1}})", {})).find("not a string"),
            std::string::npos);
  EXPECT_NE(refusal(test::safetensors_bytes_with_header(R"({"__metadata__": ["pt"]})", {})).find("__metadata__"),
            std::string::npos);
}

TEST(Safetensors, OpenNamesAMissingFile) {
  try {
    File::open("/nonexistent/model.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.safetensors"), std::string::npos);
  }
}

}  // namespace
}  // namespace leanembed
