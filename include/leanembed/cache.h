// leanembed/cache.h — an exact embedding cache: text → vector, in memory and on disk (LMDB).
//
// Usage:
//   leanembed::CacheScope scope;                     // everything but the text that decides a vector
//   scope.model = leanembed::fingerprint_file(info.model_path);  // ~0.1 s for 90 MB (the Embedder
//                                     // uses a fingerprint of what the model computes with instead,
//                                     // external data included: src/embed/model_fingerprint.h)
//   scope.dtype = "fp32"; scope.pooling = "mean"; scope.normalize = true;
//   scope.max_length = 256; scope.dims = 384;
//   leanembed::CacheKeyMaker keys(scope);            // hashes the scope once
//
//   leanembed::CacheOptions options;
//   options.memory_bytes = 64 << 20;                 // LRU level, bounded in bytes
//   options.directory = "~/.cache/leanembed/vectors"; // LMDB level ("" = memory only)
//   leanembed::Cache cache(options);                 // never throws for disk trouble (see below)
//
//   leanembed::CacheKey k = keys.key("A sentence.");
//   if (auto v = cache.get(k)) { ... }               // memory, then disk (promoted to memory)
//   else { std::vector<float> v = embed(...); cache.put(k, v); }
//
// Exactness: a key is (BLAKE2b-256 of the scope, BLAKE2b-256 of the text, the text's length in
// bytes). Two different texts or scopes share a key only if BLAKE2b-256 collides (2^-128 odds at
// any realistic number of entries), which we treat as exact; the text itself is not stored.
// Values are float32 little-endian with their dimension and a checksum; a stored value whose length
// does not match the key's dims is a miss; one whose checksum does not match is a miss and the store
// is set aside (damaged disk data is never returned as a vector; src/cache/README.md).
//
// Failures: disk problems never throw out of Cache and never crash. A corrupt or foreign store
// (garbage data.mdb, an LMDB without our header, another format version, a truncated file) is
// moved aside as data.mdb.<reason>-<UTC time> and rebuilt; options.on_warning hears about it and
// status() reports it. If the store cannot be opened or rebuilt, or an LMDB call fails later, the
// disk level turns itself off (status().disk_enabled == false) and the cache goes on with memory
// only. Set options.throw_on_error to get an Error(io) from the constructor instead.
// Programming errors (a vector whose length is not key.dims) throw Error(invalid_argument).
//
// Threads: every Cache member may be called from many threads at once. Processes: any number of
// processes may open the same directory at once (LMDB's locking); a writer killed at any point
// loses at most its uncommitted batch.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace leanembed {

// BLAKE2b-256 of a model file's bytes.
using ModelFingerprint = std::array<std::uint8_t, 32>;

// Hashes the whole file with BLAKE2b-256, read with pread in 1 MiB pieces (so none of the file stays
// in the process' resident memory). Throws Error(io) naming the path if it cannot be opened or read
// (or is not a regular file). Memory: a 1 MiB buffer; ~1 GB/s on one core.
ModelFingerprint fingerprint_file(const std::string& path);
// The same over bytes already in memory.
ModelFingerprint fingerprint_bytes(std::span<const std::byte> bytes);
// 64 lowercase hex digits.
std::string fingerprint_hex(const ModelFingerprint& fingerprint);

// Everything besides the text that decides the vector. Two scopes equal field by field give the
// same keys; any difference gives different keys.
struct CacheScope {
  ModelFingerprint model{};    // identifies the model: every byte it computes with (external data too)
  std::string dtype;           // e.g. "fp32", "q8"
  std::string pooling;         // e.g. "mean", "cls"
  bool normalize = true;
  std::int64_t max_length = 0; // tokens, the effective value
  std::int64_t dims = 0;       // the vector length (> 0): every value under this scope has it
  std::string extra;           // anything else that changes vectors (e.g. the tokenizer.json
                               // fingerprint in hex); "" if nothing
};

// A fixed-size key: bytes = scope digest (32) | BLAKE2b-256(text) (32) | text bytes as u64 LE (8).
struct CacheKey {
  static constexpr std::size_t size = 72;
  std::array<std::uint8_t, size> bytes{};
  std::int64_t dims = 0;  // length of the vector stored under this key (also inside the digest)

  bool operator==(const CacheKey& other) const = default;
};

