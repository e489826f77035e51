#include "runtime/interpreter/cast.h"

#include <cstring>

#include "runtime/interpreter/elementwise.h"
#include "core/float16.h"

namespace leanembed::interp {
namespace {

// One element in the widest form of its family.
struct Number {
  enum Kind { floating, signed_int, unsigned_int } kind;
  double f = 0.0;
  int64_t i = 0;
  uint64_t u = 0;
};

template <typename T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <typename T>
void store(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

Number read_number(DataType t, const std::byte* p) {
  switch (t) {
    case DataType::float32: return {Number::floating, load<float>(p)};
    case DataType::float64: return {Number::floating, load<double>(p)};
    case DataType::float16: return {Number::floating, half_to_float(load<uint16_t>(p))};
    case DataType::bfloat16: return {Number::floating, bfloat16_to_float(load<uint16_t>(p))};
    case DataType::int8: return {Number::signed_int, 0.0, load<int8_t>(p)};
    case DataType::int16: return {Number::signed_int, 0.0, load<int16_t>(p)};
    case DataType::int32: return {Number::signed_int, 0.0, load<int32_t>(p)};
    case DataType::int64: return {Number::signed_int, 0.0, load<int64_t>(p)};
    case DataType::boolean: return {Number::signed_int, 0.0, load<uint8_t>(p) != 0 ? 1 : 0};
    case DataType::uint8: return {Number::unsigned_int, 0.0, 0, load<uint8_t>(p)};
    case DataType::uint16: return {Number::unsigned_int, 0.0, 0, load<uint16_t>(p)};
    case DataType::uint32: return {Number::unsigned_int, 0.0, 0, load<uint32_t>(p)};
    case DataType::uint64: return {Number::unsigned_int, 0.0, 0, load<uint64_t>(p)};
    default: break;
  }
  throw Error(ErrorCode::unsupported, "Cast from " + dtype_name(t) + " is not supported");
}

template <typename I>
I to_integer(const Number& n) {
  switch (n.kind) {
    case Number::floating: return saturate_to_integer<I>(n.f);
    case Number::signed_int: return static_cast<I>(n.i);  // modulo 2^bits (C++20)
    case Number::unsigned_int: return static_cast<I>(n.u);
  }
  return 0;
}

template <typename F>
F to_floating(const Number& n) {
  switch (n.kind) {
    case Number::floating: return static_cast<F>(n.f);
    case Number::signed_int: return static_cast<F>(n.i);
    case Number::unsigned_int: return static_cast<F>(n.u);
  }
  return 0;
}

void write_number(DataType t, std::byte* p, const Number& n) {
  switch (t) {
    case DataType::float32: return store(p, to_floating<float>(n));
    case DataType::float64: return store(p, to_floating<double>(n));
    // float16 from double rounds once (a float32 or float16 source is exact in double; an int64
    // beyond 2^53 is far beyond float16's range, so its first rounding cannot change the result).
    case DataType::float16: return store(p, double_to_half(to_floating<double>(n)));
    case DataType::bfloat16: return store(p, float_to_bfloat16(to_floating<float>(n)));
    case DataType::int8: return store(p, to_integer<int8_t>(n));
    case DataType::int16: return store(p, to_integer<int16_t>(n));
    case DataType::int32: return store(p, to_integer<int32_t>(n));
    case DataType::int64: return store(p, to_integer<int64_t>(n));
    case DataType::uint8: return store(p, to_integer<uint8_t>(n));
    case DataType::uint16: return store(p, to_integer<uint16_t>(n));
    case DataType::uint32: return store(p, to_integer<uint32_t>(n));
    case DataType::uint64: return store(p, to_integer<uint64_t>(n));
    case DataType::boolean: {
      const bool b = n.kind == Number::floating ? n.f != 0.0 : (n.kind == Number::signed_int ? n.i != 0 : n.u != 0);
      return store(p, static_cast<uint8_t>(b ? 1 : 0));
    }
    default: break;
  }
  throw Error(ErrorCode::unsupported, "Cast to " + dtype_name(t) + " is not supported");
}

}  // namespace

Tensor cast_tensor(const Tensor& x, DataType to) {
  if (dtype_size(to) == 0) throw Error(ErrorCode::unsupported, "Cast to " + dtype_name(to) + " is not supported");
  if (dtype_size(x.dtype()) == 0)
    throw Error(ErrorCode::unsupported, "Cast from " + dtype_name(x.dtype()) + " is not supported");
  if (x.dtype() == to) return x;
  Tensor out(to, x.shape());
  const std::size_t in_size = dtype_size(x.dtype()), out_size = dtype_size(to);
  const std::byte* src = x.bytes().data();
  std::byte* dst = out.mutable_bytes();
  for (int64_t i = 0; i < x.numel(); ++i)
    write_number(to, dst + static_cast<std::size_t>(i) * out_size,
                 read_number(x.dtype(), src + static_cast<std::size_t>(i) * in_size));
  return out;
}

}  // namespace leanembed::interp
