// The disk level through the Cache facade: persistence, bad stores moved aside, map growth up to
// the cap, the disabled state, concurrent use, and throughput figures.
#include <gtest/gtest.h>
#include <lmdb.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "cache/lmdb_store.h"
#include "cache_test_util.h"
#include "leanembed/error.h"

namespace leanembed {
namespace {

namespace fs = std::filesystem;

struct WarningLog {
  std::mutex mutex;
  std::vector<CacheWarning> warnings;
  std::function<void(const CacheWarning&)> callback() {
    return [this](const CacheWarning& w) {
      std::lock_guard lock(mutex);
      warnings.push_back(w);
    };
  }
  int count(CacheWarningKind kind) {
    std::lock_guard lock(mutex);
    int n = 0;
    for (auto& w : warnings) n += w.kind == kind;
    return n;
  }
};

CacheOptions disk_options(const std::string& dir, WarningLog* log = nullptr) {
  CacheOptions o;
  o.memory_bytes = 0;  // disk only unless a test says otherwise
  o.directory = dir;
  o.sync = false;
  if (log) o.on_warning = log->callback();
  return o;
}

void put_range(Cache& cache, const CacheKeyMaker& keys, int begin, int end) {
  const std::int64_t d = keys.scope().dims;
  std::vector<CacheKey> ks;
  std::vector<float> rows;
  for (int i = begin; i < end; ++i) {
    ks.push_back(keys.key(test::text_for(i)));
    auto v = test::vector_for(i, d);
    rows.insert(rows.end(), v.begin(), v.end());
  }
  cache.put_many(ks, rows);
}

// Number of ids in [begin, end) found with the right vector.
int count_present(Cache& cache, const CacheKeyMaker& keys, int begin, int end) {
  int n = 0;
  for (int i = begin; i < end; ++i) {
    auto v = cache.get(keys.key(test::text_for(i)));
    if (v && *v == test::vector_for(i, keys.scope().dims)) ++n;
  }
  return n;
}

TEST(CacheDisk, PersistsAcrossReopen) {
  const std::string dir = test::scratch_dir("persist");
  CacheKeyMaker keys(test::test_scope(384));
  {
    Cache cache(disk_options(dir));
    ASSERT_TRUE(cache.status().disk_enabled) << cache.status().disk_problem;
    put_range(cache, keys, 0, 500);
    EXPECT_EQ(cache.stats().disk_entries, 500u);
  }
  WarningLog log;
  Cache cache(disk_options(dir, &log));
  EXPECT_TRUE(cache.status().disk_enabled);
  EXPECT_TRUE(cache.status().moved_aside.empty());
  EXPECT_EQ(count_present(cache, keys, 0, 500), 500);
  EXPECT_EQ(count_present(cache, keys, 500, 520), 0);
  CacheStats s = cache.stats();
  EXPECT_EQ(s.disk_hits, 500u);
  EXPECT_EQ(s.misses, 20u);
  EXPECT_NEAR(s.hit_rate, 500.0 / 520.0, 1e-9);
  EXPECT_EQ(s.disk_entries, 500u);
  EXPECT_GT(s.disk_file_bytes, 500u * 384 * 4);
  EXPECT_TRUE(log.warnings.empty());
}

TEST(CacheDisk, DiskHitIsPromotedToMemory) {
  const std::string dir = test::scratch_dir("promote");
  CacheKeyMaker keys(test::test_scope(16));
  { Cache writer(disk_options(dir)); put_range(writer, keys, 0, 10); }
  CacheOptions o = disk_options(dir);
  o.memory_bytes = 1 << 20;
  Cache cache(o);
  EXPECT_EQ(count_present(cache, keys, 0, 10), 10);
  EXPECT_EQ(count_present(cache, keys, 0, 10), 10);
  CacheStats s = cache.stats();
  EXPECT_EQ(s.disk_hits, 10u);
  EXPECT_EQ(s.memory_hits, 10u);
  EXPECT_EQ(s.memory_entries, 10u);
}

TEST(CacheDisk, GetManyMixesMemoryDiskAndMisses) {
  const std::string dir = test::scratch_dir("getmany");
  const std::int64_t d = 8;
  CacheKeyMaker keys(test::test_scope(d));
  { Cache writer(disk_options(dir)); put_range(writer, keys, 0, 20); }  // 0..19 on disk
  CacheOptions o = disk_options(dir);
  o.memory_bytes = 1 << 20;
  Cache cache(o);
  EXPECT_TRUE(cache.get(keys.key(test::text_for(3))));                 // 3 now in memory too
  std::vector<CacheKey> batch;
  for (int id : {3, 5, 25, 19, 40}) batch.push_back(keys.key(test::text_for(id)));
  std::vector<float> out(batch.size() * d, -1.f);
  std::vector<std::uint8_t> found(batch.size());
  EXPECT_EQ(cache.get_many(batch, out, found), 3u);
  EXPECT_EQ(found, (std::vector<std::uint8_t>{1, 1, 0, 1, 0}));
  const int ids[] = {3, 5, 25, 19, 40};
  for (int i = 0; i < 5; ++i) {
    std::vector<float> row(out.begin() + i * d, out.begin() + (i + 1) * d);
    if (found[i]) {
      EXPECT_EQ(row, test::vector_for(ids[i], d));
    } else {
      EXPECT_EQ(row, std::vector<float>(d, -1.f));  // untouched on a miss
    }
  }
  std::vector<float> wrong(3);
  EXPECT_THROW(cache.get_many(batch, wrong, found), Error);
  EXPECT_THROW(cache.put(keys.key("x"), std::vector<float>(d + 1)), Error);
}

TEST(CacheDisk, WrongLengthValueIsAMiss) {
  // Same key bytes, a different declared dims: the stored value's length does not match.
  const std::string dir = test::scratch_dir("wronglen");
  CacheKeyMaker keys(test::test_scope(8));
  Cache cache(disk_options(dir));
  CacheKey k = keys.key("t");
  cache.put(k, test::vector_for(1, 8));
  CacheKey forged = k;
  forged.dims = 4;
  EXPECT_FALSE(cache.get(forged));
  EXPECT_TRUE(cache.get(k));
}

void expect_moved_aside_and_rebuilt(const std::string& dir, const std::string& reason, const std::string& old_content) {
  WarningLog log;
  CacheKeyMaker keys(test::test_scope(8));
  {
    Cache cache(disk_options(dir, &log));
    CacheStatus status = cache.status();
    ASSERT_TRUE(status.disk_enabled) << status.disk_problem;
    ASSERT_EQ(status.moved_aside.size(), 1u);
    EXPECT_NE(status.moved_aside[0].find("/data.mdb." + reason + "-"), std::string::npos) << status.moved_aside[0];
    EXPECT_EQ(log.count(CacheWarningKind::store_moved_aside), 1);
    ASSERT_TRUE(fs::exists(status.moved_aside[0]));
    if (!old_content.empty()) {
      EXPECT_EQ(test::read_file(status.moved_aside[0]), old_content);
    }
    put_range(cache, keys, 0, 5);
  }
  WarningLog again;
  Cache cache(disk_options(dir, &again));
  EXPECT_TRUE(cache.status().moved_aside.empty());
  EXPECT_TRUE(again.warnings.empty());
  EXPECT_EQ(count_present(cache, keys, 0, 5), 5);
}

TEST(CacheDisk, GarbageDataFileIsMovedAside) {
  const std::string dir = test::scratch_dir("garbage");
  std::string garbage(64 * 1024, '\0');
  std::mt19937 rng(7);
  for (char& c : garbage) c = static_cast<char>(rng());
  { std::ofstream(dir + "/data.mdb", std::ios::binary) << garbage; }
  expect_moved_aside_and_rebuilt(dir, "corrupt", garbage);
}

TEST(CacheDisk, TinyGarbageDataFileIsMovedAside) {
  const std::string dir = test::scratch_dir("tinygarbage");
  { std::ofstream(dir + "/data.mdb", std::ios::binary) << "not a database"; }
  expect_moved_aside_and_rebuilt(dir, "corrupt", "not a database");
}

TEST(CacheDisk, TruncatedStoreIsMovedAside) {
  const std::string dir = test::scratch_dir("truncated");
  {
    Cache cache(disk_options(dir));
    put_range(cache, CacheKeyMaker(test::test_scope(384)), 0, 300);
  }
  const auto size = fs::file_size(dir + "/data.mdb");
  ASSERT_GT(size, 100000u);
  fs::resize_file(dir + "/data.mdb", size / 2);
  expect_moved_aside_and_rebuilt(dir, "corrupt", "");
}

void write_raw_lmdb(const std::string& dir, const char* db_name, const std::string& key, const std::string& value) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 4);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), 0, 0644), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi dbi;
  ASSERT_EQ(mdb_dbi_open(txn, db_name, MDB_CREATE, &dbi), 0);
  MDB_val k{key.size(), const_cast<char*>(key.data())}, v{value.size(), const_cast<char*>(value.data())};
  ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

