// Several processes on one store: sharing, concurrent writers with map growth, and writers killed
// with SIGKILL at random points (every batch whose commit returned must survive).
#include <gtest/gtest.h>
#include <lmdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <thread>

#include "cache_test_util.h"

namespace leanembed {
namespace {

CacheOptions options_for(const std::string& dir, bool sync = false) {
  CacheOptions o;
  o.memory_bytes = 0;
  o.directory = dir;
  o.sync = sync;
  o.disk_initial_bytes = 256 << 10;  // small, so that writers grow the map under each other
  o.disk_max_bytes = 256u << 20;
  return o;
}

// Runs fn in a child process; the child exits with fn's return value and never returns here.
template <typename Fn>
pid_t spawn(Fn fn) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int code = 1;
    try {
      code = fn();
    } catch (...) {
      code = 3;
    }
    ::_exit(code);
  }
  return pid;
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void put_ids(Cache& cache, const CacheKeyMaker& keys, std::uint64_t first, int count) {
  const std::int64_t d = keys.scope().dims;
  std::vector<CacheKey> ks;
  std::vector<float> rows;
  for (int j = 0; j < count; ++j) {
    ks.push_back(keys.key(test::text_for(first + j)));
    auto v = test::vector_for(first + j, d);
    rows.insert(rows.end(), v.begin(), v.end());
  }
  cache.put_many(ks, rows);
}

bool has_id(Cache& cache, const CacheKeyMaker& keys, std::uint64_t id) {
  auto v = cache.get(keys.key(test::text_for(id)));
  return v && *v == test::vector_for(id, keys.scope().dims);
}

TEST(CacheProcesses, WritesOfOneProcessAreSeenByAnotherOpenOne) {
  const std::string dir = test::scratch_dir("share");
  CacheKeyMaker keys(test::test_scope(64));
  Cache parent(options_for(dir));
  put_ids(parent, keys, 0, 10);
  // The child sees the parent's entries and adds its own, enough to grow the map.
  pid_t child = spawn([&] {
    Cache cache(options_for(dir));
    for (std::uint64_t id = 0; id < 10; ++id) {
      if (!has_id(cache, keys, id)) return 10;
    }
    for (int b = 0; b < 40; ++b) put_ids(cache, keys, 1000 + b * 50, 50);
    return cache.status().disk_enabled ? 0 : 11;
  });
  ASSERT_EQ(wait_exit_code(child), 0);
  // The parent's open environment still has its small map; it adopts the grown one.
  for (std::uint64_t id = 1000; id < 3000; ++id) ASSERT_TRUE(has_id(parent, keys, id)) << id;
  EXPECT_TRUE(parent.status().disk_enabled);
  EXPECT_GT(parent.stats().disk_map_bytes, 256u << 10);
  put_ids(parent, keys, 5000, 10);  // and can write after adopting it
  EXPECT_TRUE(has_id(parent, keys, 5009));
}

TEST(CacheProcesses, ConcurrentWritersAllLand) {
  const std::string dir = test::scratch_dir("writers");
  CacheKeyMaker keys(test::test_scope(128));
  const int writers = 4, batches = 40, per_batch = 25;
  std::vector<pid_t> pids;
  for (int w = 0; w < writers; ++w) {
    pids.push_back(spawn([&, w] {
      Cache cache(options_for(dir, w % 2 == 0));
      for (int b = 0; b < batches; ++b) put_ids(cache, keys, (w * batches + b) * per_batch, per_batch);
      return cache.status().disk_enabled ? 0 : 12;
    }));
  }
  for (pid_t pid : pids) EXPECT_EQ(wait_exit_code(pid), 0);
  Cache cache(options_for(dir));
  EXPECT_EQ(cache.stats().disk_entries, static_cast<std::uint64_t>(writers * batches * per_batch));
  for (std::uint64_t id = 0; id < static_cast<std::uint64_t>(writers * batches * per_batch); ++id) {
    ASSERT_TRUE(has_id(cache, keys, id)) << id;
  }
}

TEST(CacheProcesses, ReaderSlotsOfKilledProcessesAreCleared) {
  const std::string dir = test::scratch_dir("stalereaders");
  CacheKeyMaker keys(test::test_scope(8));
  { Cache cache(options_for(dir)); put_ids(cache, keys, 0, 1); }
  // A holder keeps the environment in use, so that LMDB does not reset its reader table when
  // the next process opens it; only mdb_reader_check can free the dead readers' slots then.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t holder = spawn([&] {
    Cache cache(options_for(dir));
    char c = 1;
    if (::write(ready[1], &c, 1) != 1) return 30;
    ::pause();
    return 0;
  });
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  ::close(ready[1]);
  // More dead readers than LMDB's default table of 126 slots: each dies holding a read transaction.
  int dead = 0;
  for (int i = 0; i < 130; ++i) {
    pid_t pid = spawn([&] {
      MDB_env* env = nullptr;
      if (mdb_env_create(&env) != 0) return 31;
      if (mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0644) != 0) return 32;
      MDB_txn* txn = nullptr;
      if (mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) != 0) return 33;  // READERS_FULL if not cleared
      ::kill(::getpid(), SIGKILL);
      return 34;
    });
    int code = wait_exit_code(pid);
    dead += code == 128 + SIGKILL;
    ASSERT_TRUE(code == 128 + SIGKILL || code == 33) << "reader " << i << " exit " << code;
  }
  EXPECT_GE(dead, 120);
  Cache cache(options_for(dir));
  EXPECT_TRUE(cache.status().disk_enabled);
  EXPECT_TRUE(has_id(cache, keys, 0));  // a read transaction gets a slot
  ::kill(holder, SIGKILL);
  wait_exit_code(holder);
}

