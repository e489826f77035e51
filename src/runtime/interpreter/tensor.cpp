#include "runtime/interpreter/tensor.h"

#include <cstring>
#include <limits>
#include <new>

#include "core/float16.h"

namespace leanembed::interp {

std::size_t dtype_size(DataType t) noexcept {
  switch (t) {
    case DataType::float32: case DataType::int32: case DataType::uint32: return 4;
    case DataType::float64: case DataType::int64: case DataType::uint64: return 8;
    case DataType::int16: case DataType::uint16: case DataType::float16: case DataType::bfloat16: return 2;
    case DataType::int8: case DataType::uint8: case DataType::boolean: return 1;
    default: return 0;
  }
}

std::string dtype_name(DataType t) {
  switch (t) {
    case DataType::float32: return "float32";
    case DataType::float64: return "float64";
    case DataType::float16: return "float16";
    case DataType::bfloat16: return "bfloat16";
    case DataType::int8: return "int8";
    case DataType::int16: return "int16";
    case DataType::int32: return "int32";
    case DataType::int64: return "int64";
    case DataType::uint8: return "uint8";
    case DataType::uint16: return "uint16";
    case DataType::uint32: return "uint32";
    case DataType::uint64: return "uint64";
    case DataType::boolean: return "bool";
    case DataType::string: return "string";
    case DataType::undefined: return "undefined";
  }
  return "dtype(" + std::to_string(static_cast<int32_t>(t)) + ")";
}

int64_t shape_numel(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      throw Error(ErrorCode::invalid_argument, "negative dimension in shape " + shape_string(shape));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw Error(ErrorCode::invalid_argument, "element count of shape " + shape_string(shape) +
                                                   " overflows int64");
    n *= d;
  }
  return n;
}

std::string shape_string(std::span<const int64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

namespace {

std::size_t checked_bytes(DataType dtype, int64_t numel) {
  const std::size_t size = dtype_size(dtype);
  if (size == 0) throw Error(ErrorCode::unsupported, "tensor element type " + dtype_name(dtype) + " is not supported");
  if (static_cast<uint64_t>(numel) > std::numeric_limits<std::size_t>::max() / size)
    throw Error(ErrorCode::out_of_memory, "tensor of " + std::to_string(numel) + " elements is too large");
  return static_cast<std::size_t>(numel) * size;
}

}  // namespace

Tensor::Tensor(DataType dtype, std::vector<int64_t> shape)
    : dtype_(dtype), shape_(std::move(shape)), numel_(shape_numel(shape_)), bytes_(checked_bytes(dtype_, numel_)) {
  if (bytes_ == 0) return;
  std::shared_ptr<std::byte[]> block;
  try {
    // operator new[] aligns to __STDCPP_DEFAULT_NEW_ALIGNMENT__ (16), enough for every element type.
    block = std::shared_ptr<std::byte[]>(new std::byte[bytes_]());
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::out_of_memory, "cannot allocate " + std::to_string(bytes_) + " bytes for a " +
                                              dtype_name(dtype_) + " tensor of shape " + shape_string(shape_));
  }
  mutable_ = block.get();
  data_ = block.get();
  owner_ = std::move(block);
}