TEST(CacheDisk, ForeignLmdbIsMovedAside) {
  const std::string dir = test::scratch_dir("foreign");
  write_raw_lmdb(dir, nullptr, "hello", "world");  // someone else's data in the main database
  expect_moved_aside_and_rebuilt(dir, "foreign", "");
}

TEST(CacheDisk, ForeignMetaDatabaseIsMovedAside) {
  const std::string dir = test::scratch_dir("foreignmeta");
  write_raw_lmdb(dir, "meta", "header", "something else entirely");
  expect_moved_aside_and_rebuilt(dir, "foreign", "");
}

TEST(CacheDisk, OtherFormatVersionIsMovedAside) {
  const std::string dir = test::scratch_dir("version");
  { Cache cache(disk_options(dir)); }
  // Rewrite the header with format version 999 (layout: 16-byte magic, u32 LE version, ...).
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 4);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), 0, 0644), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi meta;
  ASSERT_EQ(mdb_dbi_open(txn, "meta", 0, &meta), 0);
  MDB_val k{6, const_cast<char*>("header")}, v{};
  ASSERT_EQ(mdb_get(txn, meta, &k, &v), 0);
  std::string header(static_cast<const char*>(v.mv_data), v.mv_size);
  ASSERT_EQ(header.substr(0, 15), "leanembed-cache");
  const std::uint32_t version = 999;
  std::memcpy(header.data() + 16, &version, 4);
  MDB_val nv{header.size(), header.data()};
  ASSERT_EQ(mdb_put(txn, meta, &k, &nv, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
  expect_moved_aside_and_rebuilt(dir, "version", "");
}

TEST(CacheDisk, UnusableFolderDisablesDiskButMemoryWorks) {
  const std::string dir = test::scratch_dir("unusable");
  const std::string not_a_folder = dir + "/file";
  { std::ofstream(not_a_folder) << "x"; }
  WarningLog log;
  CacheOptions o = disk_options(not_a_folder, &log);
  o.memory_bytes = 1 << 20;
  Cache cache(o);
  EXPECT_FALSE(cache.status().disk_enabled);
  EXPECT_NE(cache.status().disk_problem.find(not_a_folder), std::string::npos) << cache.status().disk_problem;
  EXPECT_EQ(log.count(CacheWarningKind::store_disabled), 1);
  CacheKeyMaker keys(test::test_scope(8));
  put_range(cache, keys, 0, 3);
  EXPECT_EQ(count_present(cache, keys, 0, 3), 3);
  EXPECT_FALSE(cache.stats().disk_enabled);

  o.throw_on_error = true;
  try {
    Cache strict(o);
    FAIL() << "expected Error(io)";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::io);
  }
}

