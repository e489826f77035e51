// Quantized ops: DynamicQuantizeLinear, QuantizeLinear, DequantizeLinear, MatMulInteger and
// com.microsoft MatMulNBits. Expected values are the ONNX spec's examples or worked out by hand from
// the definitions; MatMulNBits is checked against a dequantize-then-matmul computed here from the
// contrib-op definition.
#include <cmath>

#include "op_test_support.h"

namespace leanembed::interp::test {
namespace {

Tensor u8(std::vector<int64_t> shape, std::vector<uint8_t> v) {
  return Tensor::from_values<uint8_t>(DataType::uint8, std::move(shape), v);
}
Tensor s8(std::vector<int64_t> shape, std::vector<int8_t> v) {
  return Tensor::from_values<int8_t>(DataType::int8, std::move(shape), v);
}
std::vector<int> ints_of(const Tensor& t) {
  std::vector<int> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(static_cast<int>(t.value_as_int64(i)));
  return v;
}

// ---- DynamicQuantizeLinear -------------------------------------------------------------------------

// The spec's three examples. The first has -2.5 / (5/255): 127.5 in real numbers but 127.49999 with
// the float32 scale, so it rounds to -127 (y = 26), while 0.5 / scale is exactly 25.5 and rounds to
// the even 26 (y = 179).
TEST(DynamicQuantizeLinear, SpecExampleMixedSigns) {
  auto out = run_op("DynamicQuantizeLinear", 11, {f32({6}, {0, 2, -3, -2.5f, 1.34f, 0.5f})}, {}, 3);
  ASSERT_EQ(out[0].dtype(), DataType::uint8);
  EXPECT_EQ(out[0].shape(), (std::vector<int64_t>{6}));
  EXPECT_EQ(ints_of(out[0]), (std::vector<int>{153, 255, 0, 26, 221, 179}));
  ASSERT_EQ(out[1].dtype(), DataType::float32);
  EXPECT_EQ(out[1].shape(), std::vector<int64_t>{});
  EXPECT_EQ(out[1].data<float>()[0], 5.0f / 255.0f);  // float32 division, as the spec's reference
  ASSERT_EQ(out[2].dtype(), DataType::uint8);
  EXPECT_EQ(ints_of(out[2]), std::vector<int>{153});
}

TEST(DynamicQuantizeLinear, SpecExampleAllNegative) {
  auto out = run_op("DynamicQuantizeLinear", 11, {f32({6}, {-1, -2.1f, -1.3f, -2.5f, -3.34f, -4.0f})}, {}, 3);
  EXPECT_EQ(ints_of(out[0]), (std::vector<int>{191, 121, 172, 96, 42, 0}));
  EXPECT_EQ(out[1].data<float>()[0], 4.0f / 255.0f);
  EXPECT_EQ(ints_of(out[2]), std::vector<int>{255});
}

TEST(DynamicQuantizeLinear, SpecExampleAllPositiveMatrix) {
  auto out = run_op("DynamicQuantizeLinear", 11,
                    {f32({3, 4}, {1, 2.1f, 1.3f, 2.5f, 3.34f, 4.0f, 1.5f, 2.6f, 3.9f, 4.0f, 3.0f, 2.345f})}, {}, 3);
  EXPECT_EQ(out[0].shape(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(ints_of(out[0]), (std::vector<int>{64, 134, 83, 159, 213, 255, 96, 166, 249, 255, 191, 149}));
  EXPECT_EQ(out[1].data<float>()[0], 4.0f / 255.0f);
  EXPECT_EQ(ints_of(out[2]), std::vector<int>{0});
}

// Range [0, 0]: the scale would be 0/255; it is defined as 1 (zero point 0, y 0) instead of NaN.
TEST(DynamicQuantizeLinear, AllZerosGiveScaleOne) {
  auto out = run_op("DynamicQuantizeLinear", 11, {f32({2, 2}, {0, 0, -0.0f, 0})}, {}, 3);
  EXPECT_EQ(ints_of(out[0]), (std::vector<int>{0, 0, 0, 0}));
  EXPECT_EQ(out[1].data<float>()[0], 1.0f);
  EXPECT_EQ(ints_of(out[2]), std::vector<int>{0});
}

// NaN stays out of the range and quantizes to the zero point: no cast of NaN.
TEST(DynamicQuantizeLinear, NaNQuantizesToZeroPoint) {
  auto out = run_op("DynamicQuantizeLinear", 11, {f32({3}, {-1.0f, NAN, 3.0f})}, {}, 3);
  // scale 4/255; zero point round(63.749996) = 64; -1 -> round(-63.749996) + 64 = 0;
  // 3 -> round(191.24998) + 64 = 255; NaN -> 64.
  EXPECT_EQ(out[1].data<float>()[0], 4.0f / 255.0f);
  EXPECT_EQ(ints_of(out[2]), std::vector<int>{64});
  EXPECT_EQ(ints_of(out[0]), (std::vector<int>{0, 64, 255}));
}

TEST(DynamicQuantizeLinear, RejectsNonFloat) {
  expect_error([] { run_op("DynamicQuantizeLinear", 11, {i32({1}, {1})}, {}, 3); }, ErrorCode::runtime,
               {"DynamicQuantizeLinear", "float32"});
}

// ---- QuantizeLinear / DequantizeLinear -----------------------------------------------------------

TEST(QuantizeLinear, PerTensorRoundsHalfToEvenAndSaturates) {
  // scale 0.5: x / 0.5 = 2.5 -> 2, 3.5 -> 4, -0.5 -> -0, -1.5 -> -2, 200 -> 400 -> saturated.
  Tensor y = run1("QuantizeLinear", 13, {f32({6}, {1.25f, 1.75f, -0.25f, -0.75f, 200.0f, -200.0f}),
                                         Tensor::scalar_float(0.5f), u8({}, {10})});
  ASSERT_EQ(y.dtype(), DataType::uint8);
  EXPECT_EQ(ints_of(y), (std::vector<int>{12, 14, 10, 8, 255, 0}));
  Tensor z = run1("QuantizeLinear", 13, {f32({4}, {1.25f, -1.25f, 100.0f, -100.0f}), Tensor::scalar_float(0.5f),
                                         s8({}, {-1})});
  ASSERT_EQ(z.dtype(), DataType::int8);
  EXPECT_EQ(ints_of(z), (std::vector<int>{1, -3, 127, -128}));
}

TEST(QuantizeLinear, NoZeroPointMeansUint8Zero) {
  Tensor y = run1("QuantizeLinear", 11, {f32({3}, {0.4f, 0.6f, -3.0f}), Tensor::scalar_float(0.2f)});
  ASSERT_EQ(y.dtype(), DataType::uint8);
  // 0.4 / 0.2 and 0.6 / 0.2 in float32: 2 and 3 (neither lands on .5).
  EXPECT_EQ(ints_of(y), (std::vector<int>{2, 3, 0}));
}

// Per axis (opset 13): channel c of axis 1 uses scale[c] and zero_point[c].
TEST(QuantizeLinear, PerAxis) {
  Tensor x = f32({1, 3, 2}, {-162, 10, -100, 232, -20, -50});
  Tensor y = run1("QuantizeLinear", 13, {x, f32({3}, {2, 4, 5}), u8({3}, {84, 24, 196})});
  // -162/2+84=3, 10/2+84=89; -100/4+24=-1 -> 0, 232/4+24=82; -20/5+196=192, -50/5+196=186.
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{1, 3, 2}));
  EXPECT_EQ(ints_of(y), (std::vector<int>{3, 89, 0, 82, 192, 186}));
  // axis = -1: the two columns.
  Tensor y2 = run1("QuantizeLinear", 13, {x, f32({2}, {2, 10}), u8({2}, {100, 0})}, {attr_i("axis", -1)});
  EXPECT_EQ(ints_of(y2), (std::vector<int>{19, 1, 50, 23, 90, 0}));
}

TEST(QuantizeLinear, PerAxisNeedsOpset13AndMatchingLength) {
  Tensor x = f32({1, 3, 2}, {1, 2, 3, 4, 5, 6});
  expect_error([&] { run1("QuantizeLinear", 11, {x, f32({3}, {1, 1, 1}), u8({3}, {0, 0, 0})}); }, ErrorCode::runtime,
               {"scalar", "opset 11"});
  expect_error([&] { run1("QuantizeLinear", 13, {x, f32({2}, {1, 1}), u8({2}, {0, 0})}); }, ErrorCode::runtime,
               {"per-axis scale has 2 values"});
  expect_error([&] { run1("QuantizeLinear", 13, {x, f32({3}, {1, 1, 1}), u8({}, {0})}); }, ErrorCode::runtime,
               {"zero point shape"});
}

TEST(QuantizeLinear, BlockedQuantizationIsUnsupported) {
  expect_error(
      [] {
        run1("QuantizeLinear", 21, {f32({2}, {1, 2}), Tensor::scalar_float(1.0f)}, {attr_i("block_size", 2)});
      },
      ErrorCode::unsupported, {"block_size"});
}

TEST(DequantizeLinear, PerTensorUint8Int8Int32) {
  Tensor y = run1("DequantizeLinear", 13, {u8({4}, {0, 3, 128, 255}), Tensor::scalar_float(2.0f), u8({}, {128})});
  expect_floats(y, {4}, {-256, -250, 0, 254}, 0);
  Tensor z = run1("DequantizeLinear", 11, {s8({3}, {-128, 0, 127}), Tensor::scalar_float(0.5f), s8({}, {-1})});
  expect_floats(z, {3}, {-63.5f, 0.5f, 64}, 0);
  Tensor w = run1("DequantizeLinear", 13, {i32({3}, {-1000, 0, 7}), Tensor::scalar_float(0.25f)});
  expect_floats(w, {3}, {-250, 0, 1.75f}, 0);
}

TEST(DequantizeLinear, PerAxis) {
  Tensor x = u8({1, 3, 2}, {3, 89, 34, 200, 74, 59});
  Tensor y = run1("DequantizeLinear", 13, {x, f32({3}, {2, 4, 5}), u8({3}, {84, 24, 196})});
  expect_floats(y, {1, 3, 2}, {-162, 10, 40, 704, -610, -685}, 0);
  Tensor y0 = run1("DequantizeLinear", 13, {x, f32({1}, {3})}, {attr_i("axis", 0)});
  expect_floats(y0, {1, 3, 2}, {9, 267, 102, 600, 222, 177}, 0);
}

TEST(DequantizeLinear, RejectsMismatchedZeroPointType) {
  expect_error([] { run1("DequantizeLinear", 13, {u8({1}, {1}), Tensor::scalar_float(1.0f), s8({}, {0})}); },
               ErrorCode::runtime, {"x_zero_point is int8"});
  expect_error([] { run1("DequantizeLinear", 13, {i32({1}, {1}), Tensor::scalar_float(1.0f), i32({}, {3})}); },
               ErrorCode::runtime, {"int32 x takes no zero point"});
}

// ---- MatMulInteger -------------------------------------------------------------------------------

// The spec's example: A uint8 [4, 3] with a_zero_point 12, B uint8 [3, 2] with b_zero_point 0.
TEST(MatMulInteger, SpecExample) {
  Tensor y = run1("MatMulInteger", 11,
                  {u8({4, 3}, {11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0}), u8({3, 2}, {1, 4, 2, 5, 3, 6}), u8({}, {12}),
                   u8({}, {0})});
  ASSERT_EQ(y.dtype(), DataType::int32);
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(int32s_of(y), (std::vector<int32_t>{-38, -83, -44, -98, -50, -113, -56, -128}));
}

// Per-row a_zero_point [M] and per-column b_zero_point [N], int8 B.
TEST(MatMulInteger, PerRowAndPerColumnZeroPoints) {
  // A - zp: [[0, 1], [1, 2]]; B - zp: [[-1+1, 2-2], [3+1, -4-2]] = [[0, 0], [4, -6]].
  Tensor y = run1("MatMulInteger", 11,
                  {u8({2, 2}, {1, 2, 3, 4}), s8({2, 2}, {-1, 2, 3, -4}), u8({2}, {1, 2}), s8({2}, {-1, 2})});
  EXPECT_EQ(int32s_of(y), (std::vector<int32_t>{4, -6, 8, -12}));
  // Without zero points, uint8 A times int8 B: [[1*-1+2*3, 1*2+2*-4], [3*-1+4*3, 3*2+4*-4]].
  Tensor z = run1("MatMulInteger", 11, {u8({2, 2}, {1, 2, 3, 4}), s8({2, 2}, {-1, 2, 3, -4})});
  EXPECT_EQ(int32s_of(z), (std::vector<int32_t>{5, -6, 9, -10}));
}

TEST(MatMulInteger, BatchBroadcastAndVectors) {
  // A [2, 1, 2] times B [2, 2] (B shared by both batches).
  Tensor y = run1("MatMulInteger", 11, {u8({2, 1, 2}, {1, 2, 3, 4}), u8({2, 2}, {1, 10, 100, 200})});
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{2, 1, 2}));
  EXPECT_EQ(int32s_of(y), (std::vector<int32_t>{201, 410, 403, 830}));
  // 1-D A [2] times B [2, 2, 2] with a batch: [1, 2] @ each B.
  Tensor z = run1("MatMulInteger", 11, {u8({2}, {1, 2}), u8({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8})});
  EXPECT_EQ(z.shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(int32s_of(z), (std::vector<int32_t>{7, 10, 19, 22}));
  // Batched per-row zero point [..., M, 1] for A [2, 2, 1].
  Tensor w = run1("MatMulInteger", 11, {u8({2, 2, 1}, {5, 6, 7, 8}), u8({1, 1}, {2}), u8({2, 2, 1}, {1, 2, 3, 4})});
  EXPECT_EQ(int32s_of(w), (std::vector<int32_t>{8, 8, 8, 8}));
}

TEST(MatMulInteger, RejectsBadShapesAndTypes) {
  expect_error([] { run1("MatMulInteger", 11, {u8({2, 3}, {1, 2, 3, 4, 5, 6}), u8({2, 2}, {1, 2, 3, 4})}); },
               ErrorCode::runtime, {"inner dimensions differ"});
  expect_error([] { run1("MatMulInteger", 11, {f32({1, 1}, {1}), u8({1, 1}, {1})}); }, ErrorCode::runtime,
               {"A should be uint8 or int8"});
  expect_error([] { run1("MatMulInteger", 11, {u8({2, 2}, {1, 2, 3, 4}), u8({2, 2}, {1, 2, 3, 4}), u8({3}, {1, 2, 3})}); },
               ErrorCode::runtime, {"A zero point of shape [3]"});
}

// ---- com.microsoft MatMulIntegerToFloat / DynamicQuantizeMatMul ----------------------------------

// float((A - a_zp) @ (B - b_zp)) * (a_scale * b_scale[n]) + bias[n].
TEST(MatMulIntegerToFloat, PerColumnScaleAndBias) {
  auto y = run_op("MatMulIntegerToFloat", 17,
                  {u8({2, 2}, {1, 2, 3, 4}), u8({2, 2}, {1, 0, 0, 1}), Tensor::scalar_float(0.5f), f32({2}, {1, 2}),
                   u8({}, {1}), Tensor(), f32({2}, {0.25f, -1})},
                  {}, 1, "com.microsoft");
  // A - 1 = [[0, 1], [2, 3]]; B is the identity; column multipliers 0.5 and 1.
  expect_floats(y[0], {2, 2}, {0.25f, 0, 1.25f, 2}, 0);
}

// A is quantized as DynamicQuantizeLinear does: [-1, 3] -> scale 4/255, zero point 64, codes
// [0, 255] (see NaNQuantizesToZeroPoint), so A - zp = [-64, 191]; with B = [1, 2]^T the sum is 318.
TEST(DynamicQuantizeMatMul, QuantizesAThenScales) {
  auto y = run_op("DynamicQuantizeMatMul", 17,
                  {f32({1, 2}, {-1, 3}), s8({2, 1}, {1, 2}), Tensor::scalar_float(0.5f), Tensor(), f32({1}, {1})}, {},
                  1, "com.microsoft");
  const float multiplier = (4.0f / 255.0f) * 0.5f;
  expect_floats(y[0], {1, 1}, {318.0f * multiplier + 1.0f}, 0);
}

// ---- MatMulNBits -----------------------------------------------------------------------------------

// A hand-made 4-bit (or 8-bit) weight: codes q[n][k], one scale and zero point per block of K.
struct BlockWeights {
  int64_t n, k, block_size, bits;
  std::vector<std::vector<int>> codes;       // [n][k]
  std::vector<std::vector<float>> scales;    // [n][block]
  std::vector<std::vector<int>> zero_points; // [n][block]; empty = none (2^(bits-1))

