// The byte formats of the values the cache store keeps (src/cache/lmdb_store.h holds them in LMDB):
// the store's header and one vector record. This file owns the layout; the store only moves bytes.
//
// Header (28 bytes): the 16-byte magic "leanembed-cache\0", then u32 LE each: the store's format
// version, the key size (CacheKey::size), the value format (kValueFormatF32LeChecked).
// Vector record (vector_record_bytes(dims)): u32 LE dims, dims x f32 LE, then an 8-byte BLAKE2b-64
// checksum of the key's 72 bytes followed by the dims and floats (value format 1 had no checksum).
// Fuzzed by fuzz/fuzz_cache_record.cpp; fuzz_cache_store drives them through LMDB.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "leanembed/cache.h"

namespace leanembed::cache::record {

constexpr std::size_t kHeaderBytes = 16 + 4 + 4 + 4;  // magic, format version, key size, value format
constexpr std::uint32_t kValueFormatF32LeChecked = 2;
constexpr std::size_t kChecksumBytes = 8;

struct Header {
  std::uint32_t format_version = 0;
  std::uint32_t key_size = 0;
  std::uint32_t value_format = 0;
};

std::array<std::byte, kHeaderBytes> encode_header(std::uint32_t format_version);
// The fields of a header, or nullopt when the bytes are not a leanembed header (size or magic);
// the caller judges the fields.
std::optional<Header> decode_header(std::span<const std::byte> bytes);

// Bytes of the record of a vector of `dims` floats (dims >= 0).
std::size_t vector_record_bytes(std::int64_t dims);
// Writes the record of `vector` (key.dims floats) to out, which holds vector_record_bytes(key.dims).
void encode_vector(const CacheKey& key, const float* vector, std::span<std::byte> out);

enum class VectorRecord {
  ok,          // the record was written for this key: its floats are in dst
  other_dims,  // the record's length or dims field is not the key's: a miss, nothing written
  damaged,     // the checksum does not match: the bytes changed after they were written
};
// Reads the record stored under `key` into dst (key.dims floats). dst is written only on ok.
VectorRecord decode_vector(const CacheKey& key, std::span<const std::byte> record, float* dst);

}  // namespace leanembed::cache::record
