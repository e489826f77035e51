// The two-level Cache facade: memory LRU in front of the LMDB store.
#include <atomic>
#include <mutex>
#include <new>

#include "cache/lmdb_store.h"
#include "cache/memory_lru.h"
#include "leanembed/cache.h"
#include "leanembed/error.h"

namespace leanembed {

struct Cache::Impl {
  CacheOptions options;
  std::unique_ptr<cache::MemoryLru> memory;  // null when memory_bytes == 0
  std::unique_ptr<cache::LmdbStore> store;   // null when no directory or it failed to open
  std::atomic<bool> disk_enabled{false};     // false also after a store failure (store kept alive
                                             // until destruction: other threads may be inside it)
  mutable std::mutex status_mutex;
  CacheStatus status;
  std::atomic<std::uint64_t> memory_hits{0}, disk_hits{0}, misses{0}, puts{0}, disk_puts_skipped{0};

  void warn(CacheWarningKind kind, const std::string& message) {
    if (!options.on_warning) return;
    try {
      options.on_warning(CacheWarning{kind, message});
    } catch (...) {
      // A throwing callback must not reach the embedding path.
    }
  }

  void disable_disk(const std::string& why) {
    if (!disk_enabled.exchange(false)) return;
    {
      std::lock_guard lock(status_mutex);
      status.disk_enabled = false;
      status.disk_problem = why;
    }
    warn(CacheWarningKind::store_disabled, why + "; the cache goes on in memory only");
  }

  // Disk lookups for keys[i] → dst[i]; failures turn the disk level off (a full reader table is
  // just a miss). Returns hits; found[i] set for each.
  std::size_t disk_get(std::span<const CacheKey* const> keys, std::span<float* const> dst, std::span<std::uint8_t> found) {
    if (keys.empty() || !disk_enabled.load()) return 0;
    try {
      return store->get_many(keys, dst, found);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::runtime) disable_disk(e.what());
    } catch (const std::exception& e) {
      disable_disk(std::string("cache: ") + e.what());
    }
    std::fill(found.begin(), found.end(), 0);
    return 0;
  }

  void disk_put(std::span<const CacheKey* const> keys, std::span<const float* const> vectors) {
    if (keys.empty()) return;
    if (!disk_enabled.load() || store->full()) {
      if (store) disk_puts_skipped += keys.size();
      return;
    }
    try {
      store->put_many(keys, vectors);
      if (store->full()) disk_puts_skipped += keys.size();  // at the cap the whole batch is dropped
    } catch (const Error& e) {
      if (e.code() == ErrorCode::runtime) disk_puts_skipped += keys.size();  // transient: this batch only
      else disable_disk(e.what());
    } catch (const std::exception& e) {
      disable_disk(std::string("cache: ") + e.what());
    }
  }

  void memory_put(const CacheKey& key, std::span<const float> vector) {
    if (!memory) return;
    try {
      memory->put(key, vector);
    } catch (const std::bad_alloc&) {
      // Not caching is always correct.
    }
  }
};

namespace {

void check_row(const CacheKey& key, std::size_t n, const char* what) {
  if (key.dims <= 0 || static_cast<std::size_t>(key.dims) != n) {
    throw Error(ErrorCode::invalid_argument, std::string("cache ") + what + ": the key's dims is " +
                                                 std::to_string(key.dims) + " but the vector has " +
                                                 std::to_string(n) + " floats");
  }
}

// All keys share dims d and the buffer holds keys.size() * d floats; returns d (0 if no keys).
std::size_t check_batch(std::span<const CacheKey> keys, std::size_t floats, const char* what) {
  if (keys.empty()) return 0;
  const std::int64_t d = keys[0].dims;
  for (const CacheKey& k : keys) {
    if (k.dims != d || d <= 0) {
      throw Error(ErrorCode::invalid_argument, std::string("cache ") + what +
                                                   ": every key of a batch must have the same dims > 0; found " +
                                                   std::to_string(d) + " and " + std::to_string(k.dims));
    }
  }
  if (floats != keys.size() * static_cast<std::size_t>(d)) {
    throw Error(ErrorCode::invalid_argument, std::string("cache ") + what + ": " + std::to_string(keys.size()) +
                                                 " keys of dims " + std::to_string(d) + " need " +
                                                 std::to_string(keys.size() * d) + " floats, got " +
                                                 std::to_string(floats));
  }
  return static_cast<std::size_t>(d);
}

}  // namespace

Cache::Cache(const CacheOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  if (options.disk_initial_bytes > options.disk_max_bytes) {
    throw Error(ErrorCode::invalid_argument, "cache: disk_initial_bytes (" + std::to_string(options.disk_initial_bytes) +
                                                 ") is larger than disk_max_bytes (" +
                                                 std::to_string(options.disk_max_bytes) + ")");
  }
  if (options.memory_bytes > 0) impl_->memory = std::make_unique<cache::MemoryLru>(options.memory_bytes);
  if (options.directory.empty()) return;
  cache::StoreOptions store_options;
  store_options.directory = options.directory;
  store_options.initial_map_bytes = options.disk_initial_bytes;
  store_options.max_map_bytes = options.disk_max_bytes;
  store_options.sync = options.sync;
  Impl* impl = impl_.get();
  try {
    impl_->store = std::make_unique<cache::LmdbStore>(
        store_options, [impl](CacheWarningKind kind, const std::string& message) { impl->warn(kind, message); });
    impl_->disk_enabled = true;
    impl_->status.disk_enabled = true;
    impl_->status.moved_aside = impl_->store->moved_aside();
  } catch (const std::exception& e) {
    if (options.throw_on_error) {
      if (const auto* error = dynamic_cast<const Error*>(&e)) throw *error;
      throw Error(ErrorCode::io, std::string("cache: ") + e.what());
    }
    impl_->store.reset();
    impl_->status.disk_enabled = false;
    impl_->status.disk_problem = e.what();
    impl_->warn(CacheWarningKind::store_disabled, std::string(e.what()) + "; the cache goes on in memory only");
  }
}

