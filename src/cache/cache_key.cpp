// Model fingerprints and cache keys (see leanembed/cache.h for the key layout).
#include <algorithm>
#include <cstring>
#include <vector>

#include "cache/blake2b.h"
#include "core/file_reader.h"
#include "leanembed/cache.h"
#include "leanembed/error.h"

namespace leanembed {
namespace {

void add_u64(cache::Blake2b& hash, std::uint64_t v) {
  std::uint8_t le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<std::uint8_t>(v >> (8 * i));
  hash.update(le, sizeof le);
}

// Length-prefixed so that ("ab", "c") and ("a", "bc") hash differently.
void add_string(cache::Blake2b& hash, const std::string& s) {
  add_u64(hash, s.size());
  hash.update(s.data(), s.size());
}

}  // namespace

ModelFingerprint fingerprint_bytes(std::span<const std::byte> bytes) { return cache::blake2b_256(bytes); }

// Read with pread through a 1 MiB buffer rather than through a mapping: a mapping would leave every
// page of the model file in the process' resident set (MiniLM fp32: 90 MB for a run that may never
// touch most of it again -- the fast path reads the word table with pread too).
ModelFingerprint fingerprint_file(const std::string& path) {
  const FileReader file(path);
  cache::Blake2b hash(32);
  std::vector<std::byte> buffer(std::min<std::size_t>(file.size(), std::size_t{1} << 20));
  for (std::size_t at = 0; at < file.size(); at += buffer.size()) {
    const std::span<std::byte> chunk(buffer.data(), std::min(buffer.size(), file.size() - at));
    file.read(at, chunk);
    hash.update(chunk);
  }
  ModelFingerprint out{};
  hash.finish(std::as_writable_bytes(std::span(out)));
  return out;
}

std::string fingerprint_hex(const ModelFingerprint& fingerprint) {
  static const char digits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(64);
  for (std::uint8_t b : fingerprint) {
    hex.push_back(digits[b >> 4]);
    hex.push_back(digits[b & 15]);
  }
  return hex;
}

CacheKeyMaker::CacheKeyMaker(const CacheScope& scope) : scope_(scope) {
  if (scope.dims <= 0) {
    throw Error(ErrorCode::invalid_argument,
                "cache scope: dims must be the vector length (> 0), got " + std::to_string(scope.dims));
  }
  cache::Blake2b hash(32);
  static const char tag[] = "leanembed-cache-scope-v1";
  hash.update(tag, sizeof tag - 1);
  hash.update(scope.model.data(), scope.model.size());
  add_string(hash, scope.dtype);
  add_string(hash, scope.pooling);
  add_u64(hash, scope.normalize ? 1 : 0);
  add_u64(hash, static_cast<std::uint64_t>(scope.max_length));
  add_u64(hash, static_cast<std::uint64_t>(scope.dims));
  add_string(hash, scope.extra);
  hash.finish(std::as_writable_bytes(std::span(scope_digest_)));
}

CacheKey CacheKeyMaker::key(std::string_view text) const {
  CacheKey key;
  key.dims = scope_.dims;
  std::memcpy(key.bytes.data(), scope_digest_.data(), 32);
  cache::Blake2b hash(32);
  hash.update(text.data(), text.size());
  hash.finish(std::as_writable_bytes(std::span(key.bytes).subspan(32, 32)));
  const std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) key.bytes[64 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  return key;
}

}  // namespace leanembed
