#include <gtest/gtest.h>

#include <cstring>

#include "op_test_support.h"
#include "runtime/interpreter/broadcast.h"
#include "runtime/interpreter/tensor.h"

namespace leanembed::interp {
namespace {

using test::expect_error;

TEST(Tensor, OwnedStorageIsZeroFilledAndSized) {
  Tensor t(DataType::float32, {2, 3});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.byte_size(), 24u);
  EXPECT_EQ(t.rank(), 2);
  EXPECT_FALSE(t.is_view());
  for (float v : t.data<float>()) EXPECT_EQ(v, 0.0f);
}

TEST(Tensor, ScalarHasOneElement) {
  Tensor t = Tensor::scalar_int64(7);
  EXPECT_EQ(t.rank(), 0);
  EXPECT_EQ(t.numel(), 1);
  EXPECT_EQ(t.data<int64_t>()[0], 7);
}

TEST(Tensor, EmptyDimensionHasNoElements) {
  Tensor t(DataType::int64, {3, 0});
  EXPECT_EQ(t.numel(), 0);
  EXPECT_EQ(t.byte_size(), 0u);
  EXPECT_TRUE(t.data<int64_t>().empty());
}

TEST(Tensor, WrongCppTypeIsRefused) {
  Tensor t(DataType::float32, {2});
  expect_error([&] { (void)t.data<int32_t>(); }, ErrorCode::runtime, {"float32"});
  expect_error([&] { (void)t.data<double>(); }, ErrorCode::runtime, {"float32"});
}

TEST(Tensor, NegativeDimensionIsRefused) {
  expect_error([] { Tensor t(DataType::float32, {2, -1}); }, ErrorCode::invalid_argument, {"[2, -1]"});
}

TEST(Tensor, StringTypeIsUnsupported) {
  expect_error([] { Tensor t(DataType::string, {1}); }, ErrorCode::unsupported, {"string"});
}

TEST(Tensor, AlignedViewSharesTheBytes) {
  alignas(8) float values[4] = {1, 2, 3, 4};
  auto bytes = std::as_bytes(std::span<const float>(values));
  Tensor t = Tensor::view(DataType::float32, {2, 2}, bytes, nullptr);
  EXPECT_TRUE(t.is_view());
  EXPECT_EQ(t.bytes().data(), bytes.data());
  EXPECT_EQ(t.data<float>()[3], 4.0f);
  expect_error([&] { (void)t.mutable_data<float>(); }, ErrorCode::runtime, {"read-only"});
}

TEST(Tensor, MisalignedViewIsCopied) {
  alignas(8) std::byte buffer[1 + 3 * sizeof(float)];
  const float values[3] = {1.5f, -2.0f, 8.25f};
  std::memcpy(buffer + 1, values, sizeof(values));
  Tensor t = Tensor::view(DataType::float32, {3}, std::span<const std::byte>(buffer + 1, sizeof(values)), nullptr);
  EXPECT_FALSE(t.is_view());
  EXPECT_NE(t.bytes().data(), buffer + 1);
  EXPECT_EQ(test::floats_of(t), (std::vector<float>{1.5f, -2.0f, 8.25f}));
}

TEST(Tensor, ViewWithWrongByteCountIsRefused) {
  std::vector<std::byte> bytes(10);
  expect_error([&] { Tensor::view(DataType::float32, {3}, bytes, nullptr); }, ErrorCode::invalid_argument,
               {"expected 12 bytes, found 10"});
}

TEST(Tensor, ReshapedSharesStorage) {
  Tensor t = test::f32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor r = t.reshaped({3, 2});
  EXPECT_EQ(r.shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(r.bytes().data(), t.bytes().data());
  EXPECT_EQ(r.storage_id(), t.storage_id());
  expect_error([&] { (void)t.reshaped({4}); }, ErrorCode::invalid_argument, {"[2, 3]", "[4]"});
}

TEST(Tensor, ValueAccessors) {
  Tensor h = Tensor::from_values<uint16_t>(DataType::float16, {2}, std::vector<uint16_t>{0x3C00, 0xC000});
  EXPECT_EQ(h.value_as_double(0), 1.0);
  EXPECT_EQ(h.value_as_double(1), -2.0);
  Tensor i = test::i32({2}, {-5, 9});
  EXPECT_EQ(i.value_as_int64(0), -5);
  expect_error([&] { (void)i.value_as_int64(2); }, ErrorCode::runtime, {"out of range"});
  expect_error([&] { (void)h.value_as_int64(0); }, ErrorCode::runtime, {"float16"});
}

TEST(Broadcast, Shapes) {
  using V = std::vector<int64_t>;
  EXPECT_EQ(broadcast_shapes(V{2, 3, 4}, V{4}), (V{2, 3, 4}));
  EXPECT_EQ(broadcast_shapes(V{2, 1, 4}, V{3, 1}), (V{2, 3, 4}));
  EXPECT_EQ(broadcast_shapes(V{}, V{5}), (V{5}));
  EXPECT_EQ(broadcast_shapes(V{0, 1}, V{1, 3}), (V{0, 3}));
  expect_error([] { broadcast_shapes(V{2, 3}, V{4, 3}); }, ErrorCode::runtime, {"[2, 3]", "[4, 3]"});
}

TEST(Broadcast, StridesAreZeroOnBroadcastDims) {
  using V = std::vector<int64_t>;
  EXPECT_EQ(broadcast_strides(V{3, 1}, V{2, 3, 4}), (V{0, 1, 0}));
  EXPECT_EQ(broadcast_strides(V{2, 3, 4}, V{2, 3, 4}), (V{12, 4, 1}));
  EXPECT_EQ(broadcast_strides(V{}, V{2}), (V{0}));
}

TEST(Broadcast, WalkVisitsEveryOutputElementInOrder) {
  // out [2, 3]; input a [2, 1] (broadcast along columns), input b [3].
  std::vector<int64_t> out{2, 3};
  std::array<std::vector<int64_t>, 2> strides{broadcast_strides(std::vector<int64_t>{2, 1}, out),
                                              broadcast_strides(std::vector<int64_t>{3}, out)};
  std::vector<std::pair<int64_t, int64_t>> seen;
  int64_t next = 0;
  broadcast_for_each<2>(out, strides, [&](const int64_t* off, int64_t o, int64_t n, const int64_t* step) {
    EXPECT_EQ(o, next);
    for (int64_t i = 0; i < n; ++i) seen.emplace_back(off[0] + i * step[0], off[1] + i * step[1]);
    next += n;
  });
  std::vector<std::pair<int64_t, int64_t>> expected{{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}};
  EXPECT_EQ(seen, expected);
}

}  // namespace
}  // namespace leanembed::interp