Cache::~Cache() = default;

bool Cache::get(const CacheKey& key, std::span<float> out) {
  check_row(key, out.size(), "get");
  if (impl_->memory && impl_->memory->get(key, out)) {
    ++impl_->memory_hits;
    return true;
  }
  const CacheKey* keys[1] = {&key};
  float* dst[1] = {out.data()};
  std::uint8_t found[1] = {0};
  if (impl_->disk_get(keys, dst, found) == 1) {
    ++impl_->disk_hits;
    impl_->memory_put(key, out);
    return true;
  }
  ++impl_->misses;
  return false;
}

std::optional<std::vector<float>> Cache::get(const CacheKey& key) {
  std::vector<float> v(key.dims > 0 ? static_cast<std::size_t>(key.dims) : 0);
  if (!get(key, v)) return std::nullopt;
  return v;
}

void Cache::put(const CacheKey& key, std::span<const float> vector) {
  check_row(key, vector.size(), "put");
  put_many(std::span(&key, 1), vector);
}

std::size_t Cache::get_many(std::span<const CacheKey> keys, std::span<float> out, std::span<std::uint8_t> found) {
  const std::size_t d = check_batch(keys, out.size(), "get_many");
  if (found.size() != keys.size()) {
    throw Error(ErrorCode::invalid_argument, "cache get_many: found has " + std::to_string(found.size()) +
                                                 " slots for " + std::to_string(keys.size()) + " keys");
  }
  std::size_t memory_hits = 0;
  std::vector<const CacheKey*> missing;
  std::vector<float*> missing_dst;
  std::vector<std::size_t> missing_index;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::span<float> row = out.subspan(i * d, d);
    if (impl_->memory && impl_->memory->get(keys[i], row)) {
      found[i] = 1;
      ++memory_hits;
    } else {
      found[i] = 0;
      missing.push_back(&keys[i]);
      missing_dst.push_back(row.data());
      missing_index.push_back(i);
    }
  }
  std::vector<std::uint8_t> disk_found(missing.size(), 0);
  const std::size_t disk_hits = impl_->disk_get(missing, missing_dst, disk_found);
  for (std::size_t j = 0; j < missing.size(); ++j) {
    if (!disk_found[j]) continue;
    found[missing_index[j]] = 1;
    impl_->memory_put(*missing[j], std::span<const float>(missing_dst[j], d));
  }
  impl_->memory_hits += memory_hits;
  impl_->disk_hits += disk_hits;
  impl_->misses += missing.size() - disk_hits;
  return memory_hits + disk_hits;
}

void Cache::put_many(std::span<const CacheKey> keys, std::span<const float> vectors) {
  const std::size_t d = check_batch(keys, vectors.size(), "put_many");
  impl_->puts += keys.size();
  std::vector<const CacheKey*> key_ptrs(keys.size());
  std::vector<const float*> rows(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    impl_->memory_put(keys[i], vectors.subspan(i * d, d));
    key_ptrs[i] = &keys[i];
    rows[i] = vectors.data() + i * d;
  }
  impl_->disk_put(key_ptrs, rows);
}

CacheStats Cache::stats() const {
  CacheStats s;
  s.memory_hits = impl_->memory_hits.load();
  s.disk_hits = impl_->disk_hits.load();
  s.misses = impl_->misses.load();
  const std::uint64_t lookups = s.memory_hits + s.disk_hits + s.misses;
  s.hit_rate = lookups ? static_cast<double>(s.memory_hits + s.disk_hits) / static_cast<double>(lookups) : 0.0;
  s.puts = impl_->puts.load();
  s.disk_puts_skipped = impl_->disk_puts_skipped.load();
  if (impl_->memory) {
    s.memory_entries = impl_->memory->entries();
    s.memory_bytes = impl_->memory->bytes();
    s.memory_capacity_bytes = impl_->memory->capacity_bytes();
    s.evictions = impl_->memory->evictions();
  }
  s.disk_enabled = impl_->disk_enabled.load();
  if (s.disk_enabled) {
    try {
      cache::StoreStats d = impl_->store->stats();
      s.disk_entries = d.entries;
      s.disk_used_bytes = d.used_bytes;
      s.disk_file_bytes = d.file_bytes;
      s.disk_map_bytes = d.map_bytes;
      s.disk_full = d.full;
    } catch (const std::exception& e) {
      impl_->disable_disk(e.what());
      s.disk_enabled = false;
    }
  }
  return s;
}

CacheStatus Cache::status() const {
  std::lock_guard lock(impl_->status_mutex);
  return impl_->status;
}

void Cache::clear_memory() {
  if (impl_->memory) impl_->memory->clear();
}

}  // namespace leanembed