  int64_t blocks() const { return (k + block_size - 1) / block_size; }
  // B: [N, blocks, block_size * bits / 8], codes low bits first; padding codes are 0.
  Tensor packed_b() const {
    const int64_t blob = block_size * bits / 8;
    std::vector<uint8_t> bytes(static_cast<std::size_t>(n * blocks() * blob), 0);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < k; ++c) {
        const int64_t bit = (r * blocks() * block_size + c) * bits;  // blocks are contiguous per row
        bytes[static_cast<std::size_t>(bit / 8)] |= static_cast<uint8_t>(codes[r][c] << (bit % 8));
      }
    return u8({n, blocks(), blob}, bytes);
  }
  Tensor scale_tensor() const {
    std::vector<float> v;
    for (const auto& row : scales) v.insert(v.end(), row.begin(), row.end());
    return f32({n * blocks()}, v);
  }
  // Per row ceil(blocks * bits / 8) bytes, low bits first.
  Tensor packed_zero_points() const {
    const int64_t row_bytes = (blocks() * bits + 7) / 8;
    std::vector<uint8_t> bytes(static_cast<std::size_t>(n * row_bytes), 0);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t b = 0; b < blocks(); ++b) {
        const int64_t bit = b * bits;
        bytes[static_cast<std::size_t>(r * row_bytes + bit / 8)] |= static_cast<uint8_t>(zero_points[r][b] << (bit % 8));
      }
    return u8({n * row_bytes}, bytes);
  }
  // The definition: W[n][k] = (q - zp) * scale; Y = A @ W^T (+ bias), in double.
  std::vector<float> reference(const std::vector<float>& a, int64_t rows, const std::vector<float>& bias) const {
    std::vector<float> y;
    for (int64_t m = 0; m < rows; ++m)
      for (int64_t r = 0; r < n; ++r) {
        double acc = bias.empty() ? 0.0 : bias[r];
        for (int64_t c = 0; c < k; ++c) {
          const int64_t b = c / block_size;
          const int zp = zero_points.empty() ? 1 << (bits - 1) : zero_points[r][b];
          acc += static_cast<double>(a[m * k + c]) * (codes[r][c] - zp) * scales[r][b];
        }
        y.push_back(static_cast<float>(acc));
      }
    return y;
  }
};

