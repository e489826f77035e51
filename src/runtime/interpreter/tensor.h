// The interpreter's tensor: a dtype, a shape and contiguous row-major little-endian storage that is
// either owned (a reference-counted heap block) or a read-only view of memory someone else keeps
// alive (an initializer in the mapped model file, a Constant attribute, a caller's buffer).
//
// Copying a Tensor is cheap: copies share the storage (shared_ptr). Ops that only change the shape
// (Reshape, Squeeze, Unsqueeze, Identity) return a Tensor sharing their input's storage, so no
// bytes move. Mutable access exists only for storage a Tensor owns and is meant for the op that
// just created it (before anyone else holds a copy).
//
// Element types: float32, float64, int8/16/32/64, uint8/16/32/64, bool (one byte, 0 or 1 as
// written by us; any non-zero byte reads as true) and float16/bfloat16 (stored as uint16_t bits).
// Strings are not supported.
//
// Threading: a Tensor is safe to read from several threads; writing needs exclusive ownership.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "leanembed/error.h"
#include "onnx/model.h"

namespace leanembed::interp {

using onnx::DataType;

// Bytes per element of `t`; 0 for string, undefined and codes we do not know.
std::size_t dtype_size(DataType t) noexcept;
// "float32", "int64", ... ; "dtype(<code>)" for unknown codes.
std::string dtype_name(DataType t);
// Product of the dims (1 for a scalar). Throws Error(invalid_argument) if a dim is negative or the
// product overflows int64.
int64_t shape_numel(std::span<const int64_t> shape);
// "[2, 3, 4]" for messages.
std::string shape_string(std::span<const int64_t> shape);

// The C++ type that holds one element of each dtype (bool -> uint8_t, float16 -> uint16_t).
template <typename T> constexpr bool dtype_matches(DataType t) noexcept;
template <> constexpr bool dtype_matches<float>(DataType t) noexcept { return t == DataType::float32; }
template <> constexpr bool dtype_matches<double>(DataType t) noexcept { return t == DataType::float64; }
template <> constexpr bool dtype_matches<int8_t>(DataType t) noexcept { return t == DataType::int8; }
template <> constexpr bool dtype_matches<int16_t>(DataType t) noexcept { return t == DataType::int16; }
template <> constexpr bool dtype_matches<int32_t>(DataType t) noexcept { return t == DataType::int32; }
template <> constexpr bool dtype_matches<int64_t>(DataType t) noexcept { return t == DataType::int64; }
template <> constexpr bool dtype_matches<uint8_t>(DataType t) noexcept {
  return t == DataType::uint8 || t == DataType::boolean;
}
template <> constexpr bool dtype_matches<uint16_t>(DataType t) noexcept {
  return t == DataType::uint16 || t == DataType::float16 || t == DataType::bfloat16;
}
template <> constexpr bool dtype_matches<uint32_t>(DataType t) noexcept { return t == DataType::uint32; }
template <> constexpr bool dtype_matches<uint64_t>(DataType t) noexcept { return t == DataType::uint64; }

// The dtype a C++ arithmetic type stands for (uint8_t -> uint8, never bool).
template <typename T>
constexpr DataType dtype_for() noexcept {
  if constexpr (std::is_same_v<T, float>) return DataType::float32;
  else if constexpr (std::is_same_v<T, double>) return DataType::float64;
  else if constexpr (std::is_same_v<T, int8_t>) return DataType::int8;
  else if constexpr (std::is_same_v<T, int16_t>) return DataType::int16;
  else if constexpr (std::is_same_v<T, int32_t>) return DataType::int32;
  else if constexpr (std::is_same_v<T, int64_t>) return DataType::int64;
  else if constexpr (std::is_same_v<T, uint8_t>) return DataType::uint8;
  else if constexpr (std::is_same_v<T, uint16_t>) return DataType::uint16;
  else if constexpr (std::is_same_v<T, uint32_t>) return DataType::uint32;
  else if constexpr (std::is_same_v<T, uint64_t>) return DataType::uint64;
  else static_assert(sizeof(T) == 0, "no dtype for this type");
}

class Tensor {
 public:
  // No tensor at all (dtype undefined); defined() is false. Marks an omitted optional value.
  Tensor() = default;

  // Owned, zero-filled storage of numel(shape) elements. Throws Error(unsupported) for dtypes
  // without a size, Error(invalid_argument) for negative dims, Error(out_of_memory) if the
  // allocation fails.
  Tensor(DataType dtype, std::vector<int64_t> shape);