TEST(CacheDisk, MapGrowsUpToTheCapThenStopsInserting) {
  const std::string dir = test::scratch_dir("growth");
  WarningLog log;
  CacheOptions o = disk_options(dir, &log);
  o.disk_initial_bytes = 256 << 10;
  o.disk_max_bytes = 2 << 20;
  const std::int64_t d = 384;  // ~1.6 KB per entry: about 1200 fit in 2 MiB
  CacheKeyMaker keys(test::test_scope(d));
  Cache cache(o);
  ASSERT_EQ(cache.stats().disk_map_bytes, 256u << 10);
  for (int batch = 0; batch < 60; ++batch) put_range(cache, keys, batch * 50, batch * 50 + 50);
  CacheStats s = cache.stats();
  EXPECT_EQ(s.disk_map_bytes, 2u << 20);
  EXPECT_TRUE(s.disk_full);
  EXPECT_TRUE(s.disk_enabled);
  EXPECT_EQ(log.count(CacheWarningKind::store_full), 1);
  EXPECT_GT(s.disk_entries, (256u << 10) / 1600);  // more than the first map could hold
  EXPECT_LT(s.disk_entries, 3000u);
  EXPECT_GT(s.disk_puts_skipped, 0u);
  EXPECT_LE(s.disk_file_bytes, 2u << 20);
  // Whole batches: every stored entry is readable, and they are the first ones written.
  const int stored = static_cast<int>(s.disk_entries);
  EXPECT_EQ(stored % 50, 0);
  EXPECT_EQ(count_present(cache, keys, 0, stored), stored);
  // Reopening a full store works and reads everything.
  Cache reopened(o);
  EXPECT_TRUE(reopened.status().moved_aside.empty());
  EXPECT_EQ(count_present(reopened, keys, 0, stored), stored);
}

