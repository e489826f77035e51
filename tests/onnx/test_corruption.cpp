// Truncated and corrupted files: always a leanembed::Error (or, for a corruption that happens to
// stay valid, a model), never a crash or another exception type. Run under the sanitizers too.
#include <gtest/gtest.h>

#include "reader_test_util.h"
#include "test_support.h"

namespace {

using namespace leanembed::onnx;
using leanembed::test::le_bytes;
using leanembed::test::node;
using leanembed::test::Proto;
using leanembed::test::tensor_header;
using leanembed::test::value_info;

// A small model touching most of the reader: raw, packed float and varint tensors, a Constant with
// a tensor attribute, int lists, symbolic shapes and an If with a subgraph using an outer value.
Proto feature_model() {
  Proto g;
  Proto c = node("Constant", {}, {"k"}, "const");
  c.message(5, Proto().bytes(1, "value").varint(20, 4).message(5, leanembed::test::raw_tensor("", 7, {2}, le_bytes<int64_t>({1, 2}))));
  g.message(1, c);
  Proto t = node("Transpose", {"x"}, {"xt"}, "tr");
  t.message(5, Proto().bytes(1, "perm").varint(20, 7).packed_varints(8, {1, 0}));
  g.message(1, t);
  g.message(1, node("Add", {"xt", "w"}, {"s"}, "add"));
  Proto branch;
  branch.message(1, node("Neg", {"s"}, {"t"}, "neg")).message(12, value_info("t", 1, {-1, 2}));
  Proto iff = node("If", {"cond"}, {"y"}, "if");
  iff.message(5, Proto().bytes(1, "then_branch").varint(20, 5).message(6, branch));
  g.message(1, iff);
  g.message(5, leanembed::test::raw_tensor("w", 1, {2}, le_bytes<float>({1.5f, -2.0f})));
  g.message(5, tensor_header("p", 1, {2}).packed_floats(4, {3.0f, 4.0f}));
  g.message(5, tensor_header("i", 7, {3}).packed_varints(7, {-1, 300, 5}));
  g.message(5, tensor_header("b", 9, {2}).packed_varints(5, {1, 0}));
  g.message(11, value_info("x", 1, {-1, 2})).message(11, value_info("cond", 9, {}));
  g.message(12, value_info("y", 1, {-1, 2}));
  return leanembed::test::model(g);
}

Model parse_bytes(const std::string& s) {
  auto buf = std::make_shared<const std::string>(s);
  return parse_model(std::as_bytes(std::span(buf->data(), buf->size())), buf, "", "fuzzed.onnx");
}

TEST(Corruption, TheFeatureModelIsValid) {
  Model m = parse_bytes(feature_model().str());
  EXPECT_EQ(m.graph.nodes.size(), 4u);
  EXPECT_EQ(m.graph.initializers.size(), 4u);
}

TEST(Corruption, EveryTruncationIsAnError) {
  const std::string full = feature_model().str();
  for (std::size_t n = 0; n < full.size(); ++n) {
    try {
      parse_bytes(full.substr(0, n));
      ADD_FAILURE() << "a prefix of " << n << " of " << full.size() << " bytes parsed";
    } catch (const leanembed::Error& e) {
      EXPECT_EQ(e.code(), leanembed::ErrorCode::model_format) << n << ": " << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "prefix " << n << ": not a leanembed::Error: " << e.what();
    }
  }
}

TEST(Corruption, EveryByteFlipIsAnErrorOrAModel) {
  const std::string full = feature_model().str();
  std::size_t errors = 0, models = 0;
  for (std::size_t i = 0; i < full.size(); ++i) {
    for (unsigned char v : {0x00, 0xff, 0x80, 0x7f, 0x01}) {
      std::string bad = full;
      bad[i] = static_cast<char>(v);
      if (bad == full) continue;
      try {
        parse_bytes(bad);
        ++models;
      } catch (const leanembed::Error&) {
        ++errors;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "byte " << i << " = " << int(v) << ": not a leanembed::Error: " << e.what();
      }
    }
  }
  EXPECT_GT(errors, full.size());  // most corruptions are caught
  std::printf("byte flips: %zu errors, %zu still-valid models\n", errors, models);
}

TEST(Corruption, TruncatedSharedModelIsAnError) {
  const std::string full = leanembed::test::read_file(leanembed::test::shared_dir() +
                                                      "/models/tiny-bert-synthetic/onnx/model.onnx");
  ASSERT_EQ(full.size(), 8261771u);
  auto buf = std::make_shared<const std::string>(full);
  auto bytes = std::as_bytes(std::span(buf->data(), buf->size()));
  // 300 cut points spread over the file, plus the first 200 bytes one by one.
  std::vector<std::size_t> cuts;
  for (std::size_t n = 0; n < 200; ++n) cuts.push_back(n);
  for (std::size_t k = 1; k < 300; ++k) cuts.push_back(full.size() * k / 300);
  cuts.push_back(full.size() - 1);
  for (std::size_t n : cuts) {
    EXPECT_THROW(parse_model(bytes.first(n), buf, "", "tiny.onnx"), leanembed::Error) << n;
  }
  EXPECT_NO_THROW(parse_model(bytes, buf, "", "tiny.onnx"));
}

}  // namespace
