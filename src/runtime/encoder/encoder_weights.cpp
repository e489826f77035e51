#include "runtime/encoder/encoder_weights.h"

#include "core/float16.h"

namespace leanembed::runtime::encoder {

const char* linear_encoding_name(LinearEncoding e) {
  switch (e) {
    case LinearEncoding::fp32: return "fp32";
    case LinearEncoding::int8: return "int8";
    case LinearEncoding::q4: return "q4";
    case LinearEncoding::fp16: return "fp16";
  }
  return "?";
}

float EmbeddingTable::load(int64_t i) const {
  if (!column_scale.empty()) {
    const std::size_t c = static_cast<std::size_t>(i) % column_scale.size();
    const int32_t q = encoding == TableEncoding::uint8 ? static_cast<int32_t>(static_cast<uint8_t>(bytes[i]))
                                                       : static_cast<int32_t>(static_cast<int8_t>(bytes[i]));
    return static_cast<float>(q - column_zero_point[c]) * column_scale[c];
  }
  switch (encoding) {
    case TableEncoding::fp32: {
      float v;
      std::memcpy(&v, bytes + i * 4, sizeof v);
      return v;
    }
    case TableEncoding::fp16: return load_half(bytes + i * 2);
    case TableEncoding::uint8:
      return static_cast<float>(static_cast<int32_t>(static_cast<uint8_t>(bytes[i])) - zero_point) * scale;
    case TableEncoding::int8:
      return static_cast<float>(static_cast<int32_t>(static_cast<int8_t>(bytes[i])) - zero_point) * scale;
  }
  return 0.0f;
}

namespace {

// dst[c] = or += decode(c) for c < n, one loop per encoding (no per-value switch).
template <bool Add>
void decode_into(const EmbeddingTable& t, int64_t first, int64_t n, float* dst) {
  auto put = [dst](int64_t c, float v) {
    if constexpr (Add) dst[c] += v; else dst[c] = v;
  };
  if (!t.column_scale.empty()) {
    for (int64_t c = 0; c < n; ++c) put(c, t.load(first + c));
    return;
  }
  switch (t.encoding) {
    case TableEncoding::fp32:
      for (int64_t c = 0; c < n; ++c) {
        float v;
        std::memcpy(&v, t.bytes + (first + c) * 4, sizeof v);
        put(c, v);
      }
      return;
    case TableEncoding::fp16:
      for (int64_t c = 0; c < n; ++c) put(c, load_half(t.bytes + (first + c) * 2));
      return;
    case TableEncoding::uint8:
      for (int64_t c = 0; c < n; ++c)
        put(c, static_cast<float>(static_cast<int32_t>(static_cast<uint8_t>(t.bytes[first + c])) - t.zero_point) * t.scale);
      return;
    case TableEncoding::int8:
      for (int64_t c = 0; c < n; ++c)
        put(c, static_cast<float>(static_cast<int32_t>(static_cast<int8_t>(t.bytes[first + c])) - t.zero_point) * t.scale);
      return;
  }
}

}  // namespace

void EmbeddingTable::copy_to(int64_t first, int64_t n, float* dst) const {
  if (encoding == TableEncoding::fp32) {
    std::memcpy(dst, bytes + first * 4, static_cast<std::size_t>(n) * sizeof(float));
    return;
  }
  decode_into<false>(*this, first, n, dst);
}

void EmbeddingTable::add_to(int64_t first, int64_t n, float* dst) const { decode_into<true>(*this, first, n, dst); }

}  // namespace leanembed::runtime::encoder
