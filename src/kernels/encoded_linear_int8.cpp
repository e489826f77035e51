// int8 encoded linear layer: the factory, the view checks, the scalar row functions (quantizer and
// epilogue: the ref table of the int8 row family, dispatch.h) and the reference layer (plain loops, exactly the formula of encoded_linear.h: the spec the fast layer
// in encoded_linear_int8_onednn.cpp is tested against).
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "kernels/encoded_linear.h"
#include "kernels/encoded_linear_int8_internal.h"
#include "leanembed/error.h"

namespace leanembed::kernels {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw Error(ErrorCode::invalid_argument, "int8 encoded linear: " + what);
}

// Round half to even, independent of the floating-point rounding mode and without libm calls.
// Values of magnitude >= 2^23 are integers already (and NaN, +-inf stay as they are).
float round_half_even(float v) {
  if (!(std::fabs(v) < 8388608.0f)) return v;
  const int32_t whole = static_cast<int32_t>(v);          // toward zero; |v| < 2^23, so in range
  const float frac = v - static_cast<float>(whole);       // exact, in (-1, 1)
  const int32_t odd = whole & 1;  // ties go to the even neighbour
  const int32_t up = int32_t(frac > 0.5f) | (int32_t(frac == 0.5f) & odd);
  const int32_t down = int32_t(frac < -0.5f) | (int32_t(frac == -0.5f) & odd);
  return static_cast<float>(whole + up - down);  // branch-free: 4x faster on random data
}

// Clamp to [0, 255] with the comparisons written out so that NaN gives 0 (what the AVX-512 max / min
// instructions do with these operand orders).
float clamp_0_255(float v) {
  v = v > 0.0f ? v : 0.0f;
  return v < 255.0f ? v : 255.0f;
}

float load_float(const void* base, int64_t index) {
  float v;
  std::memcpy(&v, static_cast<const unsigned char*>(base) + index * sizeof(float), sizeof v);
  return v;
}

// Byte `index` of an int8 (is_signed) or uint8 array, as an integer.
int32_t load_int8(const void* base, int64_t index, bool is_signed) {
  const unsigned char byte = static_cast<const unsigned char*>(base)[index];
  return is_signed ? int32_t(static_cast<int8_t>(byte)) : int32_t(byte);
}

class ReferenceInt8Linear final : public EncodedLinear {
 public:
  explicit ReferenceInt8Linear(const Int8WeightsView& w) : w_(w) {}

  const char* name() const override { return "int8-ref"; }
  int64_t k() const override { return w_.k; }
  int64_t n() const override { return w_.n; }
  std::size_t owned_bytes() const override { return 0; }
  // One row of quantized activations.
  std::size_t scratch_bytes(int64_t m) const override { return m > 0 ? std::size_t(w_.k) : 0; }

  void run(int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy, const float* bias, void* scratch) override {
    if (m < 0) fail("run: m must be >= 0, got " + std::to_string(m));
    if (m == 0) return;
    if (!x || !y) fail(std::string("run: ") + (!x ? "x" : "y") + " is null");
    if (ldx < w_.k) fail("run: ldx " + std::to_string(ldx) + " is smaller than k " + std::to_string(w_.k));
    if (ldy < w_.n) fail("run: ldy " + std::to_string(ldy) + " is smaller than n " + std::to_string(w_.n));
    if (!scratch) fail("run: scratch is null but " + std::to_string(scratch_bytes(m)) + " bytes are needed");
    uint8_t* q = static_cast<uint8_t*>(scratch);
    for (int64_t r = 0; r < m; ++r) {
      const Int8RowQuant row = int8_quantize_row_scalar(x + r * ldx, w_.k, q, w_.input_scale);
      for (int64_t j = 0; j < w_.n; ++j) {
        const int32_t zp_w = w_.zero_points ? load_int8(w_.zero_points, w_.zero_point_count == 1 ? 0 : j, w_.is_signed) : 0;
        int32_t sum = 0;  // exact: |each term| <= 255 * 255 and k <= kInt8MaxK
        for (int64_t i = 0; i < w_.k; ++i)
          sum += (int32_t(q[i]) - row.zero_point) * (load_int8(w_.data, i * w_.n + j, w_.is_signed) - zp_w);
        const float scale_w = load_float(w_.scales, w_.scale_count == 1 ? 0 : j);
        float v = row.scale * scale_w * static_cast<float>(sum);
        if (bias) v += bias[j];
        y[r * ldy + j] = v;
      }
    }
  }