BlockWeights make_weights(int64_t n, int64_t k, int64_t block_size, int64_t bits, bool with_zero_points) {
  BlockWeights w{n, k, block_size, bits, {}, {}, {}};
  const int max_code = (1 << bits) - 1;
  for (int64_t r = 0; r < n; ++r) {
    w.codes.emplace_back();
    for (int64_t c = 0; c < k; ++c) w.codes.back().push_back(static_cast<int>((r * 7 + c * 5 + c * c) % (max_code + 1)));
    w.scales.emplace_back();
    if (with_zero_points) w.zero_points.emplace_back();
    for (int64_t b = 0; b < w.blocks(); ++b) {
      w.scales.back().push_back(0.125f * static_cast<float>(1 + r + 2 * b));
      if (with_zero_points) w.zero_points.back().push_back(static_cast<int>((3 + r * 5 + b * 11) % (max_code + 1)));
    }
  }
  return w;
}

std::vector<float> ramp(int64_t count) {
  std::vector<float> v;
  for (int64_t i = 0; i < count; ++i) v.push_back(static_cast<float>((i * 37) % 23) * 0.25f - 2.5f);
  return v;
}

std::vector<onnx::Attribute> nbits_attrs(const BlockWeights& w) {
  return {attr_i("K", w.k), attr_i("N", w.n), attr_i("bits", w.bits), attr_i("block_size", w.block_size)};
}

