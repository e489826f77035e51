// MatMul, Gemm and com.microsoft FusedMatMul on small hand-multiplied matrices.
#include "op_test_support.h"

namespace leanembed::interp {
namespace {

using namespace test;

// A = [[1,2,3],[4,5,6]], B = [[7,8],[9,10],[11,12]], A@B = [[58,64],[139,154]].
Tensor A() { return f32({2, 3}, {1, 2, 3, 4, 5, 6}); }
Tensor B() { return f32({3, 2}, {7, 8, 9, 10, 11, 12}); }
Tensor At() { return f32({3, 2}, {1, 4, 2, 5, 3, 6}); }
Tensor Bt() { return f32({2, 3}, {7, 9, 11, 8, 10, 12}); }

TEST(OpMatMul, TwoD) { expect_floats(run1("MatMul", 13, {A(), B()}), {2, 2}, {58, 64, 139, 154}); }

TEST(OpMatMul, BatchTimesSharedMatrix) {
  // [[1,0],[0,1]] @ B = B; [[2,0],[0,3]] @ B = [[2,4],[9,12]] for B = [[1,2],[3,4]].
  Tensor a = f32({2, 2, 2}, {1, 0, 0, 1, 2, 0, 0, 3});
  Tensor b = f32({2, 2}, {1, 2, 3, 4});
  expect_floats(run1("MatMul", 13, {a, b}), {2, 2, 2}, {1, 2, 3, 4, 2, 4, 9, 12});
}

TEST(OpMatMul, BatchDimsBroadcastBothWays) {
  // A [2,1,1,2] rows a0=[1,2], a1=[3,4]; B [1,3,2,1] columns b0=[1,1], b1=[0,1], b2=[2,0].
  Tensor a = f32({2, 1, 1, 2}, {1, 2, 3, 4});
  Tensor b = f32({1, 3, 2, 1}, {1, 1, 0, 1, 2, 0});
  expect_floats(run1("MatMul", 13, {a, b}), {2, 3, 1, 1}, {3, 2, 2, 7, 4, 6});
}

TEST(OpMatMul, VectorOperands) {
  Tensor m = f32({2, 2}, {1, 2, 3, 4});
  expect_floats(run1("MatMul", 13, {f32({2}, {1, 2}), m}), {2}, {7, 10});
  expect_floats(run1("MatMul", 13, {m, f32({2}, {1, 1})}), {2}, {3, 7});
  expect_floats(run1("MatMul", 13, {f32({3}, {1, 2, 3}), f32({3}, {4, 5, 6})}), {}, {32});
  // A batch of matrices times a vector: [2,2,2] @ [2] -> [2,2].
  expect_floats(run1("MatMul", 13, {f32({2, 2, 2}, {1, 0, 0, 1, 2, 0, 0, 3}), f32({2}, {5, 7})}), {2, 2}, {5, 7, 10, 21});
}

TEST(OpMatMul, EmptyInnerDimensionGivesZeros) {
  expect_floats(run1("MatMul", 13, {Tensor(DataType::float32, {2, 0}), Tensor(DataType::float32, {0, 3})}), {2, 3},
                {0, 0, 0, 0, 0, 0});
}

TEST(OpMatMul, InnerDimensionMismatchNamesNodeAndShapes) {
  expect_error([] { run1("MatMul", 13, {A(), A()}); }, ErrorCode::runtime, {"the_MatMul", "[2, 3]", "inner"});
  expect_error([] { run1("MatMul", 13, {f32({2, 2, 2}, {0, 0, 0, 0, 0, 0, 0, 0}), f32({3, 2, 2}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})}); },
               ErrorCode::runtime, {"broadcast"});
}

TEST(OpGemm, AlphaBetaAndVectorC) {
  // 0.5 * [[58,64],[139,154]] + 2 * [1,-1]
  Tensor y = run1("Gemm", 13, {A(), B(), f32({2}, {1, -1})}, {attr_f("alpha", 0.5f), attr_f("beta", 2.0f)});
  expect_floats(y, {2, 2}, {31, 30, 71.5f, 75});
}

TEST(OpGemm, Transpositions) {
  expect_floats(run1("Gemm", 13, {At(), B()}, {attr_i("transA", 1)}), {2, 2}, {58, 64, 139, 154});
  expect_floats(run1("Gemm", 13, {A(), Bt()}, {attr_i("transB", 1)}), {2, 2}, {58, 64, 139, 154});
  expect_floats(run1("Gemm", 13, {At(), Bt()}, {attr_i("transA", 1), attr_i("transB", 1)}), {2, 2}, {58, 64, 139, 154});
}

TEST(OpGemm, ColumnAndScalarC) {
  expect_floats(run1("Gemm", 13, {A(), B(), f32({2, 1}, {1, 2})}), {2, 2}, {59, 65, 141, 156});
  expect_floats(run1("Gemm", 13, {A(), B(), f32({}, {-8})}), {2, 2}, {50, 56, 131, 146});
}

TEST(OpGemm, CThatDoesNotBroadcastIsAnError) {
  expect_error([] { run1("Gemm", 13, {A(), B(), f32({3}, {1, 2, 3})}); }, ErrorCode::runtime, {"the_Gemm", "[3]"});
  expect_error([] { run1("Gemm", 13, {f32({2, 1, 3}, {1, 2, 3, 4, 5, 6}), B()}); }, ErrorCode::runtime, {"2-D"});
}

TEST(OpFusedMatMul, AlphaAndTransposes) {
  // 0.25 * A @ B, and A @ B^T with B stored transposed.
  Tensor y = run_op("FusedMatMul", 14, {A(), B()}, {attr_f("alpha", 0.25f)}, 1, "com.microsoft").at(0);
  expect_floats(y, {2, 2}, {14.5f, 16, 34.75f, 38.5f});
  Tensor t = run_op("FusedMatMul", 14, {At(), Bt()}, {attr_i("transA", 1), attr_i("transB", 1)}, 1, "com.microsoft").at(0);
  expect_floats(t, {2, 2}, {58, 64, 139, 154});
  // Batched with transB: [2,1,2] @ [2,2]^T
  Tensor batched = run_op("FusedMatMul", 14, {f32({2, 1, 2}, {1, 2, 3, 4}), f32({2, 2}, {1, 0, 1, 1})},
                          {attr_i("transB", 1)}, 1, "com.microsoft").at(0);
  expect_floats(batched, {2, 1, 2}, {1, 3, 3, 7});
}

TEST(OpFusedMatMul, TransBatchIsUnsupported) {
  expect_error([] { run_op("FusedMatMul", 14, {A(), B()}, {attr_i("transBatchA", 1)}, 1, "com.microsoft"); },
               ErrorCode::unsupported, {"the_FusedMatMul", "transBatch"});
}

}  // namespace
}  // namespace leanembed::interp