// Makes keys for one scope: hashes the scope once, then one BLAKE2b-256 pass over each text.
// Immutable after construction; safe to share between threads.
class CacheKeyMaker {
 public:
  // Throws Error(invalid_argument) if scope.dims <= 0.
  explicit CacheKeyMaker(const CacheScope& scope);
  CacheKey key(std::string_view text) const;
  const CacheScope& scope() const { return scope_; }

 private:
  CacheScope scope_;
  std::array<std::uint8_t, 32> scope_digest_{};
};

enum class CacheWarningKind {
  store_moved_aside,  // a corrupt/foreign/other-version store was renamed and a new one made
  store_disabled,     // the disk level could not be opened or failed; memory only from now on
  store_full,         // the map reached disk_max_bytes; no more disk inserts (said once)
};

struct CacheWarning {
  CacheWarningKind kind;
  std::string message;  // what happened, with the paths involved
};

struct CacheOptions {
  std::size_t memory_bytes = 64u << 20;  // memory level budget (keys + vectors + bookkeeping); 0 = off
  std::string directory;                 // LMDB environment folder, created if missing; "" = off
  std::size_t disk_initial_bytes = 16u << 20;  // first map size; doubled when full ...
  std::size_t disk_max_bytes = 1u << 30;       // ... up to this cap (the data file's largest size)
  bool sync = true;             // fsync data on commit (survives power loss); false: survives
                                // process crashes only, much faster commits
  bool throw_on_error = false;  // constructor throws Error(io) instead of disabling the disk level
  // Called (from whichever thread hit the problem) for each warning; must be thread-safe, and must
  // not call this Cache (it may run while the cache holds its locks). Unset: warnings are only
  // visible through status().
  std::function<void(const CacheWarning&)> on_warning;
};

struct CacheStats {
  std::uint64_t memory_hits = 0, disk_hits = 0, misses = 0;
  double hit_rate = 0;                 // (memory_hits + disk_hits) / lookups; 0 with no lookups
  std::uint64_t puts = 0;              // vectors offered to put/put_many
  std::uint64_t memory_entries = 0, memory_bytes = 0, memory_capacity_bytes = 0, evictions = 0;
  bool disk_enabled = false;
  std::uint64_t disk_entries = 0;
  std::uint64_t disk_used_bytes = 0;   // pages in use ((last page + 1) * page size)
  std::uint64_t disk_file_bytes = 0;   // size of data.mdb
  std::uint64_t disk_map_bytes = 0;    // current map size (grows up to disk_max_bytes)
  bool disk_full = false;              // the cap was hit; inserts are skipped
  std::uint64_t disk_puts_skipped = 0; // vectors not written: the store was full or off, or busy (reader table full)
};

struct CacheStatus {
  bool disk_enabled = false;
  std::string disk_problem;             // why the disk level is off ("" when on or not asked for)
  std::vector<std::string> moved_aside; // paths the constructor renamed bad stores to
};

class Cache {
 public:
  // Opens the levels options ask for. Disk trouble is reported through status()/on_warning, not
  // thrown, unless options.throw_on_error (then Error(io) naming the folder and the reason).
  // Throws Error(invalid_argument) if disk_initial_bytes > disk_max_bytes.
  explicit Cache(const CacheOptions& options);
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  // The vector under key, from memory or else disk (then copied into memory), or nullopt.
  std::optional<std::vector<float>> get(const CacheKey& key);
  // The same into out (out.size() must be key.dims, else Error(invalid_argument)); true on a hit.
  bool get(const CacheKey& key, std::span<float> out);
  // Stores vector (key.dims floats, else Error(invalid_argument)) in memory and on disk (one
  // commit). An existing disk entry is left as it is (values are deterministic).
  void put(const CacheKey& key, std::span<const float> vector);

  // Batch lookup: every key must have the same dims d; out has keys.size() * d floats; row i is
  // written and found[i] = 1 on a hit, found[i] = 0 (row untouched) on a miss. One LMDB read
  // transaction for all memory misses. Returns the number of hits.
  std::size_t get_many(std::span<const CacheKey> keys, std::span<float> out, std::span<std::uint8_t> found);
  // Batch insert: keys.size() rows of d floats (same dims rule); one LMDB write transaction.
  void put_many(std::span<const CacheKey> keys, std::span<const float> vectors);

  CacheStats stats() const;     // disk figures read from LMDB (one read transaction)
  CacheStatus status() const;
  void clear_memory();          // drops the memory level (disk stays)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace leanembed
