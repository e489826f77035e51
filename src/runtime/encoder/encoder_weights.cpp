#include "runtime/encoder/encoder_weights.h"

#include <algorithm>
#include <span>
#include <vector>

#include "core/float16.h"
#include "leanembed/error.h"

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

namespace {

// Bytes a row-source read goes through (on the stack): a whole row of up to 4096 fp32 values, or
// 8192 fp16 / 16384 8-bit values, in one pread; longer ranges loop.
constexpr std::size_t kRowBufferBytes = 16 * 1024;

// dst[c] = or += value(first + c) for c < n, decoded from `src`, which holds those n values' bytes
// (src points at value `first`; `first` only picks the per-column scales). One loop per encoding.
template <bool Add>
void decode_into(const EmbeddingTable& t, const std::byte* src, int64_t first, int64_t n, float* dst) {
  auto put = [dst](int64_t c, float v) {
    if constexpr (Add) dst[c] += v; else dst[c] = v;
  };
  auto int_at = [&](int64_t c) {
    return t.encoding == TableEncoding::uint8 ? static_cast<int32_t>(static_cast<uint8_t>(src[c]))
                                              : static_cast<int32_t>(static_cast<int8_t>(src[c]));
  };
  if (!t.column_scale.empty()) {
    const int64_t columns = static_cast<int64_t>(t.column_scale.size());
    for (int64_t c = 0; c < n; ++c) {
      const std::size_t col = static_cast<std::size_t>((first + c) % columns);
      put(c, static_cast<float>(int_at(c) - t.column_zero_point[col]) * t.column_scale[col]);
    }
    return;
  }
  switch (t.encoding) {
    case TableEncoding::fp32:
      for (int64_t c = 0; c < n; ++c) {
        float v;
        std::memcpy(&v, src + c * 4, sizeof v);
        put(c, v);
      }
      return;
    case TableEncoding::fp16:
      for (int64_t c = 0; c < n; ++c) put(c, load_half(src + c * 2));
      return;
    case TableEncoding::bf16:
      for (int64_t c = 0; c < n; ++c) {
        uint16_t bits;
        std::memcpy(&bits, src + c * 2, sizeof bits);
        put(c, bfloat16_to_float(bits));
      }
      return;
    case TableEncoding::uint8:
    case TableEncoding::int8:
      for (int64_t c = 0; c < n; ++c) put(c, static_cast<float>(int_at(c) - t.zero_point) * t.scale);
      return;
  }
}

// decode_into for values [first, first + n), from the mapping or, with a row source, read with
// pread through a stack buffer chunk by chunk (an fp32 copy reads straight into dst).
template <bool Add>
void table_values(const EmbeddingTable& t, int64_t first, int64_t n, float* dst) {
  const auto element = static_cast<int64_t>(t.element_bytes());
  if (!t.row_source) {
    if (!Add && t.encoding == TableEncoding::fp32) {
      std::memcpy(dst, t.bytes + first * 4, static_cast<std::size_t>(n) * sizeof(float));
      return;
    }
    decode_into<Add>(t, t.bytes + first * element, first, n, dst);
    return;
  }
  const std::size_t offset = t.row_source_offset + static_cast<std::size_t>(first * element);
  if (!Add && t.encoding == TableEncoding::fp32) {
    t.row_source->read(offset, std::as_writable_bytes(std::span<float>(dst, static_cast<std::size_t>(n))));
    return;
  }
  alignas(64) std::byte buffer[kRowBufferBytes];
  const int64_t per_read = static_cast<int64_t>(kRowBufferBytes) / element;
  for (int64_t done = 0; done < n; done += per_read) {
    const int64_t m = std::min(per_read, n - done);
    t.row_source->read(offset + static_cast<std::size_t>(done * element),
                       std::span<std::byte>(buffer, static_cast<std::size_t>(m * element)));
    decode_into<Add>(t, buffer, first + done, m, dst + done);
  }
}

}  // namespace

float EmbeddingTable::load(int64_t i) const {
  float v;
  table_values<false>(*this, i, 1, &v);
  return v;
}

void EmbeddingTable::copy_to(int64_t first, int64_t n, float* dst) const { table_values<false>(*this, first, n, dst); }

void EmbeddingTable::add_to(int64_t first, int64_t n, float* dst) const { table_values<true>(*this, first, n, dst); }

}  // namespace leanembed::runtime::encoder
