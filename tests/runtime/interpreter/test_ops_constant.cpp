// Cast, Constant, ConstantOfShape, Range, and the com.microsoft GELU variants.
#include <cmath>
#include <limits>

#include "op_test_support.h"

namespace leanembed::interp {
namespace {

using namespace test;

Tensor cast(const Tensor& x, DataType to) { return run1("Cast", 13, {x}, {attr_i("to", static_cast<int64_t>(to))}); }

TEST(OpCast, FloatToIntegerTruncatesAndSaturates) {
  Tensor x = f32({5}, {1.7f, -1.7f, 1e20f, -1e20f, NAN});
  EXPECT_EQ(int64s_of(cast(x, DataType::int64)),
            (std::vector<int64_t>{1, -1, std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(), 0}));
  EXPECT_EQ(int32s_of(cast(f32({2}, {2.5e9f, -2.5e9f}), DataType::int32)),
            (std::vector<int32_t>{std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min()}));
  Tensor i8 = cast(f32({3}, {200, -200, -3.9f}), DataType::int8);
  EXPECT_EQ(i8.dtype(), DataType::int8);
  EXPECT_EQ(i8.data<int8_t>()[0], 127);
  EXPECT_EQ(i8.data<int8_t>()[1], -128);
  EXPECT_EQ(i8.data<int8_t>()[2], -3);
}

TEST(OpCast, IntegerToIntegerWraps) {
  EXPECT_EQ(int32s_of(cast(i64({2}, {(int64_t{1} << 32) + 5, -1}), DataType::int32)), (std::vector<int32_t>{5, -1}));
  Tensor u8 = cast(i64({2}, {257, -1}), DataType::uint8);
  EXPECT_EQ(u8.dtype(), DataType::uint8);
  EXPECT_EQ(u8.data<uint8_t>()[0], 1);
  EXPECT_EQ(u8.data<uint8_t>()[1], 255);
  Tensor s8 = cast(Tensor::from_values<uint8_t>(DataType::uint8, {1}, std::vector<uint8_t>{200}), DataType::int8);
  EXPECT_EQ(s8.data<int8_t>()[0], -56);
}

TEST(OpCast, BoolConversions) {
  EXPECT_EQ(bools_of(cast(f32({4}, {0.0f, -0.0f, 0.1f, NAN}), DataType::boolean)), (std::vector<uint8_t>{0, 0, 1, 1}));
  EXPECT_EQ(bools_of(cast(i64({3}, {0, 5, -1}), DataType::boolean)), (std::vector<uint8_t>{0, 1, 1}));
  expect_floats(cast(b8({2}, {1, 0}), DataType::float32), {2}, {1, 0});
  EXPECT_EQ(int64s_of(cast(b8({2}, {0, 1}), DataType::int64)), (std::vector<int64_t>{0, 1}));
}

TEST(OpCast, Float16BothWays) {
  Tensor h = cast(f32({4}, {1.0f, 65520.0f, 3 * 0x1p-25f, -2.0f}), DataType::float16);
  EXPECT_EQ(h.dtype(), DataType::float16);
  auto bits = h.data<uint16_t>();
  EXPECT_EQ(bits[0], 0x3C00);
  EXPECT_EQ(bits[1], 0x7C00);
  EXPECT_EQ(bits[2], 0x0002);
  EXPECT_EQ(bits[3], 0xC000);
  Tensor back = cast(Tensor::from_values<uint16_t>(DataType::float16, {2}, std::vector<uint16_t>{0x3555, 0x0001}),
                     DataType::float32);
  expect_floats(back, {2}, {0.333251953125f, 0x1p-24f}, 0);
  // 2049 is halfway between 2048 (mantissa 0) and 2050 (mantissa 1): ties to even -> 2048.
  EXPECT_EQ(cast(i64({1}, {2049}), DataType::float16).data<uint16_t>()[0], 0x6800);
}

TEST(OpCast, DoubleAndSameType) {
  Tensor d = Tensor::from_values<double>(DataType::float64, {1}, std::vector<double>{0.1});
  expect_floats(cast(d, DataType::float32), {1}, {0.1f}, 0);
  Tensor x = f32({1}, {3});
  EXPECT_EQ(cast(x, DataType::float32).bytes().data(), x.bytes().data());
}

TEST(OpCast, UnsupportedTargetIsRefusedUpFront) {
  expect_error([] { Interpreter i(one_node_model("Cast", 13, {f32({1}, {1})}, {attr_i("to", 8)})); },
               ErrorCode::unsupported, {"the_Cast", "string"});
  expect_error([] { Interpreter i(one_node_model("Cast", 13, {f32({1}, {1})})); }, ErrorCode::model_format,
               {"the_Cast", "'to'"});
}

TEST(OpConstant, AllValueForms) {
  expect_floats(run1("Constant", 13, {}, {attr_t("value", f32({2}, {1.5f, -2}))}), {2}, {1.5f, -2});
  expect_floats(run1("Constant", 13, {}, {attr_f("value_float", 2.5f)}), {}, {2.5f});
  expect_floats(run1("Constant", 13, {}, {attr_floats("value_floats", {1, 2})}), {2}, {1, 2});
  Tensor i = run1("Constant", 13, {}, {attr_i("value_int", 7)});
  EXPECT_EQ(i.shape(), (std::vector<int64_t>{}));
  EXPECT_EQ(int64s_of(i), (std::vector<int64_t>{7}));
  EXPECT_EQ(int64s_of(run1("Constant", 13, {}, {attr_ints("value_ints", {3, -1, 4})})), (std::vector<int64_t>{3, -1, 4}));
}

TEST(OpConstant, MalformedOrUnsupportedForms) {
  expect_error([] { Interpreter i(one_node_model("Constant", 13, {})); }, ErrorCode::model_format, {"the_Constant"});
  expect_error([] { Interpreter i(one_node_model("Constant", 13, {}, {attr_s("value_string", "x")})); },
               ErrorCode::unsupported, {"value_string"});
  expect_error([] { Interpreter i(one_node_model("Constant", 13, {}, {attr_i("value_int", 1), attr_f("value_float", 1)})); },
               ErrorCode::model_format, {"more than one"});
}

TEST(OpConstantOfShape, DefaultAndGivenValue) {
  expect_floats(run1("ConstantOfShape", 13, {i64({2}, {2, 3})}), {2, 3}, {0, 0, 0, 0, 0, 0});
  Tensor sevens = run1("ConstantOfShape", 13, {i64({1}, {3})}, {attr_t("value", i64({1}, {7}))});
  EXPECT_EQ(int64s_of(sevens), (std::vector<int64_t>{7, 7, 7}));
  expect_floats(run1("ConstantOfShape", 13, {i64({0}, {})}, {attr_t("value", f32({1}, {4}))}), {}, {4});
  expect_error([] { run1("ConstantOfShape", 13, {i64({1}, {-2})}); }, ErrorCode::runtime, {"the_ConstantOfShape"});
}

TEST(OpRange, SpecExamplesAndEdges) {
  EXPECT_EQ(int64s_of(run1("Range", 13, {i64({}, {3}), i64({}, {9}), i64({}, {3})})), (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(int64s_of(run1("Range", 13, {i64({}, {10}), i64({}, {4}), i64({}, {-2})})),
            (std::vector<int64_t>{10, 8, 6}));
  expect_floats(run1("Range", 13, {f32({}, {0}), f32({}, {1}), f32({}, {0.25f})}), {4}, {0, 0.25f, 0.5f, 0.75f});
  EXPECT_EQ(run1("Range", 13, {i64({}, {5}), i64({}, {1}), i64({}, {1})}).shape(), (std::vector<int64_t>{0}));
  EXPECT_EQ(int32s_of(run1("Range", 13, {i32({}, {0}), i32({}, {5}), i32({}, {2})})), (std::vector<int32_t>{0, 2, 4}));
  expect_error([] { run1("Range", 13, {i64({}, {0}), i64({}, {5}), i64({}, {0})}); }, ErrorCode::runtime,
               {"the_Range", "delta"});
}

TEST(MicrosoftGelu, GeluBiasGeluFastGelu) {
  Tensor g = run_op("Gelu", 14, {f32({2}, {1, -1})}, {}, 1, "com.microsoft").at(0);
  expect_floats(g, {2}, {0.8413447461f, -0.1586552539f});
  // x + bias = [[1,0],[0,-1]]
  Tensor bg = run_op("BiasGelu", 14, {f32({2, 2}, {0, 1, -1, 0}), f32({2}, {1, -1})}, {}, 1, "com.microsoft").at(0);
  expect_floats(bg, {2, 2}, {0.8413447461f, 0, 0, -0.1586552539f});
  Tensor fg = run_op("FastGelu", 14, {f32({2}, {0, 1})}, {}, 1, "com.microsoft").at(0);
  expect_floats(fg, {2}, {0, 0.8411919906f});
  Tensor fgb = run_op("FastGelu", 14, {f32({2}, {-1, 0}), f32({2}, {1, 1})}, {}, 1, "com.microsoft").at(0);
  expect_floats(fgb, {2}, {0, 0.8411919906f});
}

}  // namespace
}  // namespace leanembed::interp
