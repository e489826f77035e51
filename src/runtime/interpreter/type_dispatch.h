// Runs a generic lambda with the C++ element type of a dtype: visit(dtype, [&]<typename T>() {...}).
// Each helper covers one family of dtypes and throws Error(runtime) naming `what` for others.
#pragma once

#include <cstdint>

#include "runtime/interpreter/tensor.h"

namespace leanembed::interp {

// float32, float64.
template <typename F>
decltype(auto) visit_float(DataType t, const char* what, F&& f) {
  switch (t) {
    case DataType::float32: return f.template operator()<float>();
    case DataType::float64: return f.template operator()<double>();
    default: break;
  }
  throw Error(ErrorCode::runtime, std::string(what) + ": element type " + dtype_name(t) +
                                      " is not supported (float32, float64)");
}

// float32, float64, int32, int64 (arithmetic).
template <typename F>
decltype(auto) visit_arithmetic(DataType t, const char* what, F&& f) {
  switch (t) {
    case DataType::float32: return f.template operator()<float>();
    case DataType::float64: return f.template operator()<double>();
    case DataType::int32: return f.template operator()<int32_t>();
    case DataType::int64: return f.template operator()<int64_t>();
    default: break;
  }
  throw Error(ErrorCode::runtime, std::string(what) + ": element type " + dtype_name(t) +
                                      " is not supported (float32, float64, int32, int64)");
}

// Every fixed-size dtype by its element size in bytes, for ops that only move elements: they copy
// with std::memcpy(dst, src, Size) (a single load/store, and no type punning).
template <typename F>
decltype(auto) visit_element_size(DataType t, const char* what, F&& f) {
  switch (dtype_size(t)) {
    case 1: return f.template operator()<1>();
    case 2: return f.template operator()<2>();
    case 4: return f.template operator()<4>();
    case 8: return f.template operator()<8>();
    default: break;
  }
  throw Error(ErrorCode::runtime, std::string(what) + ": element type " + dtype_name(t) + " is not supported");
}

}  // namespace leanembed::interp
