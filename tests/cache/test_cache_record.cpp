// The byte formats of the cache store's values (cache/cache_record.h): a record against one built by
// Python's hashlib (an independent BLAKE2b), round trips, and every kind of damage refused.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "cache/cache_record.h"
#include "cache_test_util.h"

namespace leanembed::cache::record {
namespace {

CacheKey key_of(std::uint8_t fill, std::int64_t dims) {
  CacheKey k;
  k.bytes.fill(fill);
  k.dims = dims;
  return k;
}

using test::hex;

std::vector<std::byte> encoded(const CacheKey& key, const std::vector<float>& v) {
  std::vector<std::byte> out(vector_record_bytes(key.dims));
  encode_vector(key, v.data(), out);
  return out;
}

TEST(CacheRecord, VectorRecordIsTheDocumentedBytes) {
  // python3: key = bytes([3]) * 72; payload = struct.pack('<Iff', 2, 1.0, -2.5);
  //          payload + hashlib.blake2b(key + payload, digest_size=8).digest()
  const CacheKey key = key_of(3, 2);
  EXPECT_EQ(vector_record_bytes(2), 4u + 8u + 8u);
  EXPECT_EQ(hex(encoded(key, {1.0f, -2.5f})), "020000000000803f000020c09dbc654e3981e62c");
}

TEST(CacheRecord, DecodeGivesBackTheStoredFloats) {
  const CacheKey key = key_of(9, 5);
  const std::vector<float> v{0.5f, -1.25f, 3e-20f, -0.0f, 1e30f};
  std::vector<float> got(5, 0.0f);
  ASSERT_EQ(decode_vector(key, encoded(key, v), got.data()), VectorRecord::ok);
  EXPECT_EQ(std::memcmp(got.data(), v.data(), 5 * sizeof(float)), 0);
}

TEST(CacheRecord, EveryChangedByteIsRefusedAndNothingWritten) {
  const CacheKey key = key_of(1, 3);
  const std::vector<std::byte> good = encoded(key, {1.0f, 2.0f, 3.0f});
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::vector<std::byte> bad = good;
    bad[i] ^= std::byte{0x10};
    std::vector<float> got(3, 42.0f);
    const VectorRecord r = decode_vector(key, bad, got.data());
    // A changed dims field is another vector length (a miss); any other change fails the checksum.
    EXPECT_EQ(r, i < 4 ? VectorRecord::other_dims : VectorRecord::damaged) << "byte " << i;
    EXPECT_EQ(got, std::vector<float>(3, 42.0f)) << "byte " << i;
  }
}

TEST(CacheRecord, AnotherKeysRecordIsDamagedAnotherLengthIsAMiss) {
  const CacheKey key = key_of(1, 3), other = key_of(2, 3);
  std::vector<float> got(4, 0.0f);
  EXPECT_EQ(decode_vector(key, encoded(other, {1, 2, 3}), got.data()), VectorRecord::damaged);
  EXPECT_EQ(decode_vector(key_of(1, 4), encoded(key, {1, 2, 3}), got.data()), VectorRecord::other_dims);
  std::vector<std::byte> longer = encoded(key, {1, 2, 3});
  longer.push_back(std::byte{0});
  EXPECT_EQ(decode_vector(key, longer, got.data()), VectorRecord::other_dims);
  EXPECT_EQ(decode_vector(key, {}, got.data()), VectorRecord::other_dims);
}

TEST(CacheRecord, HeaderRoundTripsAndForeignBytesAreNotAHeader) {
  const auto h = encode_header(7);
  EXPECT_EQ(hex(std::span(h).first(16)), "6c65616e656d6265642d636163686500");  // "leanembed-cache\0"
  const auto back = decode_header(h);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->format_version, 7u);
  EXPECT_EQ(back->key_size, CacheKey::size);
  EXPECT_EQ(back->value_format, kValueFormatF32LeChecked);
  auto bad = h;
  bad[3] ^= std::byte{1};
  EXPECT_FALSE(decode_header(bad).has_value());
  EXPECT_FALSE(decode_header(std::span(h).first(kHeaderBytes - 1)).has_value());
}

}  // namespace
}  // namespace leanembed::cache::record
