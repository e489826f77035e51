#include "core/float16.h"

#include <bit>
#include <cmath>

namespace leanembed {

float half_to_float(uint16_t bits) noexcept {
  const uint32_t sign = (bits >> 15) & 1u;
  const uint32_t exponent = (bits >> 10) & 0x1Fu;
  const uint32_t mantissa = bits & 0x3FFu;
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // zero or subnormal: m * 2^-24
  } else if (exponent == 31) {
    magnitude = mantissa == 0 ? INFINITY : NAN;
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400u), static_cast<int>(exponent) - 25);
  }
  return sign ? -magnitude : magnitude;
}

namespace {

// Rounds a non-negative double holding at most 2^12 to the nearest integer, ties to even. Exact:
// floor and the subtraction are exact for such values.
double round_half_even(double q) noexcept {
  double r = std::floor(q);
  double fraction = q - r;
  if (fraction > 0.5 || (fraction == 0.5 && std::fmod(r, 2.0) != 0.0)) r += 1.0;
  return r;
}

}  // namespace

uint16_t double_to_half(double value) noexcept {
  const uint16_t sign = std::signbit(value) ? 0x8000u : 0u;
  if (std::isnan(value)) return static_cast<uint16_t>(sign | 0x7E00u);
  const double a = std::fabs(value);
  // 65520 is halfway between the largest half (65504, odd mantissa) and 2^16: ties go to even = inf.
  if (a >= 65520.0) return static_cast<uint16_t>(sign | 0x7C00u);
  if (a < 0x1p-14) {
    // Subnormal range: units of 2^-24. A result of 1024 is the smallest normal, whose bits are 0x400.
    const double m = round_half_even(a * 0x1p24);
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(m));
  }
  int e2 = 0;
  std::frexp(a, &e2);     // a = f * 2^e2, f in [0.5, 1)
  int exponent = e2 - 1;  // a in [2^exponent, 2^(exponent+1)), exponent in [-14, 15]
  double m = round_half_even(std::ldexp(a, 10 - exponent));  // in [1024, 2048]
  if (m == 2048.0) {
    m = 1024.0;
    ++exponent;
  }
  if (exponent > 15) return static_cast<uint16_t>(sign | 0x7C00u);
  return static_cast<uint16_t>(sign | static_cast<uint16_t>((exponent + 15) << 10) |
                               static_cast<uint16_t>(static_cast<int>(m) - 1024));
}

float bfloat16_to_float(uint16_t bits) noexcept {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

uint16_t float_to_bfloat16(float value) noexcept {
  uint32_t u = std::bit_cast<uint32_t>(value);
  if (std::isnan(value)) return static_cast<uint16_t>((u >> 16) | 0x40u);
  // Round to nearest even on the 16 dropped bits; carries into the exponent give inf correctly.
  const uint32_t lsb = (u >> 16) & 1u;
  u += 0x7FFFu + lsb;
  return static_cast<uint16_t>(u >> 16);
}

}  // namespace leanembed