// The packing is checked by hand once: row 0 of a 4-bit [N=1, K=16] weight with codes 0..15 is
// bytes 0x10, 0x32, ... (low nibble first), and with zero point 8 and scale 1 W = code - 8.
TEST(MatMulNBits, HandPackedRow) {
  std::vector<uint8_t> bytes{0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE};
  std::vector<float> a(16, 0.0f);
  a[0] = 1.0f;   // picks W[0][0] = 0 - 8
  a[15] = 2.0f;  // picks W[0][15] = 15 - 8
  auto y = run_op("MatMulNBits", 17, {f32({1, 16}, a), u8({1, 1, 8}, bytes), f32({1}, {1.0f})},
                  {attr_i("K", 16), attr_i("N", 1), attr_i("bits", 4), attr_i("block_size", 16)}, 1, "com.microsoft");
  expect_floats(y[0], {1, 1}, {-8.0f + 2.0f * 7.0f}, 0);
}

TEST(MatMulNBits, FourBitWithZeroPointsAndPartialBlock) {
  // K = 40 with block 16: three blocks, the last one holding 8 values and 8 padding codes.
  const BlockWeights w = make_weights(3, 40, 16, 4, true);
  const std::vector<float> a = ramp(2 * 2 * 40);
  auto y = run_op("MatMulNBits", 17, {f32({2, 2, 40}, a), w.packed_b(), w.scale_tensor(), w.packed_zero_points()},
                  nbits_attrs(w), 1, "com.microsoft");
  expect_floats(y[0], {2, 2, 3}, w.reference(a, 4, {}), 1e-4f);
}

