#include "cache/cache_record.h"

#include <bit>
#include <cstring>

#include "cache/blake2b.h"

namespace leanembed::cache::record {
namespace {

constexpr char kMagic[16] = {'l', 'e', 'a', 'n', 'e', 'm', 'b', 'e', 'd', '-', 'c', 'a', 'c', 'h', 'e', '\0'};

void put_u32(std::byte* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
std::uint32_t get_u32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(p[i]) << (8 * i);
  return v;
}

// The checksum of a record: BLAKE2b-64 of key || dims || floats.
void checksum(const CacheKey& key, const std::byte* payload, std::size_t payload_bytes, std::byte* out) {
  Blake2b hash(kChecksumBytes);
  hash.update(key.bytes.data(), key.bytes.size());
  hash.update(payload, payload_bytes);
  hash.finish(std::span<std::byte>(out, kChecksumBytes));
}

}  // namespace

std::array<std::byte, kHeaderBytes> encode_header(std::uint32_t format_version) {
  std::array<std::byte, kHeaderBytes> h{};
  std::memcpy(h.data(), kMagic, 16);
  put_u32(h.data() + 16, format_version);
  put_u32(h.data() + 20, static_cast<std::uint32_t>(CacheKey::size));
  put_u32(h.data() + 24, kValueFormatF32LeChecked);
  return h;
}

std::optional<Header> decode_header(std::span<const std::byte> bytes) {
  if (bytes.size() != kHeaderBytes || std::memcmp(bytes.data(), kMagic, 16) != 0) return std::nullopt;
  return Header{get_u32(bytes.data() + 16), get_u32(bytes.data() + 20), get_u32(bytes.data() + 24)};
}

std::size_t vector_record_bytes(std::int64_t dims) {
  return 4 + static_cast<std::size_t>(dims) * 4 + kChecksumBytes;
}

void encode_vector(const CacheKey& key, const float* vector, std::span<std::byte> out) {
  const auto n = static_cast<std::size_t>(key.dims);
  std::byte* p = out.data();
  put_u32(p, static_cast<std::uint32_t>(key.dims));
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(p + 4, vector, n * sizeof(float));
  } else {
    for (std::size_t i = 0; i < n; ++i) put_u32(p + 4 + 4 * i, std::bit_cast<std::uint32_t>(vector[i]));
  }
  const std::size_t payload = 4 + 4 * n;
  checksum(key, p, payload, p + payload);
}

VectorRecord decode_vector(const CacheKey& key, std::span<const std::byte> record, float* dst) {
  if (key.dims < 0 || record.size() != vector_record_bytes(key.dims)) return VectorRecord::other_dims;
  const std::byte* p = record.data();
  if (get_u32(p) != static_cast<std::uint32_t>(key.dims)) return VectorRecord::other_dims;
  const std::size_t payload = record.size() - kChecksumBytes;
  std::byte sum[kChecksumBytes];
  checksum(key, p, payload, sum);
  if (std::memcmp(sum, p + payload, kChecksumBytes) != 0) return VectorRecord::damaged;
  const auto n = static_cast<std::size_t>(key.dims);
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(dst, p + 4, n * sizeof(float));
  } else {
    for (std::size_t i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(get_u32(p + 4 + 4 * i));
  }
  return VectorRecord::ok;
}

}  // namespace leanembed::cache::record