// A record a writer sends after a commit returned: which ids are now durable.
struct Committed {
  std::uint32_t first;
  std::uint32_t count;
};

TEST(CacheProcesses, SigkilledWritersNeverLoseCommittedBatchesOrBreakTheStore) {
  const std::string dir = test::scratch_dir("sigkill");
  const std::int64_t d = 96;
  CacheKeyMaker keys(test::test_scope(d));
  std::mt19937 rng(12345);
  const int runs = 60, writers = 2, per_batch = 16;
  std::uint64_t verified = 0;
  int runs_with_commits = 0, killed_mid_open = 0;
  auto start = std::chrono::steady_clock::now();
  for (int run = 0; run < runs; ++run) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    std::vector<pid_t> pids;
    for (int w = 0; w < writers; ++w) {
      // Each writer gets its own id range: run * 10^6 + w * 10^5 + batch * per_batch.
      const std::uint64_t base = static_cast<std::uint64_t>(run) * 1000000 + w * 100000;
      const bool sync = (run + w) % 3 == 0;
      pids.push_back(spawn([&, base, sync] {
        ::close(fds[0]);
        Cache cache(options_for(dir, sync));
        if (!cache.status().disk_enabled) return 20;
        for (std::uint32_t b = 0; b < 5000; ++b) {
          std::uint64_t first = base + b * per_batch;
          put_ids(cache, keys, first, per_batch);
          if (!cache.status().disk_enabled) return 21;
          // Reported only after put_many returned, i.e. after the commit.
          Committed c{static_cast<std::uint32_t>(first), per_batch};
          if (::write(fds[1], &c, sizeof c) != sizeof c) return 22;
        }
        return 0;
      }));
    }
    ::close(fds[1]);
    // Most runs kill after a writer has reported its first commit (then a random 0-20 ms more), so
    // the kills land mid-writing however fast the machine is; every fifth run kills at a random
    // moment from the start, which may land while the store is being opened.
    std::vector<Committed> committed;
    const bool after_progress = run % 5 != 0;
    if (after_progress) {
      pollfd p{fds[0], POLLIN, 0};
      // Only a guard against a writer that hangs: a minute is not a speed expectation.
      if (::poll(&p, 1, 60000) == 1 && (p.revents & POLLIN)) {
        Committed first;
        if (::read(fds[0], &first, sizeof first) == sizeof first) committed.push_back(first);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 40000));
    }
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    for (pid_t pid : pids) {
      int code = wait_exit_code(pid);
      EXPECT_TRUE(code == 128 + SIGKILL || code == 0) << "run " << run << " writer exit " << code;
    }
    if (after_progress) {
      EXPECT_FALSE(committed.empty()) << "run " << run << ": no writer reported a commit";
    }
    Committed c;
    while (::read(fds[0], &c, sizeof c) == sizeof c) committed.push_back(c);
    ::close(fds[0]);
    if (committed.empty()) ++killed_mid_open;
    else ++runs_with_commits;

    std::vector<CacheWarning> warnings;
    CacheOptions o = options_for(dir);
    o.on_warning = [&](const CacheWarning& w) { warnings.push_back(w); };
    Cache cache(o);
    ASSERT_TRUE(cache.status().disk_enabled) << "run " << run << ": " << cache.status().disk_problem;
    ASSERT_TRUE(cache.status().moved_aside.empty()) << "run " << run << " found the store broken";
    ASSERT_TRUE(warnings.empty()) << "run " << run << ": " << warnings[0].message;
    for (const Committed& k : committed) {
      for (std::uint32_t j = 0; j < k.count; ++j) {
        ASSERT_TRUE(has_id(cache, keys, k.first + j)) << "run " << run << " lost id " << k.first + j;
        ++verified;
      }
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ figure ] SIGKILL: %d runs x %d writers in %.1f s; %d runs killed before any commit; "
              "%llu committed entries verified\n",
              runs, writers, seconds, killed_mid_open, static_cast<unsigned long long>(verified));
  EXPECT_GE(runs_with_commits, runs - runs / 5);  // every run that waited for progress killed mid-writing
}

}  // namespace
}  // namespace leanembed
