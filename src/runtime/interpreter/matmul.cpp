#include "runtime/interpreter/matmul.h"

#include "runtime/interpreter/broadcast.h"
#include "runtime/interpreter/type_dispatch.h"

namespace leanembed::interp {
namespace {

// One product o[m, n] = alpha * a[m, k] @ b[k, n] (a, b read transposed when asked), i-k-j order
// with a row of double accumulators (size n, from the caller).
template <typename T>
void matmul_one(const T* a, const T* b, T* o, int64_t m, int64_t k, int64_t n, bool trans_a, bool trans_b,
                double alpha, double* acc) {
  for (int64_t i = 0; i < m; ++i) {
    std::fill(acc, acc + n, 0.0);
    for (int64_t kk = 0; kk < k; ++kk) {
      const double av = static_cast<double>(trans_a ? a[kk * m + i] : a[i * k + kk]);
      if (trans_b) {
        for (int64_t j = 0; j < n; ++j) acc[j] += av * static_cast<double>(b[j * k + kk]);
      } else {
        const T* row = b + kk * n;
        for (int64_t j = 0; j < n; ++j) acc[j] += av * static_cast<double>(row[j]);
      }
    }
    T* out = o + i * n;
    for (int64_t j = 0; j < n; ++j) out[j] = static_cast<T>(alpha * acc[j]);
  }
}

template <typename T>
void matmul_batches(const T* pa, const T* pb, T* po, int64_t m, int64_t k, int64_t n, bool trans_a, bool trans_b,
                    double alpha, std::span<const int64_t> batch, const std::array<std::vector<int64_t>, 2>& strides) {
  std::vector<double> acc(static_cast<std::size_t>(n));
  const int64_t a_size = m * k, b_size = k * n, o_size = m * n;
  broadcast_for_each<2>(batch, strides, [&](const int64_t* off, int64_t o, int64_t count, const int64_t* step) {
    for (int64_t bi = 0; bi < count; ++bi)
      matmul_one<T>(pa + (off[0] + bi * step[0]) * a_size, pb + (off[1] + bi * step[1]) * b_size,
                    po + (o + bi) * o_size, m, k, n, trans_a, trans_b, alpha, acc.data());
  });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, double alpha) {
  if (a.dtype() != b.dtype())
    throw Error(ErrorCode::runtime, "matmul inputs have different element types: " + dtype_name(a.dtype()) + " and " +
                                        dtype_name(b.dtype()));
  if (a.rank() == 0 || b.rank() == 0)
    throw Error(ErrorCode::runtime, "matmul inputs must have rank >= 1, found " + shape_string(a.shape()) + " and " +
                                        shape_string(b.shape()));
  if ((trans_a && a.rank() < 2) || (trans_b && b.rank() < 2))
    throw Error(ErrorCode::runtime, "matmul transposition needs rank >= 2, found " + shape_string(a.shape()) +
                                        " and " + shape_string(b.shape()));
  std::vector<int64_t> sa = a.shape(), sb = b.shape();
  const bool a_vector = sa.size() == 1, b_vector = sb.size() == 1;
  if (a_vector) sa.insert(sa.begin(), 1);
  if (b_vector) sb.push_back(1);
  const int64_t m = trans_a ? sa[sa.size() - 1] : sa[sa.size() - 2];
  const int64_t ka = trans_a ? sa[sa.size() - 2] : sa[sa.size() - 1];
  const int64_t kb = trans_b ? sb[sb.size() - 1] : sb[sb.size() - 2];
  const int64_t n = trans_b ? sb[sb.size() - 2] : sb[sb.size() - 1];
  if (ka != kb)
    throw Error(ErrorCode::runtime, "matmul inner dimensions differ: " + shape_string(a.shape()) +
                                        (trans_a ? " (transposed)" : "") + " times " + shape_string(b.shape()) +
                                        (trans_b ? " (transposed)" : ""));
  std::vector<int64_t> batch_a(sa.begin(), sa.end() - 2), batch_b(sb.begin(), sb.end() - 2);
  std::vector<int64_t> batch = broadcast_shapes(batch_a, batch_b);
  std::array<std::vector<int64_t>, 2> strides{broadcast_strides(batch_a, batch), broadcast_strides(batch_b, batch)};
  std::vector<int64_t> out_shape = batch;
  if (!a_vector) out_shape.push_back(m);
  if (!b_vector) out_shape.push_back(n);
  Tensor out(a.dtype(), out_shape);
  visit_float(a.dtype(), "MatMul", [&]<typename T>() {
    matmul_batches<T>(a.data<T>().data(), b.data<T>().data(), out.mutable_data<T>().data(), m, ka, n, trans_a, trans_b,
                      alpha, batch, strides);
  });
  return out;
}

}  // namespace leanembed::interp