 private:
  Int8WeightsView w_;
};

}  // namespace

void int8_view_check(const Int8WeightsView& w) {
  if (!w.data) fail("weights data is null");
  if (w.k < 1 || w.n < 1) fail("weights shape k x n must be at least 1 x 1, got " + std::to_string(w.k) + " x " + std::to_string(w.n));
  if (w.k > kInt8MaxK)
    fail("k = " + std::to_string(w.k) + " is larger than " + std::to_string(kInt8MaxK) +
         ", the most whose int32 sums cannot overflow");
  if (w.n > std::numeric_limits<int64_t>::max() / w.k) fail("k * n overflows (n = " + std::to_string(w.n) + ")");
  if (!w.scales) fail("scales is null");
  if (w.scale_count != 1 && w.scale_count != w.n)
    fail("scale_count must be 1 or n = " + std::to_string(w.n) + ", got " + std::to_string(w.scale_count));
  if (w.zero_point_count != 0 && w.zero_point_count != 1 && w.zero_point_count != w.n)
    fail("zero_point_count must be 0, 1 or n = " + std::to_string(w.n) + ", got " + std::to_string(w.zero_point_count));
  if (!w.zero_points && w.zero_point_count != 0)
    fail("zero_points is null but zero_point_count is " + std::to_string(w.zero_point_count));
  if (w.zero_points && w.zero_point_count == 0) fail("zero_points is set but zero_point_count is 0");
}

Int8RowQuant int8_row_params(float lo, float hi) {
  Int8RowQuant p;
  p.scale = (hi - lo) / 255.0f;
  if (p.scale != 0.0f) p.zero_point = static_cast<int32_t>(clamp_0_255(round_half_even(-lo / p.scale)));
  return p;
}

Int8RowQuant int8_quantize_row_scalar(const float* x, int64_t k, uint8_t* q, const float* c) {
  auto value = [&](int64_t i) { return c ? x[i] * c[i] : x[i]; };
  float lo = 0.0f, hi = 0.0f;  // the range always includes 0; NaN never replaces them
  for (int64_t i = 0; i < k; ++i) {
    const float v = value(i);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  Int8RowQuant p = int8_row_params(lo, hi);
  if (p.scale == 0.0f) {
    std::memset(q, 0, std::size_t(k));
    return p;
  }
  const float zp = static_cast<float>(p.zero_point);
  for (int64_t i = 0; i < k; ++i) {
    const int32_t v = static_cast<int32_t>(clamp_0_255(round_half_even(value(i) / p.scale) + zp));
    q[i] = static_cast<uint8_t>(v);
    p.sum += v;
  }
  return p;
}

void int8_epilogue_row_scalar(const Int8EpilogueRow& r) {
  for (int64_t j = 0; j < r.n; ++j) {
    // int64 so no intermediate can overflow; the result fits int32 (k <= kInt8MaxK).
    int64_t s = int64_t(r.acc[j]) + (r.acc2 ? r.acc2[j] : 0) - int64_t(r.zp_w[j]) * r.q_sum -
                int64_t(r.zp_x) * r.col_sum[j];
    float v = r.scale_x * r.scale_w[j] * static_cast<float>(static_cast<int32_t>(s));
    if (r.bias) v += r.bias[j];
    r.y[j] = v;
  }
}

const Int8RowKernels& int8_row_kernels_reference() {
  static constexpr Int8RowKernels table{"ref", int8_quantize_row_scalar, int8_epilogue_row_scalar};
  return table;
}

std::unique_ptr<EncodedLinear> encoded_linear_int8_reference(const Int8WeightsView& w) {
  return std::make_unique<ReferenceInt8Linear>(w);
}

std::unique_ptr<EncodedLinear> encoded_linear_int8(const Int8WeightsView& w, Implementation impl) {
  int8_view_check(w);
  if (impl == Implementation::reference) return encoded_linear_int8_reference(w);
  return encoded_linear_int8_onednn(w, !int8_onednn_has_vnni());
}

}  // namespace leanembed::kernels
