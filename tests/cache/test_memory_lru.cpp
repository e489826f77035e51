// The memory level: byte budget, LRU order, honest accounting, concurrent use.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "cache/memory_lru.h"
#include "cache_test_util.h"
#include "leanembed/error.h"

namespace leanembed::cache {
namespace {

TEST(MemoryLru, EntryBytesCountsKeyVectorAndNodes) {
  // At least the key bytes and the floats, plus real per-node overhead.
  EXPECT_GE(MemoryLru::entry_bytes(384), CacheKey::size + 384 * sizeof(float) + 64);
  EXPECT_GT(MemoryLru::entry_bytes(385), MemoryLru::entry_bytes(380));
}

TEST(MemoryLru, EvictsLeastRecentWithinTheByteBudget) {
  const std::int64_t dims = 64;
  CacheKeyMaker keys(test::test_scope(dims));
  const std::size_t per_entry = MemoryLru::entry_bytes(dims);
  const std::size_t capacity = 40 * per_entry + 4096;  // room for ~40 entries plus buckets
  MemoryLru lru(capacity);
  for (int i = 0; i < 200; ++i) {
    lru.put(keys.key(test::text_for(i)), test::vector_for(i, dims));
    ASSERT_LE(lru.bytes(), capacity) << "after " << i;
    if (i == 10) {
      // Touch entry 0 so that it stays among the most recent for a while.
      std::vector<float> out(dims);
      ASSERT_TRUE(lru.get(keys.key(test::text_for(0)), out));
    }
  }
  const std::size_t n = lru.entries();
  EXPECT_GE(n, 40u);                    // the bucket array takes less than the 4096 spare bytes
  EXPECT_LE(n, capacity / per_entry);
  EXPECT_EQ(lru.evictions(), 200u - n);
  EXPECT_GE(lru.bytes(), n * per_entry);
  std::vector<float> out(dims);
  // The newest n are present with their values, older ones gone.
  for (int i = 200 - static_cast<int>(n); i < 200; ++i) {
    ASSERT_TRUE(lru.get(keys.key(test::text_for(i)), out)) << i;
    EXPECT_EQ(out, test::vector_for(i, dims));
  }
  EXPECT_FALSE(lru.get(keys.key(test::text_for(1)), out));
  EXPECT_FALSE(lru.get(keys.key(test::text_for(200 - n - 1)), out));
}

TEST(MemoryLru, RecentlyUsedEntrySurvivesEviction) {
  const std::int64_t dims = 16;
  CacheKeyMaker keys(test::test_scope(dims));
  MemoryLru lru(10 * MemoryLru::entry_bytes(dims) + 2048);
  std::vector<float> out(dims);
  for (int i = 0; i < 8; ++i) lru.put(keys.key(test::text_for(i)), test::vector_for(i, dims));
  for (int i = 8; i < 30; ++i) {
    ASSERT_TRUE(lru.get(keys.key(test::text_for(0)), out)) << "evicted at " << i;
    lru.put(keys.key(test::text_for(i)), test::vector_for(i, dims));
  }
  EXPECT_FALSE(lru.get(keys.key(test::text_for(1)), out));
}

TEST(MemoryLru, EntryLargerThanTheBudgetIsNotStored) {
  CacheKeyMaker keys(test::test_scope(1000));
  MemoryLru lru(1000);
  lru.put(keys.key("x"), std::vector<float>(1000, 1.f));
  EXPECT_EQ(lru.entries(), 0u);
  EXPECT_LE(lru.bytes(), 1000u);
}

TEST(MemoryLru, ConcurrentGetAndPutStayConsistent) {
  const std::int64_t dims = 32;
  CacheKeyMaker keys(test::test_scope(dims));
  const std::size_t capacity = 100 * MemoryLru::entry_bytes(dims);
  MemoryLru lru(capacity);
  std::atomic<int> wrong{0};
  std::atomic<std::uint64_t> hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<float> out(dims);
      for (int i = 0; i < 20000; ++i) {
        int id = static_cast<int>(rng() % 300);
        CacheKey k = keys.key(test::text_for(id));
        if (rng() % 2) {
          lru.put(k, test::vector_for(id, dims));
        } else if (lru.get(k, out)) {
          ++hits;
          if (out != test::vector_for(id, dims)) ++wrong;
        }
        if (lru.bytes() > capacity) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(hits.load(), 0u);
  EXPECT_LE(lru.bytes(), capacity);
}

}  // namespace
}  // namespace leanembed::cache
