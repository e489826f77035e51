// IEEE 754 binary16 <-> fp32 conversions for the recognizer and the embedding rows of fp16 models
// (fp16 constants are checked as fp16; fp16 tables, biases and LayerNorm vectors are widened).
// Plain bit manipulation: exact for every value (subnormals, infinities, NaN kept as NaN).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace leanembed::runtime::encoder {

// The fp32 value of the binary16 bit pattern h (exact).
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // inf / NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);  // normal: bias 15 -> 127
  } else if (mantissa == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal: value = mantissa * 2^-24; normalise it.
    int shift = 0;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      ++shift;
    }
    mantissa &= 0x3FFu;
    bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | (mantissa << 13);
  }
  return std::bit_cast<float>(bits);
}

// The binary16 value at byte address p (little-endian, any alignment), widened to fp32.
inline float load_half(const void* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return half_to_float(h);
}

// f rounded to the nearest binary16 value (ties to even) and widened back: what an fp16 constant
// holding f contains. Overflow gives infinity.
inline float round_to_half(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint32_t sign = bits & 0x80000000u;
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude >= 0x7F800000u) return f;  // inf / NaN
  const int exponent = static_cast<int>(magnitude >> 23) - 127;
  // Spacing of binary16 values around f: 2^(e-10) for normals (e >= -14), 2^-24 below.
  const int step_exponent = exponent >= -14 ? exponent - 10 : -24;
  if (exponent > 15) return std::bit_cast<float>(sign | 0x7F800000u);
  const float step = std::ldexp(1.0f, step_exponent);
  const float a = std::bit_cast<float>(magnitude);
  const float q = std::nearbyint(a / step) * step;  // exact: a / step is a power-of-two scaling
  if (q >= 65520.0f) return std::bit_cast<float>(sign | 0x7F800000u);
  return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(q));
}

}  // namespace leanembed::runtime::encoder