  // A read-only view of `bytes` (size must be numel * dtype_size, else Error(invalid_argument)).
  // `owner` keeps the bytes alive; if it is null the caller guarantees they outlive every copy of
  // the returned Tensor. If `bytes` is not aligned to the element size (raw_data inside a protobuf
  // file often is not), the bytes are copied into owned storage instead: reading them through a
  // typed pointer would be undefined behaviour.
  static Tensor view(DataType dtype, std::vector<int64_t> shape, std::span<const std::byte> bytes,
                     std::shared_ptr<const void> owner);
  // A view of an initializer or Constant attribute (same rules as above).
  static Tensor view(const onnx::TensorData& data);

  // Owned copy of `values` with the given shape (values.size() must equal numel(shape)).
  template <typename T>
  static Tensor from_values(DataType dtype, std::vector<int64_t> shape, std::span<const T> values) {
    check_type<T>(dtype);
    Tensor t(dtype, std::move(shape));
    if (static_cast<int64_t>(values.size()) != t.numel())
      throw Error(ErrorCode::invalid_argument,
                  "Tensor::from_values: " + std::to_string(values.size()) + " values for shape " +
                      shape_string(t.shape()));
    auto dst = t.mutable_data<T>();
    for (std::size_t i = 0; i < values.size(); ++i) dst[i] = values[i];
    return t;
  }
  static Tensor from_floats(std::vector<int64_t> shape, const std::vector<float>& v) {
    return from_values<float>(DataType::float32, std::move(shape), v);
  }
  static Tensor from_int64s(std::vector<int64_t> shape, const std::vector<int64_t>& v) {
    return from_values<int64_t>(DataType::int64, std::move(shape), v);
  }
  static Tensor from_int32s(std::vector<int64_t> shape, const std::vector<int32_t>& v) {
    return from_values<int32_t>(DataType::int32, std::move(shape), v);
  }
  static Tensor from_bools(std::vector<int64_t> shape, const std::vector<uint8_t>& v) {
    return from_values<uint8_t>(DataType::boolean, std::move(shape), v);
  }
  static Tensor scalar_float(float v) { return from_floats({}, {v}); }
  static Tensor scalar_int64(int64_t v) { return from_int64s({}, {v}); }

  // The same storage with another shape of the same element count (else Error(invalid_argument)).
  Tensor reshaped(std::vector<int64_t> shape) const;

  DataType dtype() const noexcept { return dtype_; }
  const std::vector<int64_t>& shape() const noexcept { return shape_; }
  int64_t rank() const noexcept { return static_cast<int64_t>(shape_.size()); }
  int64_t dim(int64_t i) const { return shape_.at(static_cast<std::size_t>(i)); }
  int64_t numel() const noexcept { return numel_; }
  std::size_t byte_size() const noexcept { return bytes_; }
  bool defined() const noexcept { return dtype_ != DataType::undefined; }
  // True if the storage is a view of memory this tensor does not own (weights, caller buffers).
  bool is_view() const noexcept { return mutable_ == nullptr && bytes_ > 0; }
  // Identifies the storage block (shared by copies and reshaped views); for memory accounting.
  const void* storage_id() const noexcept { return owner_.get(); }

  std::span<const std::byte> bytes() const noexcept { return {data_, bytes_}; }
  // Typed read access; throws Error(runtime) if T does not hold this dtype.
  template <typename T>
  std::span<const T> data() const {
    check_type<T>(dtype_);
    return {reinterpret_cast<const T*>(data_), static_cast<std::size_t>(numel_)};
  }
  // Typed write access to owned storage; throws Error(runtime) for views or a wrong T.
  template <typename T>
  std::span<T> mutable_data() {
    check_type<T>(dtype_);
    if (mutable_ == nullptr && bytes_ > 0)
      throw Error(ErrorCode::runtime, "Tensor: write access to a read-only view");
    return {reinterpret_cast<T*>(mutable_), static_cast<std::size_t>(numel_)};
  }
  std::byte* mutable_bytes();
  // Element i converted to double / int64 (any numeric dtype; float16 decoded). For shape inputs
  // and tests, not hot loops. Throws Error(runtime) for an out-of-range i or a non-numeric dtype.
  double value_as_double(int64_t i) const;
  int64_t value_as_int64(int64_t i) const;

 private:
  template <typename T>
  static void check_type(DataType t) {
    if (!dtype_matches<T>(t))
      throw Error(ErrorCode::runtime, "Tensor: element access with a C++ type that does not hold " +
                                          dtype_name(t));
  }

  DataType dtype_ = DataType::undefined;
  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  std::size_t bytes_ = 0;
  const std::byte* data_ = nullptr;
  std::byte* mutable_ = nullptr;        // == data_ for owned storage, null for views
  std::shared_ptr<const void> owner_;   // owned block or the view's keeper
};

}  // namespace leanembed::interp