Tensor Tensor::view(DataType dtype, std::vector<int64_t> shape, std::span<const std::byte> bytes,
                    std::shared_ptr<const void> owner) {
  const int64_t numel = shape_numel(shape);
  const std::size_t expected = checked_bytes(dtype, numel);
  if (bytes.size() != expected)
    throw Error(ErrorCode::invalid_argument, "tensor view of " + dtype_name(dtype) + " shape " + shape_string(shape) +
                                                 ": expected " + std::to_string(expected) + " bytes, found " +
                                                 std::to_string(bytes.size()));
  const std::size_t size = dtype_size(dtype);
  if (expected > 0 && reinterpret_cast<std::uintptr_t>(bytes.data()) % size != 0) {
    Tensor copy(dtype, std::move(shape));
    std::memcpy(copy.mutable_, bytes.data(), expected);
    return copy;
  }
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = numel;
  t.bytes_ = expected;
  t.data_ = expected > 0 ? bytes.data() : nullptr;
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::view(const onnx::TensorData& data) {
  try {
    return view(data.dtype, data.dims, data.bytes, data.owner);
  } catch (const Error& e) {
    throw Error(e.code(), "tensor '" + data.name + "': " + e.what());
  }
}

Tensor Tensor::reshaped(std::vector<int64_t> shape) const {
  const int64_t n = shape_numel(shape);
  if (n != numel_)
    throw Error(ErrorCode::invalid_argument, "cannot reshape " + shape_string(shape_) + " (" +
                                                 std::to_string(numel_) + " elements) to " + shape_string(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

std::byte* Tensor::mutable_bytes() {
  if (mutable_ == nullptr && bytes_ > 0) throw Error(ErrorCode::runtime, "Tensor: write access to a read-only view");
  return mutable_;
}

namespace {

template <typename T>
T load(const std::byte* p, int64_t i) {
  T v;
  std::memcpy(&v, p + static_cast<std::size_t>(i) * sizeof(T), sizeof(T));
  return v;
}

}  // namespace

double Tensor::value_as_double(int64_t i) const {
  if (i < 0 || i >= numel_)
    throw Error(ErrorCode::runtime, "Tensor: element " + std::to_string(i) + " out of range for " + shape_string(shape_));
  switch (dtype_) {
    case DataType::float32: return load<float>(data_, i);
    case DataType::float64: return load<double>(data_, i);
    case DataType::float16: return half_to_float(load<uint16_t>(data_, i));
    case DataType::bfloat16: return bfloat16_to_float(load<uint16_t>(data_, i));
    case DataType::int8: return load<int8_t>(data_, i);
    case DataType::int16: return load<int16_t>(data_, i);
    case DataType::int32: return load<int32_t>(data_, i);
    case DataType::int64: return static_cast<double>(load<int64_t>(data_, i));
    case DataType::uint8: return load<uint8_t>(data_, i);
    case DataType::boolean: return load<uint8_t>(data_, i) != 0 ? 1.0 : 0.0;
    case DataType::uint16: return load<uint16_t>(data_, i);
    case DataType::uint32: return load<uint32_t>(data_, i);
    case DataType::uint64: return static_cast<double>(load<uint64_t>(data_, i));
    default: break;
  }
  throw Error(ErrorCode::runtime, "Tensor: " + dtype_name(dtype_) + " is not numeric");
}

int64_t Tensor::value_as_int64(int64_t i) const {
  if (i < 0 || i >= numel_)
    throw Error(ErrorCode::runtime, "Tensor: element " + std::to_string(i) + " out of range for " + shape_string(shape_));
  switch (dtype_) {
    case DataType::int8: return load<int8_t>(data_, i);
    case DataType::int16: return load<int16_t>(data_, i);
    case DataType::int32: return load<int32_t>(data_, i);
    case DataType::int64: return load<int64_t>(data_, i);
    case DataType::uint8: return load<uint8_t>(data_, i);
    case DataType::boolean: return load<uint8_t>(data_, i) != 0 ? 1 : 0;
    case DataType::uint16: return load<uint16_t>(data_, i);
    case DataType::uint32: return load<uint32_t>(data_, i);
    case DataType::uint64: {
      const uint64_t v = load<uint64_t>(data_, i);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw Error(ErrorCode::runtime, "Tensor: uint64 value " + std::to_string(v) + " does not fit int64");
      return static_cast<int64_t>(v);
    }
    default: break;
  }
  throw Error(ErrorCode::runtime, "Tensor: " + dtype_name(dtype_) + " is not an integer type");
}

}  // namespace leanembed::interp
