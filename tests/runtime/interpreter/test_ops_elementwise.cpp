// Elementwise ops: values worked out by hand from the ONNX spec.
#include <cmath>
#include <limits>

#include "op_test_support.h"

namespace leanembed::interp {
namespace {

using namespace test;

TEST(OpAdd, SameShape) {
  expect_floats(run1("Add", 14, {f32({2, 2}, {1, 2, 3, 4}), f32({2, 2}, {10, 20, 30, 40})}), {2, 2}, {11, 22, 33, 44});
}

TEST(OpAdd, BroadcastsRowAndColumn) {
  // [2,1] + [3] -> [2,3]: a[i] + b[j].
  expect_floats(run1("Add", 14, {f32({2, 1}, {10, 20}), f32({3}, {1, 2, 3})}), {2, 3}, {11, 12, 13, 21, 22, 23});
}

TEST(OpAdd, BroadcastsScalarAndMiddleDim) {
  expect_floats(run1("Add", 14, {f32({}, {0.5f}), f32({2}, {1, 2})}), {2}, {1.5f, 2.5f});
  // [2,1,2] + [3,1] -> [2,3,2]
  Tensor a = f32({2, 1, 2}, {1, 2, 3, 4});
  Tensor b = f32({3, 1}, {100, 200, 300});
  expect_floats(run1("Add", 14, {a, b}), {2, 3, 2},
                {101, 102, 201, 202, 301, 302, 103, 104, 203, 204, 303, 304});
}

TEST(OpAdd, Int64WrapsInsteadOfOverflowing) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  Tensor r = run1("Add", 14, {i64({2}, {max, 5}), i64({2}, {1, -7})});
  EXPECT_EQ(int64s_of(r), (std::vector<int64_t>{std::numeric_limits<int64_t>::min(), -2}));
}

TEST(OpAdd, MismatchedShapesNameTheNode) {
  expect_error([] { run1("Add", 14, {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({2}, {1, 2})}); }, ErrorCode::runtime,
               {"node 'the_Add'", "[2, 3]", "[2]", "broadcast"});
}

TEST(OpAdd, MixedTypesAreRefused) {
  expect_error([] { run1("Add", 14, {f32({1}, {1}), i64({1}, {1})}); }, ErrorCode::runtime, {"float32", "int64"});
}

TEST(OpSubMulDiv, Float) {
  expect_floats(run1("Sub", 14, {f32({3}, {5, 0, -1}), f32({1}, {2})}), {3}, {3, -2, -3});
  expect_floats(run1("Mul", 14, {f32({3}, {5, 0, -1}), f32({3}, {2, 7, -3})}), {3}, {10, 0, 3});
  expect_floats(run1("Div", 14, {f32({3}, {1, -6, 1}), f32({3}, {4, 3, 0})}), {3},
                {0.25f, -2.0f, std::numeric_limits<float>::infinity()});
}

TEST(OpDiv, IntegerTruncatesTowardZero) {
  Tensor r = run1("Div", 14, {i64({4}, {7, -7, 7, -7}), i64({4}, {2, 2, -2, -2})});
  EXPECT_EQ(int64s_of(r), (std::vector<int64_t>{3, -3, -3, 3}));
  Tensor m = run1("Div", 14, {i32({1}, {std::numeric_limits<int32_t>::min()}), i32({1}, {-1})});
  EXPECT_EQ(int32s_of(m), (std::vector<int32_t>{std::numeric_limits<int32_t>::min()}));
}

TEST(OpDiv, IntegerDivisionByZeroIsAnError) {
  expect_error([] { run1("Div", 14, {i64({1}, {1}), i64({1}, {0})}); }, ErrorCode::runtime, {"the_Div", "division by zero"});
}

TEST(OpPow, FloatBaseWithFloatAndIntExponent) {
  expect_floats(run1("Pow", 14, {f32({3}, {2, 3, 4}), f32({}, {2})}), {3}, {4, 9, 16});
  expect_floats(run1("Pow", 14, {f32({3}, {2, 9, 4}), f32({3}, {-1, 0.5f, 0})}), {3}, {0.5f, 3, 1});
  expect_floats(run1("Pow", 14, {f32({2}, {2, -3}), i64({1}, {3})}), {2}, {8, -27});
}

TEST(OpPow, IntBase) {
  EXPECT_EQ(int64s_of(run1("Pow", 14, {i64({3}, {2, -3, 5}), i64({3}, {10, 3, 0})})),
            (std::vector<int64_t>{1024, -27, 1}));
}

TEST(OpUnary, SqrtErfTanhRelu) {
  expect_floats(run1("Sqrt", 14, {f32({3}, {4, 2, 0})}), {3}, {2, 1.41421356f, 0});
  Tensor s = run1("Sqrt", 14, {f32({1}, {-1})});
  EXPECT_TRUE(std::isnan(s.data<float>()[0]));
  // erf(0.5) = 0.5204998778, erf(-1) = -0.8427007929
  expect_floats(run1("Erf", 14, {f32({3}, {0, 0.5f, -1})}), {3}, {0, 0.5204998778f, -0.8427007929f});
  // tanh(1) = 0.7615941560
  expect_floats(run1("Tanh", 14, {f32({3}, {0, 1, -1})}), {3}, {0, 0.761594156f, -0.761594156f});
  expect_floats(run1("Relu", 14, {f32({4}, {-2, 0, 3, -0.5f})}), {4}, {0, 0, 3, 0});
  EXPECT_EQ(int64s_of(run1("Relu", 14, {i64({2}, {-4, 4})})), (std::vector<int64_t>{0, 4}));
}

TEST(OpUnary, IntegerInputToFloatOpIsRefused) {
  expect_error([] { run1("Sqrt", 14, {i64({1}, {4})}); }, ErrorCode::runtime, {"the_Sqrt", "int64"});
}

TEST(OpGelu, ExactAndTanh) {
  // gelu(x) = 0.5 x (1 + erf(x / sqrt 2)): gelu(1) = 0.5 (1 + 0.6826894921) = 0.8413447461,
  // gelu(-1) = -0.1586552539.
  expect_floats(run1("Gelu", 20, {f32({3}, {0, 1, -1})}), {3}, {0, 0.8413447461f, -0.1586552539f});
  // tanh form: 0.5 (1 + tanh(sqrt(2/pi) (1 + 0.044715))) = 0.5 (1 + tanh(0.8335367)) = 0.8411919906
  expect_floats(run1("Gelu", 20, {f32({2}, {0, 1})}, {attr_s("approximate", "tanh")}), {2}, {0, 0.8411919906f});
}

TEST(OpGelu, NeedsOpset20AndAKnownApproximation) {
  expect_error([] { run1("Gelu", 17, {f32({1}, {0})}); }, ErrorCode::unsupported, {"Gelu", "opset 20", "17"});
  expect_error([] { run1("Gelu", 20, {f32({1}, {0})}, {attr_s("approximate", "fast")}); }, ErrorCode::model_format,
               {"the_Gelu", "approximate"});
}

TEST(OpEqual, NumbersAndBools) {
  EXPECT_EQ(bools_of(run1("Equal", 13, {i64({3}, {1, 2, 3}), i64({1}, {2})})), (std::vector<uint8_t>{0, 1, 0}));
  EXPECT_EQ(bools_of(run1("Equal", 13, {f32({2}, {0.5f, NAN}), f32({2}, {0.5f, NAN})})), (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(bools_of(run1("Equal", 13, {b8({2}, {1, 0}), b8({2}, {1, 1})})), (std::vector<uint8_t>{1, 0}));
}

TEST(OpNot, Bools) {
  EXPECT_EQ(bools_of(run1("Not", 13, {b8({3}, {1, 0, 1})})), (std::vector<uint8_t>{0, 1, 0}));
  expect_error([] { run1("Not", 13, {f32({1}, {1})}); }, ErrorCode::runtime, {"bool"});
}

TEST(OpWhere, ThreeWayBroadcast) {
  // cond [2,1], X [1,3], Y scalar -> [2,3]
  Tensor r = run1("Where", 16, {b8({2, 1}, {1, 0}), f32({1, 3}, {1, 2, 3}), f32({}, {-1})});
  expect_floats(r, {2, 3}, {1, 2, 3, -1, -1, -1});
  Tensor ints = run1("Where", 16, {b8({3}, {0, 1, 0}), i64({3}, {1, 2, 3}), i64({3}, {7, 8, 9})});
  EXPECT_EQ(int64s_of(ints), (std::vector<int64_t>{7, 2, 9}));
}

TEST(OpWhere, ConditionMustBeBool) {
  expect_error([] { run1("Where", 16, {f32({1}, {1}), f32({1}, {1}), f32({1}, {2})}); }, ErrorCode::runtime,
               {"the_Where", "condition"});
}

}  // namespace
}  // namespace leanembed::interp

namespace leanembed::interp {
namespace {

using namespace test;

Tensor f16(std::vector<int64_t> shape, std::vector<uint16_t> bits) {
  return Tensor::from_values<uint16_t>(DataType::float16, std::move(shape), bits);
}
std::vector<uint16_t> bits_of(const Tensor& t) {
  EXPECT_EQ(t.dtype(), DataType::float16);
  auto d = t.data<uint16_t>();
  return {d.begin(), d.end()};
}

TEST(Float16Ops, ComputeInFloat32AndRoundEachResult) {
  // 1 + 2^-11 (0x1000) rounds to 1 (ties to even); 65504 + 16 = 65520 rounds to infinity;
  // 2 + 0.5 = 2.5 (0x4100) is exact.
  Tensor r = run1("Add", 14, {f16({3}, {0x3C00, 0x7BFF, 0x4000}), f16({3}, {0x1000, 0x4C00, 0x3800})});
  EXPECT_EQ(bits_of(r), (std::vector<uint16_t>{0x3C00, 0x7C00, 0x4100}));
  // [1, 2] @ [[1], [0.5]] = 2 (0x4000).
  EXPECT_EQ(bits_of(run1("MatMul", 14, {f16({1, 2}, {0x3C00, 0x4000}), f16({2, 1}, {0x3C00, 0x3800})})),
            (std::vector<uint16_t>{0x4000}));
  EXPECT_EQ(bools_of(run1("Equal", 14, {f16({2}, {0x3C00, 0x4000}), f16({2}, {0x3C00, 0x3C00})})),
            (std::vector<uint8_t>{1, 0}));
}

TEST(Float16Ops, LayerNormalizationKeepsFloat32Statistics) {
  // x = [1, 3] (0x3C00, 0x4200): mean 2, var 1, epsilon 0 -> y = [-1, 1] (0xBC00, 0x3C00).
  auto out = run_op("LayerNormalization", 17, {f16({1, 2}, {0x3C00, 0x4200}), f16({2}, {0x3C00, 0x3C00})},
                    {attr_f("epsilon", 0)}, 3);
  EXPECT_EQ(bits_of(out[0]), (std::vector<uint16_t>{0xBC00, 0x3C00}));
  expect_floats(out[1], {1, 1}, {2});
  expect_floats(out[2], {1, 1}, {1});
}

}  // namespace
}  // namespace leanembed::interp