TEST(MatMulNBits, FourBitSymmetricWithBias) {
  const BlockWeights w = make_weights(5, 64, 32, 4, false);
  const std::vector<float> a = ramp(3 * 64);
  const std::vector<float> bias{0.5f, -1.0f, 2.0f, 0.0f, 3.25f};
  auto y = run_op("MatMulNBits", 17, {f32({3, 64}, a), w.packed_b(), w.scale_tensor(), Tensor(), Tensor(), f32({5}, bias)},
                  nbits_attrs(w), 1, "com.microsoft");
  expect_floats(y[0], {3, 5}, w.reference(a, 3, bias), 1e-4f);
}

TEST(MatMulNBits, EightBitWithZeroPoints) {
  const BlockWeights w = make_weights(2, 32, 16, 8, true);
  const std::vector<float> a = ramp(32);
  auto y = run_op("MatMulNBits", 17, {f32({1, 32}, a), w.packed_b(), w.scale_tensor(), w.packed_zero_points()},
                  nbits_attrs(w), 1, "com.microsoft");
  expect_floats(y[0], {1, 2}, w.reference(a, 1, {}), 1e-4f);
}

TEST(MatMulNBits, RejectsGIdxAndOtherBitWidths) {
  const BlockWeights w = make_weights(1, 16, 16, 4, false);
  expect_error(
      [&] {
        run_op("MatMulNBits", 17, {f32({1, 16}, ramp(16)), w.packed_b(), w.scale_tensor(), Tensor(), i32({16}, std::vector<int32_t>(16, 0))},
               nbits_attrs(w), 1, "com.microsoft");
      },
      ErrorCode::unsupported, {"g_idx"});
  expect_error(
      [&] {
        run_op("MatMulNBits", 17, {f32({1, 16}, ramp(16)), w.packed_b(), w.scale_tensor()},
               {attr_i("K", 16), attr_i("N", 1), attr_i("bits", 3), attr_i("block_size", 16)}, 1, "com.microsoft");
      },
      ErrorCode::unsupported, {"bits=3"});
  expect_error(
      [&] {
        run_op("MatMulNBits", 17, {f32({1, 16}, ramp(16)), w.packed_b(), w.scale_tensor()},
               {attr_i("K", 16), attr_i("N", 1), attr_i("block_size", 24)}, 1, "com.microsoft");
      },
      ErrorCode::model_format, {"block_size"});
}

TEST(MatMulNBits, RejectsMismatchedInputs) {
  const BlockWeights w = make_weights(2, 32, 16, 4, false);
  expect_error(
      [&] {
        run_op("MatMulNBits", 17, {f32({1, 31}, ramp(31)), w.packed_b(), w.scale_tensor()}, nbits_attrs(w), 1,
               "com.microsoft");
      },
      ErrorCode::runtime, {"should end in K=32"});
  expect_error(
      [&] {
        run_op("MatMulNBits", 17, {f32({1, 32}, ramp(32)), w.packed_b(), f32({3}, {1, 1, 1})}, nbits_attrs(w), 1,
               "com.microsoft");
      },
      ErrorCode::runtime, {"scales should hold N * blocks = 4"});
  expect_error(
      [&] {
        run_op("MatMulNBits", 17, {f32({1, 32}, ramp(32)), w.packed_b(), w.scale_tensor(), u8({3}, {0, 0, 0})},
               nbits_attrs(w), 1, "com.microsoft");
      },
      ErrorCode::runtime, {"zero_points should be uint8"});
}

}  // namespace
}  // namespace leanembed::interp::test
