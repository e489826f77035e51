// What reopening an existing disk cache costs, by store size. Every page of a store is checked
// before LMDB may write to it (src/cache/lmdb_structure.h): on a thread of its own that the open
// starts, and the first put waits for it. Prints, for each size, the store's bytes, the time to fill
// it, and medians of 5 reopenings (page cache warm: the state of a store a process reopens): the
// open itself, and open + one put of a new vector (which waits for the check). Asserts nothing.
//   cache_open_bench [DIR=/tmp/leanembed-cache-open-bench] [MAX_VECTORS=200000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "leanembed/cache.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "/tmp/leanembed-cache-open-bench";
  const long max_vectors = argc > 2 ? std::atol(argv[2]) : 200000;
  constexpr std::int64_t dims = 384;
  std::filesystem::remove_all(dir);
  leanembed::CacheOptions o;
  o.memory_bytes = 0;
  o.directory = dir.string();
  o.sync = false;
  o.disk_max_bytes = std::size_t{4} << 30;
  leanembed::CacheScope scope;
  scope.dtype = "fp32";
  scope.pooling = "mean";
  scope.max_length = 256;
  scope.dims = dims;
  const leanembed::CacheKeyMaker maker(scope);
  std::printf("%10s %12s %10s %14s %20s\n", "vectors", "file bytes", "fill s", "open ms (med5)", "open+put ms (med5)");
  long stored = 0;
  for (long target = 1000; target <= max_vectors; target *= 10) {
    const auto fill_start = std::chrono::steady_clock::now();
    {
      leanembed::Cache cache(o);
      constexpr long batch = 256;
      std::vector<leanembed::CacheKey> keys;
      std::vector<float> vectors(batch * dims);
      for (; stored < target; stored += batch) {
        keys.clear();
        for (long i = stored; i < stored + batch; ++i) keys.push_back(maker.key("sentence number " + std::to_string(i)));
        for (std::size_t j = 0; j < vectors.size(); ++j) vectors[j] = static_cast<float>((stored + j) % 997) * 0.001f;
        cache.put_many(keys, vectors);
      }
    }
    const double fill = seconds_since(fill_start);
    std::vector<double> opens, first_puts;
    std::uint64_t file_bytes = 0;
    const std::vector<float> one(dims, 0.5f);
    for (int round = 0; round < 5; ++round) {
      const auto start = std::chrono::steady_clock::now();
      leanembed::Cache cache(o);
      opens.push_back(seconds_since(start) * 1e3);
      cache.put(maker.key("one more sentence " + std::to_string(stored) + "-" + std::to_string(round)), one);
      first_puts.push_back(seconds_since(start) * 1e3);
      const leanembed::CacheStatus status = cache.status();
      if (!status.disk_enabled || !status.moved_aside.empty() || cache.stats().disk_puts_skipped != 0) {
        std::fprintf(stderr, "cache_open_bench: the store was not reopened as it was: %s\n", status.disk_problem.c_str());
        return 1;
      }
      file_bytes = cache.stats().disk_file_bytes;
    }
    std::sort(opens.begin(), opens.end());
    std::sort(first_puts.begin(), first_puts.end());
    std::printf("%10ld %12llu %10.2f %14.2f %20.2f\n", stored, static_cast<unsigned long long>(file_bytes), fill, opens[2],
                first_puts[2]);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
