// Building blocks of the elementwise ops: unary maps and broadcasting binary/ternary maps over typed
// tensors, and the integer arithmetic that wraps instead of overflowing (no undefined behaviour).
#pragma once

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "runtime/interpreter/broadcast.h"
#include "runtime/interpreter/tensor.h"

namespace leanembed::interp {

// out[i] = f(x[i]); the output has x's shape and dtype `out_dtype` (whose C++ type is Out).
template <typename In, typename Out, typename F>
Tensor map_unary(const Tensor& x, DataType out_dtype, F f) {
  Tensor out(out_dtype, x.shape());
  auto src = x.data<In>();
  auto dst = out.mutable_data<Out>();
  for (std::size_t i = 0; i < src.size(); ++i) dst[i] = f(src[i]);
  return out;
}

// out = f(a, b) with numpy broadcasting; A and B are the inputs' C++ types.
template <typename A, typename B, typename Out, typename F>
Tensor map_binary(const Tensor& a, const Tensor& b, DataType out_dtype, F f) {
  std::vector<int64_t> shape = broadcast_shapes(a.shape(), b.shape());
  std::array<std::vector<int64_t>, 2> strides{broadcast_strides(a.shape(), shape), broadcast_strides(b.shape(), shape)};
  Tensor out(out_dtype, shape);
  const A* pa = a.data<A>().data();
  const B* pb = b.data<B>().data();
  Out* po = out.mutable_data<Out>().data();
  broadcast_for_each<2>(shape, strides, [&](const int64_t* off, int64_t o, int64_t n, const int64_t* step) {
    const A* ra = pa + off[0];
    const B* rb = pb + off[1];
    Out* ro = po + o;
    if (step[0] == 1 && step[1] == 1) {
      for (int64_t i = 0; i < n; ++i) ro[i] = f(ra[i], rb[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) ro[i] = f(ra[i * step[0]], rb[i * step[1]]);
    }
  });
  return out;
}

// Integer + - * with two's-complement wrap-around (defined behaviour); plain for floats.
template <typename T>
T wrap_add(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    return a + b;
  }
}
template <typename T>
T wrap_sub(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) - static_cast<U>(b)));
  } else {
    return a - b;
  }
}
template <typename T>
T wrap_mul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    static_assert(sizeof(T) >= sizeof(int), "promotion to int would make the product overflow-prone");
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
  } else {
    return a * b;
  }
}

// A floating value converted to an integer type: truncated toward zero, saturated at the type's
// limits, NaN -> 0. (ONNX leaves out-of-range conversions undefined; C++ makes them UB.)
template <typename I>
I saturate_to_integer(double v) {
  if (std::isnan(v)) return 0;
  if (v <= static_cast<double>(std::numeric_limits<I>::min())) return std::numeric_limits<I>::min();
  // max() may round up when converted to double (int64: 2^63), so compare with >=.
  if (v >= static_cast<double>(std::numeric_limits<I>::max())) return std::numeric_limits<I>::max();
  return static_cast<I>(v);
}

// GELU in double: the exact form 0.5*v*(1+erf(v/sqrt(2))) and the tanh approximation
// 0.5*v*(1+tanh(sqrt(2/pi)*(v+0.044715*v^3))).
double gelu_erf(double v);
double gelu_tanh(double v);

}  // namespace leanembed::interp
