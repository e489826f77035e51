// IEEE 754 binary16 (float16) and bfloat16 conversions, bit-exact and independent of the FPU's
// rounding mode: narrowing rounds to nearest, ties to even; subnormals, infinities and NaN are kept
// (a NaN narrows to a quiet NaN with the sign kept). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <cstring>

namespace leanembed {

// Exact widening of binary16 bits (every half value is a float).
float half_to_float(uint16_t bits) noexcept;
// Correctly rounded narrowing of a double (so float and int64 sources round once, not twice).
uint16_t double_to_half(double value) noexcept;
inline uint16_t float_to_half(float value) noexcept { return double_to_half(static_cast<double>(value)); }

// The binary16 value stored little-endian at byte address p (any alignment), widened exactly.
inline float load_half(const void* p) noexcept {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return half_to_float(bits);
}
// f rounded to the nearest binary16 value (ties to even) and widened back: what an fp16 constant
// written from f holds. Beyond the half range: infinity.
inline float round_to_half(float f) noexcept { return half_to_float(float_to_half(f)); }

// bfloat16: the upper 16 bits of a float32.
float bfloat16_to_float(uint16_t bits) noexcept;
uint16_t float_to_bfloat16(float value) noexcept;

}  // namespace leanembed
