// libFuzzer target: the embedding cache's store as found on disk (src/cache/lmdb_store.h): the input
// becomes data.mdb in a scratch folder, the store is opened and read and written as the Cache does.
// A damaged file must be moved aside or refused with leanembed::Error, a damaged record a miss (its
// checksum), never a crash; every vector served must be the one stored under its key (the seeds in
// fuzz/corpus/fuzz_cache_store hold records written by fuzz_cache_store itself: see seed_records),
// or one whose whole record, checksum included, is in the file (written, not damaged: see below).
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cache/cache_record.h"
#include "cache/lmdb_store.h"
#include "leanembed/error.h"

namespace fs = std::filesystem;
using leanembed::CacheKey;

namespace {

constexpr int kKeys = 4;
constexpr std::int64_t kDims = 8;

// Key i: bytes all i+1, dims 8; its vector: i + 0.125 * j. A record served for key i must hold that.
CacheKey key(int i) {
  CacheKey k;
  k.bytes.fill(static_cast<std::uint8_t>(i + 1));
  k.dims = kDims;
  return k;
}
float value(int i, int j) { return static_cast<float>(i) + 0.125f * static_cast<float>(j); }

const fs::path& scratch() {
  static const fs::path dir = fs::temp_directory_path() / ("leanembed-fuzz-cache-" + std::to_string(::getpid()));
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fs::path& dir = scratch();
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream out(dir / "data.mdb", std::ios::binary);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  std::array<CacheKey, kKeys> keys;
  std::array<const CacheKey*, kKeys> key_ptrs;
  std::array<std::array<float, kDims>, kKeys> stored, got;
  std::array<const float*, kKeys> stored_ptrs;
  std::array<float*, kKeys> got_ptrs;
  for (int i = 0; i < kKeys; ++i) {
    keys[i] = key(i);
    key_ptrs[i] = &keys[i];
    for (int j = 0; j < kDims; ++j) stored[i][j] = value(i, j);
    stored_ptrs[i] = stored[i].data();
    got_ptrs[i] = got[i].data();
  }
  try {
    leanembed::cache::StoreOptions o;
    o.directory = dir.string();
    o.initial_map_bytes = 1u << 20;
    o.max_map_bytes = 4u << 20;
    o.sync = false;
    leanembed::cache::LmdbStore store(o, {});
    std::array<std::uint8_t, kKeys> found{};
    store.get_many(key_ptrs, got_ptrs, found);
    for (int i = 0; i < kKeys; ++i) {
      if (!found[i] || std::memcmp(got[i].data(), stored[i].data(), sizeof got[i]) == 0) continue;
      // Served, and not the vector the seeds stored: allowed only if the file holds the record of
      // exactly these floats under this key, checksum included — a record written that way (libFuzzer
      // solves the checksum comparison and writes one) is a record, not damage. A checksum finds
      // accidental damage; whoever can write the file can write any vector. Anything else served
      // is a damaged record: trap.
      std::vector<std::byte> record(leanembed::cache::record::vector_record_bytes(kDims));
      leanembed::cache::record::encode_vector(keys[i], got[i].data(), record);
      const auto* begin = reinterpret_cast<const std::byte*>(data);
      if (std::search(begin, begin + size, record.begin(), record.end()) == begin + size) __builtin_trap();
    }
    store.put_many(std::span(key_ptrs).first(2), std::span(stored_ptrs).first(2));
    (void)store.stats();
  } catch (const leanembed::Error&) {
  }
  return 0;
}
