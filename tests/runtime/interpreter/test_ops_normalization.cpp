// Softmax, ReduceMean, LayerNormalization (and com.microsoft SkipLayerNormalization).
#include <cmath>

#include "op_test_support.h"

namespace leanembed::interp {
namespace {

using namespace test;

const float ln3 = std::log(3.0f);
const float ln5 = std::log(5.0f);

TEST(OpSoftmax, LastAxisByDefaultFromOpset13) {
  // exp(0) : exp(ln 3) = 1 : 3.
  expect_floats(run1("Softmax", 13, {f32({2, 2}, {0, ln3, 1, 1})}), {2, 2}, {0.25f, 0.75f, 0.5f, 0.5f});
}

TEST(OpSoftmax, AlongAxisZero) {
  expect_floats(run1("Softmax", 13, {f32({2, 2}, {0, 1, ln3, 1})}, {attr_i("axis", 0)}), {2, 2},
                {0.25f, 0.5f, 0.75f, 0.5f});
}

TEST(OpSoftmax, Opset11CoercesTo2DWhileOpset13UsesOneAxis) {
  // x[0] = [[0,0],[0,ln5]], x[1] = zeros, axis 1.
  Tensor x = f32({2, 2, 2}, {0, 0, 0, ln5, 0, 0, 0, 0});
  // Opset 11: rows are the flattened dims 1..2: exp = [1,1,1,5] / 8; zeros -> 1/4.
  expect_floats(run1("Softmax", 11, {x}, {attr_i("axis", 1)}), {2, 2, 2},
                {0.125f, 0.125f, 0.125f, 0.625f, 0.25f, 0.25f, 0.25f, 0.25f});
  // Opset 13: along axis 1 only: column 0 [0,0] -> 1/2 each; column 1 [0,ln5] -> 1/6, 5/6.
  expect_floats(run1("Softmax", 13, {x}, {attr_i("axis", 1)}), {2, 2, 2},
                {0.5f, 1.0f / 6, 0.5f, 5.0f / 6, 0.5f, 0.5f, 0.5f, 0.5f});
  // Opset 11's default axis is 1 (same as above); opset 13's is -1.
  expect_floats(run1("Softmax", 11, {x}), {2, 2, 2}, {0.125f, 0.125f, 0.125f, 0.625f, 0.25f, 0.25f, 0.25f, 0.25f});
  expect_floats(run1("Softmax", 13, {x}), {2, 2, 2}, {0.5f, 0.5f, 1.0f / 6, 5.0f / 6, 0.5f, 0.5f, 0.5f, 0.5f});
}

TEST(OpSoftmax, LargeValuesDoNotOverflow) {
  expect_floats(run1("Softmax", 13, {f32({3}, {1000, 1000, -1000})}), {3}, {0.5f, 0.5f, 0});
}

TEST(OpSoftmax, AxisOutOfRangeIsAnError) {
  expect_error([] { run1("Softmax", 13, {f32({2}, {1, 2})}, {attr_i("axis", 1)}); }, ErrorCode::runtime,
               {"the_Softmax", "axis 1"});
}

// x = [[1,2,3],[4,5,6]]
Tensor X() { return f32({2, 3}, {1, 2, 3, 4, 5, 6}); }

TEST(OpReduceMean, AxesAttributeAndKeepdims) {
  expect_floats(run1("ReduceMean", 13, {X()}, {attr_ints("axes", {1})}), {2, 1}, {2, 5});
  expect_floats(run1("ReduceMean", 13, {X()}, {attr_ints("axes", {1}), attr_i("keepdims", 0)}), {2}, {2, 5});
  expect_floats(run1("ReduceMean", 13, {X()}, {attr_ints("axes", {-2})}), {1, 3}, {2.5f, 3.5f, 4.5f});
  expect_floats(run1("ReduceMean", 13, {X()}, {attr_ints("axes", {0, 1})}), {1, 1}, {3.5f});
}

TEST(OpReduceMean, NoAxesReducesEverything) {
  expect_floats(run1("ReduceMean", 13, {X()}), {1, 1}, {3.5f});
  expect_floats(run1("ReduceMean", 13, {X()}, {attr_i("keepdims", 0)}), {}, {3.5f});
}

TEST(OpReduceMean, Opset18TakesAxesAsInput) {
  expect_floats(run1("ReduceMean", 18, {X(), i64({1}, {-1})}), {2, 1}, {2, 5});
  expect_floats(run1("ReduceMean", 18, {X()}), {1, 1}, {3.5f});
  // Empty axes with noop_with_empty_axes = 1: the input unchanged.
  expect_floats(run1("ReduceMean", 18, {X(), i64({0}, {})}, {attr_i("noop_with_empty_axes", 1)}), {2, 3},
                {1, 2, 3, 4, 5, 6});
  expect_floats(run1("ReduceMean", 18, {X(), i64({0}, {})}), {1, 1}, {3.5f});
}

TEST(OpReduceMean, BadAxesAreErrors) {
  expect_error([] { run1("ReduceMean", 13, {X()}, {attr_ints("axes", {1, -1})}); }, ErrorCode::runtime,
               {"the_ReduceMean", "repeated"});
  expect_error([] { run1("ReduceMean", 13, {X()}, {attr_ints("axes", {2})}); }, ErrorCode::runtime, {"axis 2"});
}

TEST(OpLayerNormalization, LastAxisWithScaleBiasAndStatistics) {
  // Row 0 [1,2,3,4]: mean 2.5, var 1.25, + epsilon 0.75 = 2 -> inv_std 1/sqrt(2).
  // Row 1 [2,2,2,2]: mean 2, var 0 -> inv_std 1/sqrt(0.75) = 1.1547005; normalized values 0.
  Tensor x = f32({2, 4}, {1, 2, 3, 4, 2, 2, 2, 2});
  Tensor scale = f32({4}, {1, 2, 1, 1});
  Tensor bias = f32({4}, {0, 0, 0, 1});
  auto out = run_op("LayerNormalization", 17, {x, scale, bias}, {attr_f("epsilon", 0.75f)}, 3);
  const float r = 0.70710678f;
  expect_floats(out[0], {2, 4}, {-1.5f * r, -0.5f * r * 2, 0.5f * r, 1.5f * r + 1, 0, 0, 0, 1}, 1e-6f);
  expect_floats(out[1], {2, 1}, {2.5f, 2.0f});
  expect_floats(out[2], {2, 1}, {r, 1.1547005f});
}

TEST(OpLayerNormalization, AxisZeroNormalizesEverything) {
  // [[1,3],[5,7]]: mean 4, var (9+1+1+9)/4 = 5, epsilon 0 -> inv_std 1/sqrt(5) = 0.4472136.
  Tensor x = f32({2, 2}, {1, 3, 5, 7});
  Tensor scale = f32({2, 2}, {1, 1, 1, 1});
  expect_floats(run1("LayerNormalization", 17, {x, scale}, {attr_i("axis", 0), attr_f("epsilon", 0)}), {2, 2},
                {-1.3416408f, -0.4472136f, 0.4472136f, 1.3416408f});
}

TEST(OpLayerNormalization, ScaleBroadcastsOverTheNormalizedShape) {
  // axis -2 of [1,2,2] normalizes [[1,3],[5,7]] as above; Scale [2] = [1,10] multiplies columns.
  Tensor x = f32({1, 2, 2}, {1, 3, 5, 7});
  expect_floats(run1("LayerNormalization", 17, {x, f32({2}, {1, 10})}, {attr_i("axis", -2), attr_f("epsilon", 0)}),
                {1, 2, 2}, {-1.3416408f, -4.472136f, 0.4472136f, 13.416408f}, 1e-5f);
}

TEST(OpLayerNormalization, ScaleOfTheWrongSizeIsAnError) {
  expect_error([] { run1("LayerNormalization", 17, {f32({1, 3}, {1, 2, 3}), f32({2}, {1, 1})}); }, ErrorCode::runtime,
               {"the_LayerNormalization", "Scale", "[2]", "[3]"});
}

TEST(OpLayerNormalization, OtherStashTypesAreUnsupported) {
  expect_error([] { run1("LayerNormalization", 17, {f32({1, 2}, {1, 2}), f32({2}, {1, 1})}, {attr_i("stash_type", 11)}); },
               ErrorCode::unsupported, {"the_LayerNormalization", "stash_type"});
}

TEST(OpSkipLayerNormalization, SumsThenNormalizes) {
  // input + skip + bias = [1,2,3,4] (row 0) and [2,2,2,2] (row 1); then as in the LayerNorm test.
  Tensor x = f32({1, 2, 4}, {0, 1, 1, 2, 1, 1, 1, 1});
  Tensor skip = f32({1, 2, 4}, {1, 1, 1, 1, 1, 1, 0, 0});
  Tensor gamma = f32({4}, {1, 2, 1, 1});
  Tensor beta = f32({4}, {0, 0, 0, 1});
  Tensor bias = f32({4}, {0, 0, 1, 1});
  auto out = run_op("SkipLayerNormalization", 14, {x, skip, gamma, beta, bias}, {attr_f("epsilon", 0.75f)}, 4,
                    "com.microsoft");
  const float r = 0.70710678f;
  expect_floats(out[0], {1, 2, 4}, {-1.5f * r, -1.0f * r, 0.5f * r, 1.5f * r + 1, 0, 0, 0, 1}, 1e-6f);
  expect_floats(out[1], {1, 2, 1}, {2.5f, 2.0f});
  expect_floats(out[2], {1, 2, 1}, {r, 1.1547005f});
  expect_floats(out[3], {1, 2, 4}, {1, 2, 3, 4, 2, 2, 2, 2});
}

}  // namespace
}  // namespace leanembed::interp
