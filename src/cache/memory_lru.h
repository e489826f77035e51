// The memory level: an LRU map from CacheKey to a float vector, bounded in bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>

#include "leanembed/cache.h"

namespace leanembed::cache {

// Bytes counted per entry are what the heap really holds for it on glibc x86-64: the list node
// (key + vector pointer + links), the hash-map node, the vector's own block (each rounded up to
// malloc's 16-byte chunks with its 8-byte header), plus the bucket array counted as a whole.
// bytes() never exceeds capacity_bytes(); an entry that cannot fit even alone is not stored.
//
// Threads: all members may be called concurrently (one mutex; get copies the vector out).
class MemoryLru {
 public:
  explicit MemoryLru(std::size_t capacity_bytes);

  // Copies the vector under key to out (out.size() == key.dims) and marks it most recent.
  bool get(const CacheKey& key, std::span<float> out);
  // Inserts or refreshes key (vector.size() == key.dims), evicting least recent entries until the
  // total fits. An existing entry is marked most recent and left unchanged.
  void put(const CacheKey& key, std::span<const float> vector);
  void clear();

  std::size_t entries() const;
  std::size_t bytes() const;
  std::size_t capacity_bytes() const { return capacity_; }
  std::uint64_t evictions() const;

  // Heap bytes one entry of `dims` floats costs, excluding its share of the bucket array.
  static std::size_t entry_bytes(std::int64_t dims);

 private:
  struct Entry {
    CacheKey key;
    std::unique_ptr<float[]> values;  // key.dims floats
  };
  using List = std::list<Entry>;
  struct KeyHash {
    std::size_t operator()(const CacheKey* key) const noexcept;
  };
  struct KeyEqual {
    bool operator()(const CacheKey* a, const CacheKey* b) const noexcept { return *a == *b; }
  };

  std::size_t total_bytes_locked() const;
  void evict_one_locked();

  const std::size_t capacity_;
  mutable std::mutex mutex_;
  List lru_;  // front = most recently used
  std::unordered_map<const CacheKey*, List::iterator, KeyHash, KeyEqual> index_;  // keys live in lru_ nodes
  std::size_t entry_bytes_ = 0;  // sum of entry_bytes() over entries
  std::uint64_t evictions_ = 0;
};

}  // namespace leanembed::cache