TEST(CacheDisk, ConcurrentGetPutThroughBothLevels) {
  const std::string dir = test::scratch_dir("threads");
  const std::int64_t d = 32;
  CacheKeyMaker keys(test::test_scope(d));
  CacheOptions o = disk_options(dir);
  o.memory_bytes = 50 * 400;  // small: most gets go to disk and promote
  o.disk_initial_bytes = 256 << 10;  // and the map grows while threads read
  Cache cache(o);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(100 + t);
      std::vector<float> out(d);
      for (int i = 0; i < 3000; ++i) {
        int id = static_cast<int>(rng() % 2000);
        CacheKey k = keys.key(test::text_for(id));
        switch (rng() % 3) {
          case 0: cache.put(k, test::vector_for(id, d)); break;
          case 1:
            if (cache.get(k, out) && out != test::vector_for(id, d)) ++wrong;
            break;
          default: {
            std::vector<CacheKey> batch;
            for (int j = 0; j < 8; ++j) batch.push_back(keys.key(test::text_for((id + j) % 2000)));
            std::vector<float> rows(8 * d);
            std::vector<std::uint8_t> found(8);
            cache.get_many(batch, rows, found);
            for (int j = 0; j < 8; ++j) {
              if (found[j] && std::vector<float>(rows.begin() + j * d, rows.begin() + (j + 1) * d) !=
                                  test::vector_for((id + j) % 2000, d)) ++wrong;
            }
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  CacheStats s = cache.stats();
  EXPECT_TRUE(s.disk_enabled);
  EXPECT_GT(s.disk_hits, 0u);
  EXPECT_GT(s.evictions, 0u);
  EXPECT_GT(s.disk_map_bytes, 256u << 10);
}

TEST(CacheDisk, ThroughputFigures) {
  const std::string dir = test::scratch_dir("throughput");
  const std::int64_t d = 384;
  const int n = 5000, batch = 64;
  CacheKeyMaker keys(test::test_scope(d));
  std::vector<CacheKey> all;
  for (int i = 0; i < n; ++i) all.push_back(keys.key(test::text_for(i)));
  std::vector<float> rows;
  for (int i = 0; i < n; ++i) {
    auto v = test::vector_for(i, d);
    rows.insert(rows.end(), v.begin(), v.end());
  }
  auto seconds_since = [](auto t0) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  for (bool sync : {false, true}) {
    fs::remove_all(dir);
    CacheOptions o = disk_options(dir);
    o.sync = sync;
    o.memory_bytes = 64 << 20;
    Cache cache(o);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; i += batch) {
      int m = std::min(batch, n - i);
      cache.put_many(std::span(all).subspan(i, m), std::span(rows).subspan(static_cast<std::size_t>(i) * d, m * d));
    }
    double put_s = seconds_since(t0);
    std::vector<float> out(d);
    t0 = std::chrono::steady_clock::now();
    int hits = 0;
    for (int i = 0; i < n; ++i) hits += cache.get(all[i], out);
    double mem_get_s = seconds_since(t0);
    cache.clear_memory();
    t0 = std::chrono::steady_clock::now();
    std::vector<float> outs(static_cast<std::size_t>(batch) * d);
    std::vector<std::uint8_t> found(batch);
    for (int i = 0; i < n; i += batch) {
      int m = std::min(batch, n - i);
      hits += static_cast<int>(cache.get_many(std::span(all).subspan(i, m), std::span(outs).first(m * d),
                                              std::span(found).first(m)));
    }
    double disk_get_s = seconds_since(t0);
    EXPECT_EQ(hits, 2 * n);
    std::printf("[ figure ] dims %lld, %d vectors, sync=%d: put_many(64) %.0f/s, get (memory) %.0f/s, "
                "get_many(64) (disk) %.0f/s; %llu disk bytes\n",
                static_cast<long long>(d), n, sync, n / put_s, n / mem_get_s, n / disk_get_s,
                static_cast<unsigned long long>(cache.stats().disk_used_bytes));
  }
  // Single-key disk gets (one read transaction each).
  CacheOptions o = disk_options(dir);
  Cache cache(o);
  std::vector<float> out(d);
  auto t0 = std::chrono::steady_clock::now();
  int hits = 0;
  for (int i = 0; i < n; ++i) hits += cache.get(all[i], out);
  EXPECT_EQ(hits, n);
  std::printf("[ figure ] get (disk, one transaction each) %.0f/s\n", n / seconds_since(t0));
}

}  // namespace
}  // namespace leanembed
