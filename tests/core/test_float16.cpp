#include <gtest/gtest.h>

#include <cmath>

#include "core/float16.h"

namespace leanembed {
namespace {

// Bit patterns from the IEEE 754 binary16 layout: sign | 5-bit exponent (bias 15) | 10-bit mantissa.
TEST(Float16, NarrowsExactValues) {
  EXPECT_EQ(float_to_half(1.0f), 0x3C00);
  EXPECT_EQ(float_to_half(-2.0f), 0xC000);
  EXPECT_EQ(float_to_half(0.5f), 0x3800);
  EXPECT_EQ(float_to_half(65504.0f), 0x7BFF);           // largest finite
  EXPECT_EQ(float_to_half(0x1p-14f), 0x0400);           // smallest normal
  EXPECT_EQ(float_to_half(0x1p-24f), 0x0001);           // smallest subnormal
  EXPECT_EQ(float_to_half(1023 * 0x1p-24f), 0x03FF);    // largest subnormal
  EXPECT_EQ(float_to_half(0.0f), 0x0000);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
}

TEST(Float16, RoundsToNearestEven) {
  // 1 + 2^-11 lies halfway between 1 (mantissa 0, even) and 1 + 2^-10 (mantissa 1): goes to 1.
  EXPECT_EQ(float_to_half(1.0f + 0x1p-11f), 0x3C00);
  // 1 + 3*2^-11 lies halfway between mantissa 1 and 2: goes to 2 (even).
  EXPECT_EQ(float_to_half(1.0f + 3 * 0x1p-11f), 0x3C02);
  // Just above the halfway point rounds up.
  EXPECT_EQ(float_to_half(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);
  // 0.1 = 0x1.99999Ap-4: mantissa 0x199.99.. * ... -> 0x2E66 (rounded down).
  EXPECT_EQ(float_to_half(0.1f), 0x2E66);
  // 1/3 -> 0x3555.
  EXPECT_EQ(float_to_half(1.0f / 3.0f), 0x3555);
  // Rounding up across a binade: 2047/1024 * 2^0 + half ulp -> 2.0.
  EXPECT_EQ(float_to_half(2.0f - 0x1p-12f), 0x4000);
}

TEST(Float16, SubnormalRounding) {
  // 2^-25 is halfway between 0 and the smallest subnormal: ties to even gives 0.
  EXPECT_EQ(float_to_half(0x1p-25f), 0x0000);
  // 3 * 2^-25 = 1.5 units: halfway between 1 and 2 units: even gives 2.
  EXPECT_EQ(float_to_half(3 * 0x1p-25f), 0x0002);
  // Slightly above 2^-25 rounds to the smallest subnormal.
  EXPECT_EQ(float_to_half(0x1.01p-25f), 0x0001);
  // Largest subnormal + half a unit rounds to even: 1024 units = the smallest normal.
  EXPECT_EQ(float_to_half(1023.5f * 0x1p-24f), 0x0400);
  EXPECT_EQ(float_to_half(-3 * 0x1p-25f), 0x8002);
}

TEST(Float16, OverflowAndSpecials) {
  EXPECT_EQ(float_to_half(65519.0f), 0x7BFF);  // below the halfway point 65520
  EXPECT_EQ(float_to_half(65520.0f), 0x7C00);  // halfway, ties to even = infinity
  EXPECT_EQ(float_to_half(1e10f), 0x7C00);
  EXPECT_EQ(float_to_half(-INFINITY), 0xFC00);
  EXPECT_EQ(float_to_half(NAN) & 0x7E00, 0x7E00);
  EXPECT_EQ(double_to_half(1e-300), 0x0000);
}

TEST(Float16, DoubleRoundsOnce) {
  // 1 + 2^-11 + 2^-40 is above the halfway point, so it must round up; rounding first to float
  // (which drops 2^-40) and then to half would give 1.0.
  EXPECT_EQ(double_to_half(1.0 + 0x1p-11 + 0x1p-40), 0x3C01);
}

TEST(Float16, WidensExactly) {
  EXPECT_EQ(half_to_float(0x3C00), 1.0f);
  EXPECT_EQ(half_to_float(0xC000), -2.0f);
  EXPECT_EQ(half_to_float(0x7BFF), 65504.0f);
  EXPECT_EQ(half_to_float(0x0001), 0x1p-24f);
  EXPECT_EQ(half_to_float(0x03FF), 1023 * 0x1p-24f);
  EXPECT_EQ(half_to_float(0x3555), 0.333251953125f);
  EXPECT_EQ(half_to_float(0x7C00), INFINITY);
  EXPECT_EQ(half_to_float(0xFC00), -INFINITY);
  EXPECT_TRUE(std::isnan(half_to_float(0x7E00)));
  EXPECT_TRUE(std::signbit(half_to_float(0x8000)));
}

TEST(Float16, EveryHalfRoundTrips) {
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const auto h = static_cast<uint16_t>(bits);
    const float f = half_to_float(h);
    if (std::isnan(f)) continue;
    EXPECT_EQ(float_to_half(f), h) << std::hex << bits;
  }
}

TEST(BFloat16, RoundsToNearestEven) {
  EXPECT_EQ(float_to_bfloat16(1.0f), 0x3F80);
  EXPECT_EQ(bfloat16_to_float(0x3F80), 1.0f);
  // 1 + 2^-8 is halfway between 1 (0x3F80) and 1 + 2^-7 (0x3F81): even -> 0x3F80.
  EXPECT_EQ(float_to_bfloat16(1.0f + 0x1p-8f), 0x3F80);
  EXPECT_EQ(float_to_bfloat16(1.0f + 3 * 0x1p-8f), 0x3F82);
  EXPECT_EQ(float_to_bfloat16(INFINITY), 0x7F80);
}

}  // namespace
}  // namespace leanembed
