// Shape, Reshape, Squeeze, Unsqueeze, Identity, Transpose, Concat, Slice, Split, Gather, Expand.
#include <limits>

#include "op_test_support.h"

namespace leanembed::interp {
namespace {

using namespace test;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

Tensor X23() { return f32({2, 3}, {1, 2, 3, 4, 5, 6}); }

TEST(OpShape, WholeShapeAndOpset15Range) {
  Tensor x(DataType::float32, {2, 3, 4});
  Tensor s = run1("Shape", 14, {x});
  EXPECT_EQ(s.dtype(), DataType::int64);
  EXPECT_EQ(s.shape(), (std::vector<int64_t>{3}));
  EXPECT_EQ(int64s_of(s), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(int64s_of(run1("Shape", 15, {x}, {attr_i("start", 1)})), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(int64s_of(run1("Shape", 15, {x}, {attr_i("end", -1)})), (std::vector<int64_t>{2, 3}));
  // Out-of-range values are clamped; start after end gives an empty shape.
  EXPECT_EQ(int64s_of(run1("Shape", 15, {x}, {attr_i("start", -2), attr_i("end", 10)})), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(run1("Shape", 15, {x}, {attr_i("start", 2), attr_i("end", 1)}).shape(), (std::vector<int64_t>{0}));
  EXPECT_EQ(int64s_of(run1("Shape", 15, {x}, {attr_i("start", -10)})), (std::vector<int64_t>{2, 3, 4}));
}

TEST(OpReshape, InferAndCopyDims) {
  Tensor x = X23();
  Tensor r = run1("Reshape", 14, {x, i64({2}, {3, -1})});
  expect_floats(r, {3, 2}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(run1("Reshape", 14, {x, i64({2}, {0, -1})}).shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(run1("Reshape", 14, {x, i64({3}, {0, 1, 3})}).shape(), (std::vector<int64_t>{2, 1, 3}));
  EXPECT_EQ(run1("Reshape", 14, {x, i64({1}, {-1})}).shape(), (std::vector<int64_t>{6}));
}

TEST(OpReshape, AllowZeroKeepsZeroAsADimension) {
  Tensor empty(DataType::float32, {0, 3});
  EXPECT_EQ(run1("Reshape", 14, {empty, i64({2}, {3, 0})}, {attr_i("allowzero", 1)}).shape(),
            (std::vector<int64_t>{3, 0}));
  // Without allowzero the 0 copies input dim 1 (3): [3, 3] has 9 elements, not 0.
  expect_error([&] { run1("Reshape", 14, {empty, i64({2}, {3, 0})}); }, ErrorCode::runtime, {"the_Reshape"});
  expect_error([] { run1("Reshape", 14, {X23(), i64({2}, {0, 3})}, {attr_i("allowzero", 1)}); }, ErrorCode::runtime,
               {"the_Reshape"});
}

TEST(OpReshape, BadShapesAreErrors) {
  expect_error([] { run1("Reshape", 14, {X23(), i64({2}, {-1, -1})}); }, ErrorCode::runtime, {"more than one -1"});
  expect_error([] { run1("Reshape", 14, {X23(), i64({2}, {4, -1})}); }, ErrorCode::runtime, {"[4, -1]", "[2, 3]"});
  expect_error([] { run1("Reshape", 14, {X23(), i64({1}, {5})}); }, ErrorCode::runtime, {"[5]"});
}

TEST(OpReshape, SharesStorage) {
  // Through the interpreter the input and output are separate map entries; the storage is shared.
  Tensor x = X23();
  Tensor r = run1("Reshape", 14, {x, i64({1}, {6})});
  EXPECT_EQ(r.bytes().data(), x.bytes().data());
}

TEST(OpUnsqueeze, AxesInputFromOpset13) {
  Tensor x = f32({3}, {1, 2, 3});
  EXPECT_EQ(run1("Unsqueeze", 13, {x, i64({2}, {0, -1})}).shape(), (std::vector<int64_t>{1, 3, 1}));
  EXPECT_EQ(run1("Unsqueeze", 13, {X23(), i64({1}, {-1})}).shape(), (std::vector<int64_t>{2, 3, 1}));
  EXPECT_EQ(run1("Unsqueeze", 13, {X23(), i64({1}, {1})}).shape(), (std::vector<int64_t>{2, 1, 3}));
  expect_floats(run1("Unsqueeze", 13, {x, i64({1}, {0})}), {1, 3}, {1, 2, 3});
}

TEST(OpUnsqueeze, AxesAttributeBeforeOpset13) {
  EXPECT_EQ(run1("Unsqueeze", 11, {f32({3}, {1, 2, 3})}, {attr_ints("axes", {1})}).shape(),
            (std::vector<int64_t>{3, 1}));
  expect_error([] { run1("Unsqueeze", 11, {f32({3}, {1, 2, 3})}); }, ErrorCode::model_format, {"axes"});
  // At 13 the attribute is gone: the axes input is required.
  expect_error([] { run1("Unsqueeze", 13, {f32({3}, {1, 2, 3})}, {attr_ints("axes", {1})}); }, ErrorCode::model_format,
               {"axes"});
}

TEST(OpUnsqueeze, RepeatedAxisIsAnError) {
  expect_error([] { run1("Unsqueeze", 13, {f32({3}, {1, 2, 3}), i64({2}, {0, -3})}); }, ErrorCode::runtime,
               {"repeated"});
}

TEST(OpSqueeze, AllOnesOrGivenAxes) {
  Tensor x = f32({1, 3, 1}, {1, 2, 3});
  EXPECT_EQ(run1("Squeeze", 13, {x}).shape(), (std::vector<int64_t>{3}));
  EXPECT_EQ(run1("Squeeze", 13, {x, i64({1}, {-1})}).shape(), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(run1("Squeeze", 11, {x}, {attr_ints("axes", {0})}).shape(), (std::vector<int64_t>{3, 1}));
  expect_error([&] { run1("Squeeze", 13, {x, i64({1}, {1})}); }, ErrorCode::runtime, {"the_Squeeze", "size 3"});
}

TEST(OpIdentity, SharesStorage) {
  Tensor x = X23();
  Tensor y = run1("Identity", 14, {x});
  EXPECT_EQ(y.bytes().data(), x.bytes().data());
  EXPECT_EQ(y.shape(), x.shape());
}

TEST(OpTranspose, DefaultReversesDims) {
  expect_floats(run1("Transpose", 13, {X23()}), {3, 2}, {1, 4, 2, 5, 3, 6});
}

TEST(OpTranspose, Permutation3D) {
  // out[i][j][k] = x[j][k][i] for perm [2,0,1]; x = 0..7 with x[j][k][i] at 4j + 2k + i.
  Tensor x = i64({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  Tensor y = run1("Transpose", 13, {x}, {attr_ints("perm", {2, 0, 1})});
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(int64s_of(y), (std::vector<int64_t>{0, 2, 4, 6, 1, 3, 5, 7}));
  // BERT's head split: [1,2,2,1] perm [0,2,1,3] swaps the middle dims.
  Tensor h = f32({1, 2, 2, 1}, {1, 2, 3, 4});
  expect_floats(run1("Transpose", 13, {h}, {attr_ints("perm", {0, 2, 1, 3})}), {1, 2, 2, 1}, {1, 3, 2, 4});
}

TEST(OpTranspose, BadPermIsAnError) {
  expect_error([] { run1("Transpose", 13, {X23()}, {attr_ints("perm", {0, 0})}); }, ErrorCode::runtime, {"permutation"});
  expect_error([] { run1("Transpose", 13, {X23()}, {attr_ints("perm", {0})}); }, ErrorCode::runtime, {"rank 2"});
}

TEST(OpConcat, AlongInnerAndOuterAxes) {
  Tensor a = f32({2, 1}, {1, 2});
  Tensor b = f32({2, 2}, {3, 4, 5, 6});
  expect_floats(run1("Concat", 13, {a, b}, {attr_i("axis", 1)}), {2, 3}, {1, 3, 4, 2, 5, 6});
  expect_floats(run1("Concat", 13, {a, b}, {attr_i("axis", -1)}), {2, 3}, {1, 3, 4, 2, 5, 6});
  expect_floats(run1("Concat", 13, {b, b}, {attr_i("axis", 0)}), {4, 2}, {3, 4, 5, 6, 3, 4, 5, 6});
  EXPECT_EQ(int64s_of(run1("Concat", 13, {i64({1}, {1}), i64({0}, {}), i64({2}, {-1, 64})}, {attr_i("axis", 0)})),
            (std::vector<int64_t>{1, -1, 64}));
}

TEST(OpConcat, MismatchIsAnError) {
  expect_error([] { run1("Concat", 13, {f32({2, 1}, {1, 2}), f32({3, 1}, {1, 2, 3})}, {attr_i("axis", 1)}); },
               ErrorCode::runtime, {"the_Concat", "[3, 1]", "[2, 1]"});
  expect_error([] { run1("Concat", 13, {f32({1}, {1}), f32({1}, {1})}); }, ErrorCode::model_format, {"axis"});
}

// data = [[1,2,3,4],[5,6,7,8]] (the spec's examples)
Tensor D() { return f32({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}); }

TEST(OpSlice, SpecExamples) {
  expect_floats(run1("Slice", 13, {D(), i64({2}, {1, 0}), i64({2}, {2, 3}), i64({2}, {0, 1}), i64({2}, {1, 2})}), {1, 2},
                {5, 7});
  expect_floats(run1("Slice", 13, {D(), i64({2}, {0, 1}), i64({2}, {-1, 1000})}), {1, 3}, {2, 3, 4});
}

TEST(OpSlice, IntMaxEndAndNegativeAxis) {
  expect_floats(run1("Slice", 13, {D(), i64({1}, {1}), i64({1}, {kMax}), i64({1}, {-1})}), {2, 3}, {2, 3, 4, 6, 7, 8});
  // BERT's position_ids slice: [0:L] of a [1, 512] row with L = 3.
  expect_floats(run1("Slice", 13, {D(), i64({1}, {0}), i64({1}, {3}), i64({1}, {1}), i64({1}, {1})}), {2, 3},
                {1, 2, 3, 5, 6, 7});
}

TEST(OpSlice, NegativeSteps) {
  // Reverse a whole axis: start -1, end INT64_MIN (clamped to -1), step -1.
  expect_floats(run1("Slice", 13, {D(), i64({1}, {-1}), i64({1}, {kMin}), i64({1}, {1}), i64({1}, {-1})}), {2, 4},
                {4, 3, 2, 1, 8, 7, 6, 5});
  // Start 10 clamps to 3 (dim - 1); end 0 is exclusive: indices 3, 1.
  expect_floats(run1("Slice", 13, {D(), i64({1}, {10}), i64({1}, {0}), i64({1}, {1}), i64({1}, {-2})}), {2, 2},
                {4, 2, 8, 6});
  // End -3 + 2 = -1 stays -1 (the clamp for negative steps is [-1, dim - 1]): rows 1 then 0.
  expect_floats(run1("Slice", 13, {D(), i64({1}, {-1}), i64({1}, {-3}), i64({1}, {0}), i64({1}, {-1})}), {2, 4},
                {5, 6, 7, 8, 1, 2, 3, 4});
}

TEST(OpSlice, EmptyResultsAndInt32Arguments) {
  EXPECT_EQ(run1("Slice", 13, {D(), i64({1}, {3}), i64({1}, {1}), i64({1}, {1})}).shape(),
            (std::vector<int64_t>{2, 0}));
  EXPECT_EQ(run1("Slice", 13, {D(), i64({1}, {kMin}), i64({1}, {-5}), i64({1}, {1})}).shape(),
            (std::vector<int64_t>{2, 0}));
  expect_floats(run1("Slice", 13, {D(), i32({1}, {1}), i32({1}, {3}), i32({1}, {1})}), {2, 2}, {2, 3, 6, 7});
  // A huge step takes only the first element.
  expect_floats(run1("Slice", 13, {D(), i64({1}, {1}), i64({1}, {4}), i64({1}, {1}), i64({1}, {kMax})}), {2, 1}, {2, 6});
}

TEST(OpSlice, BadArgumentsAreErrors) {
  expect_error([] { run1("Slice", 13, {D(), i64({1}, {0}), i64({1}, {1}), i64({1}, {1}), i64({1}, {0})}); },
               ErrorCode::runtime, {"the_Slice", "step 0"});
  expect_error([] { run1("Slice", 13, {D(), i64({2}, {0, 0}), i64({2}, {1, 1}), i64({2}, {1, -1})}); },
               ErrorCode::runtime, {"repeated"});
  expect_error([] { run1("Slice", 13, {D(), i64({1}, {0}), i64({2}, {1, 1})}); }, ErrorCode::runtime, {"starts"});
}

TEST(OpSplit, SizesFromInputAttributeOrEqualParts) {
  Tensor x = f32({3}, {1, 2, 3});
  auto parts = run_op("Split", 13, {x, i64({2}, {1, 2})}, {}, 2);
  expect_floats(parts[0], {1}, {1});
  expect_floats(parts[1], {2}, {2, 3});
  auto attr = run_op("Split", 11, {x}, {attr_ints("split", {2, 1})}, 2);
  expect_floats(attr[0], {2}, {1, 2});
  expect_floats(attr[1], {1}, {3});
  auto equal = run_op("Split", 13, {f32({2, 2}, {1, 2, 3, 4})}, {attr_i("axis", 1)}, 2);
  expect_floats(equal[0], {2, 1}, {1, 3});
  expect_floats(equal[1], {2, 1}, {2, 4});
  // Opset 18 num_outputs: parts of ceil(3 / 2) = 2, the last one smaller.
  auto uneven = run_op("Split", 18, {x}, {attr_i("num_outputs", 2)}, 2);
  expect_floats(uneven[0], {2}, {1, 2});
  expect_floats(uneven[1], {1}, {3});
  expect_error([&] { run_op("Split", 13, {x}, {}, 2); }, ErrorCode::runtime, {"the_Split", "equal"});
}

TEST(OpGather, SpecExamples) {
  Tensor data = f32({3, 2}, {1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f});
  expect_floats(run1("Gather", 13, {data, i64({2, 2}, {0, 1, 1, 2})}), {2, 2, 2},
                {1.0f, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f});
  Tensor data3 = f32({3, 3}, {1.0f, 1.2f, 1.9f, 2.3f, 3.4f, 3.9f, 4.5f, 5.7f, 5.9f});
  expect_floats(run1("Gather", 13, {data3, i64({1, 2}, {0, 2})}, {attr_i("axis", 1)}), {3, 1, 2},
                {1.0f, 1.9f, 2.3f, 3.9f, 4.5f, 5.9f});
}

TEST(OpGather, NegativeAndScalarIndices) {
  Tensor data = i64({3}, {5, 6, 7});
  Tensor s = run1("Gather", 13, {data, i64({}, {1})});
  EXPECT_EQ(s.shape(), (std::vector<int64_t>{}));
  EXPECT_EQ(int64s_of(s), (std::vector<int64_t>{6}));
  EXPECT_EQ(int64s_of(run1("Gather", 13, {data, i32({2}, {-1, -3})})), (std::vector<int64_t>{7, 5}));
}

TEST(OpGather, OutOfRangeIndexIsAnError) {
  expect_error([] { run1("Gather", 13, {i64({3}, {5, 6, 7}), i64({1}, {3})}); }, ErrorCode::runtime,
               {"the_Gather", "index 3", "size 3"});
  expect_error([] { run1("Gather", 13, {i64({3}, {5, 6, 7}), i64({1}, {-4})}); }, ErrorCode::runtime, {"index -4"});
}

TEST(OpExpand, Bidirectional) {
  expect_floats(run1("Expand", 13, {f32({3, 1}, {1, 2, 3}), i64({3}, {2, 1, 2})}), {2, 3, 2},
                {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3});
  // A shape smaller than the input keeps the input's dims.
  expect_floats(run1("Expand", 13, {X23(), i64({1}, {3})}), {2, 3}, {1, 2, 3, 4, 5, 6});
  expect_error([] { run1("Expand", 13, {X23(), i64({1}, {4})}); }, ErrorCode::runtime, {"the_Expand", "[2, 3]", "[4]"});
}

}  // namespace
}  // namespace leanembed::interp
