// MatMul (numpy batched) and Gemm (2-D, transA/transB, alpha/beta, C broadcast to [M, N]).
#include "runtime/interpreter/broadcast.h"
#include "runtime/interpreter/matmul.h"
#include "runtime/interpreter/ops.h"
#include "runtime/interpreter/type_dispatch.h"

namespace leanembed::interp {
namespace {

void run_matmul(OpContext& ctx) { ctx.set_output(0, matmul(ctx.input(0), ctx.input(1))); }

void run_gemm(OpContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const Tensor* c = ctx.optional_input(2);
  if (a.rank() != 2 || b.rank() != 2)
    throw Error(ErrorCode::runtime, "A and B should be 2-D, found " + shape_string(a.shape()) + " and " +
                                        shape_string(b.shape()));
  const bool trans_a = attr_int(ctx.node, "transA", 0) != 0;
  const bool trans_b = attr_int(ctx.node, "transB", 0) != 0;
  const double alpha = attr_float(ctx.node, "alpha", 1.0f);
  const double beta = attr_float(ctx.node, "beta", 1.0f);
  Tensor y = matmul(a, b, trans_a, trans_b, alpha);
  if (c != nullptr && beta != 0.0) {
    if (c->dtype() != y.dtype())
      throw Error(ErrorCode::runtime, "C has element type " + dtype_name(c->dtype()) + ", expected " +
                                          dtype_name(y.dtype()));
    if (c->rank() > 2 || broadcast_shapes(c->shape(), y.shape()) != y.shape())
      throw Error(ErrorCode::runtime, "C of shape " + shape_string(c->shape()) + " cannot be broadcast to " +
                                          shape_string(y.shape()));
    std::array<std::vector<int64_t>, 1> strides{broadcast_strides(c->shape(), y.shape())};
    visit_float(y.dtype(), "Gemm", [&]<typename T>() {
      const T* pc = c->data<T>().data();
      T* py = y.mutable_data<T>().data();
      broadcast_for_each<1>(y.shape(), strides, [&](const int64_t* off, int64_t o, int64_t n, const int64_t* step) {
        for (int64_t i = 0; i < n; ++i)
          py[o + i] = static_cast<T>(py[o + i] + beta * static_cast<double>(pc[off[0] + i * step[0]]));
      });
    });
  }
  ctx.set_output(0, std::move(y));
}

}  // namespace

void add_matmul_ops(std::vector<OpSpec>& t) {
  t.push_back(promoted({"", "MatMul", 9, 2, 2, 1, 1, run_matmul}));
  t.push_back(promoted({"", "Gemm", 11, 2, 3, 1, 1, run_gemm}));
}

}  // namespace leanembed::interp
