#include "cache/memory_lru.h"

#include <algorithm>
#include <cstring>

namespace leanembed::cache {
namespace {

// glibc malloc on 64-bit: a block holds the request plus an 8-byte header, rounded up to 16,
// at least 32 bytes.
constexpr std::size_t heap_block_bytes(std::size_t request) {
  return std::max<std::size_t>(32, (request + 8 + 15) & ~std::size_t{15});
}

// libstdc++ node layouts: a list node is two links + the value; a hash node with a cached hash
// is a next link + the value + the hash.
template <typename Value>
constexpr std::size_t list_node_bytes() { return 2 * sizeof(void*) + sizeof(Value); }
template <typename Value>
constexpr std::size_t hash_node_bytes() { return sizeof(void*) + sizeof(Value) + sizeof(std::size_t); }

}  // namespace

std::size_t MemoryLru::KeyHash::operator()(const CacheKey* key) const noexcept {
  // The text digest's first word mixed with the scope digest's: already uniformly random.
  std::uint64_t a, b;
  std::memcpy(&a, key->bytes.data(), 8);
  std::memcpy(&b, key->bytes.data() + 32, 8);
  return static_cast<std::size_t>(a ^ b);
}

MemoryLru::MemoryLru(std::size_t capacity_bytes) : capacity_(capacity_bytes) {}

std::size_t MemoryLru::entry_bytes(std::int64_t dims) {
  using IndexValue = std::pair<const CacheKey* const, List::iterator>;
  return heap_block_bytes(list_node_bytes<Entry>()) + heap_block_bytes(hash_node_bytes<IndexValue>()) +
         heap_block_bytes(static_cast<std::size_t>(dims) * sizeof(float));
}

std::size_t MemoryLru::total_bytes_locked() const {
  // The bucket array (one pointer per bucket, plus its block header) is allocated once there is
  // more than the single built-in bucket.
  std::size_t buckets = index_.bucket_count() > 1 ? heap_block_bytes(index_.bucket_count() * sizeof(void*)) : 0;
  return entry_bytes_ + buckets;
}

bool MemoryLru::get(const CacheKey& key, std::span<float> out) {
  std::lock_guard lock(mutex_);
  auto it = index_.find(&key);
  if (it == index_.end()) return false;
  lru_.splice(lru_.begin(), lru_, it->second);
  std::memcpy(out.data(), it->second->values.get(), static_cast<std::size_t>(key.dims) * sizeof(float));
  return true;
}

void MemoryLru::evict_one_locked() {
  Entry& victim = lru_.back();
  index_.erase(&victim.key);
  entry_bytes_ -= entry_bytes(victim.key.dims);
  lru_.pop_back();
  ++evictions_;
}

void MemoryLru::put(const CacheKey& key, std::span<const float> vector) {
  const std::size_t cost = entry_bytes(key.dims);
  std::lock_guard lock(mutex_);
  if (auto it = index_.find(&key); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  if (cost > capacity_) return;
  // Allocate first so that a failed allocation leaves the map as it was.
  auto values = std::make_unique<float[]>(vector.size());
  std::memcpy(values.get(), vector.data(), vector.size() * sizeof(float));
  lru_.push_front(Entry{key, std::move(values)});
  try {
    index_.emplace(&lru_.front().key, lru_.begin());
  } catch (...) {
    lru_.pop_front();
    throw;
  }
  entry_bytes_ += cost;
  // Evict from the cold end; the new entry (front) goes last, if even it alone does not fit
  // beside the bucket array.
  while (!lru_.empty() && total_bytes_locked() > capacity_) evict_one_locked();
}

void MemoryLru::clear() {
  std::lock_guard lock(mutex_);
  index_.clear();
  lru_.clear();
  entry_bytes_ = 0;
}

std::size_t MemoryLru::entries() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

std::size_t MemoryLru::bytes() const {
  std::lock_guard lock(mutex_);
  return total_bytes_locked();
}

std::uint64_t MemoryLru::evictions() const {
  std::lock_guard lock(mutex_);
  return evictions_;
}

}  // namespace leanembed::cache
