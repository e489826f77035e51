// libFuzzer target: the byte formats of the cache store's values (src/cache/cache_record.h), decoded
// without LMDB, so that a campaign reaches millions of inputs (fuzz_cache_store drives the same
// records through LMDB's on-disk format at ~150 inputs/s). Input: byte 0 picks the key (its bytes
// and its dims, 0..255), the rest is a stored value. Checked for every input:
//   - the header decoder accepts only a header and reads its fields back;
//   - a record decodes as ok only if it is exactly the record encode_vector writes for that key and
//     those floats (no damaged or foreign bytes served); a decode that is not ok writes nothing;
//   - the verdict is the right one: "other dims" exactly when the length or the dims field is not
//     the key's (a miss), "damaged" only when both are (a checksum mismatch: the store is set aside);
//   - a record re-encoded from the input's own floats decodes as ok, to the same bits.
// The seeds in fuzz/corpus/fuzz_cache_record hold valid records and a header, written with
// Python's hashlib.blake2b(digest_size=8) (an implementation independent of ours).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "cache/cache_record.h"

using leanembed::CacheKey;
namespace record = leanembed::cache::record;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto stored = std::as_bytes(std::span(data + 1, size - 1));

  // The header: accepted only with the header's size and magic; its fields read back.
  if (const auto h = record::decode_header(stored)) {
    if (stored.size() != record::kHeaderBytes) __builtin_trap();
    const auto again = record::encode_header(h->format_version);
    // encode_header writes this build's key size and value format; equal bytes iff the fields are.
    const bool same_fields = h->key_size == CacheKey::size && h->value_format == record::kValueFormatF32LeChecked;
    if (same_fields != (std::memcmp(again.data(), stored.data(), record::kHeaderBytes) == 0)) __builtin_trap();
  }

  // A vector record under the key byte 0 names.
  CacheKey key;
  key.bytes.fill(data[0]);
  key.dims = data[0];
  constexpr float kUntouched = -7.5f;
  std::vector<float> got(static_cast<std::size_t>(key.dims) + 1, kUntouched);  // +1: a canary past the end
  const record::VectorRecord r = record::decode_vector(key, stored, got.data());
  if (got.back() != kUntouched) __builtin_trap();  // wrote past key.dims floats
  const bool our_shape = stored.size() == record::vector_record_bytes(key.dims) &&
                         std::to_integer<std::uint32_t>(stored[0]) == static_cast<std::uint32_t>(key.dims) &&
                         stored[1] == std::byte{0} && stored[2] == std::byte{0} && stored[3] == std::byte{0};
  if ((r == record::VectorRecord::other_dims) == our_shape) __builtin_trap();  // a miss iff not this key's shape
  if (r == record::VectorRecord::ok) {
    // Served: the bytes must be exactly the record of these floats under this key.
    std::vector<std::byte> again(record::vector_record_bytes(key.dims));
    record::encode_vector(key, got.data(), again);
    if (again.size() != stored.size() || std::memcmp(again.data(), stored.data(), again.size()) != 0) __builtin_trap();
  } else {
    for (std::size_t i = 0; i + 1 < got.size(); ++i)
      if (std::memcmp(&got[i], &kUntouched, sizeof(float)) != 0) __builtin_trap();  // written though not ok
  }
  if (our_shape) {
    // The input's floats, written as a record under this key, must come back bit for bit.
    std::vector<float> floats(static_cast<std::size_t>(key.dims));
    std::memcpy(floats.data(), stored.data() + 4, floats.size() * sizeof(float));
    std::vector<std::byte> written(record::vector_record_bytes(key.dims));
    record::encode_vector(key, floats.data(), written);
    std::vector<float> back(floats.size() + 1, kUntouched);
    if (record::decode_vector(key, written, back.data()) != record::VectorRecord::ok) __builtin_trap();
    if (std::memcmp(back.data(), floats.data(), floats.size() * sizeof(float)) != 0) __builtin_trap();
  }
  return 0;
}
