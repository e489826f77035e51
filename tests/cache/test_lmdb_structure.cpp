// The structure check a store passes before LMDB may write to it (src/cache/lmdb_structure.h), run
// on copies of real stores in memory: sound stores of every shape pass; each kind of damage LMDB
// would trust when writing is found and named.
#include "cache/lmdb_structure.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cache_test_util.h"

namespace leanembed {
namespace {

using cache::lmdb_structure::Verdict;
constexpr std::size_t kPage = 4096;

struct Outcome {
  Verdict verdict;
  std::string why;
};

// The newest meta page's transaction: the snapshot LMDB opens the file at.
std::uint64_t newest_txnid(const std::string& file) {
  std::uint64_t a = 0, b = 0;
  std::memcpy(&a, file.data() + 144, 8);
  std::memcpy(&b, file.data() + kPage + 144, 8);
  return std::max(a, b);
}

// `pages`: the pages the caller believes the file holds (its size when it was measured; a file can
// shrink after that), by default its size now.
Outcome check(const std::string& file, std::uint64_t txnid, const std::atomic<bool>* stop = nullptr, std::uint64_t pages = 0) {
  const std::string path = test::scratch_dir("structure-check") + "/data.mdb";
  std::ofstream(path, std::ios::binary) << file;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  if (pages == 0) pages = file.size() / kPage;
  std::vector<std::uint64_t> seen((pages + 63) / 64);
  std::vector<unsigned char> buffers(cache::lmdb_structure::kBufferPages * kPage);
  char why[320] = "";
  cache::lmdb_structure::Input in{cache::lmdb_structure::Extent::whole_file, fd, kPage, pages, txnid, seen.data(), buffers.data(), why, sizeof why, stop};
  const Verdict v = cache::lmdb_structure::check(in);
  ::close(fd);
  return {v, why};
}
Outcome check(const std::string& file) { return check(file, newest_txnid(file)); }

// A store of n vectors of each dims, written `batch` at a time (a commit per batch).
std::string store_of(int n, std::initializer_list<std::int64_t> dims_list, const std::string& name, int batch = 1) {
  const std::string dir = test::scratch_dir("structure-" + name);
  {
    CacheOptions o;
    o.memory_bytes = 0;
    o.directory = dir;
    o.sync = false;
    Cache cache(o);
    for (std::int64_t dims : dims_list) {
      CacheKeyMaker keys(test::test_scope(dims));
      for (int first = 0; first < n; first += batch) {
        std::vector<CacheKey> batch_keys;
        std::vector<float> vectors;
        for (int i = first; i < std::min(n, first + batch); ++i) {
          batch_keys.push_back(keys.key(test::text_for(i)));
          const std::vector<float> v = test::vector_for(i, dims);
          vectors.insert(vectors.end(), v.begin(), v.end());
        }
        cache.put_many(batch_keys, vectors);
      }
    }
  }
  return test::read_file(dir + "/data.mdb");
}

std::uint16_t u16(const std::string& f, std::size_t at) {
  std::uint16_t v = 0;
  std::memcpy(&v, f.data() + at, 2);
  return v;
}
void put16(std::string& f, std::size_t at, std::uint16_t v) { std::memcpy(f.data() + at, &v, 2); }

// Pages of the given flags (1 branch, 2 leaf) whose first node's key has `key_size` bytes (72: a
// 'vectors' page), among the pages the current snapshot reaches (found by damaging each candidate
// and asking the check: a page it does not reach does not change the verdict).
std::vector<std::size_t> live_pages(const std::string& f, std::uint16_t flags, int key_size) {
  std::vector<std::size_t> found;
  for (std::size_t p = 2; p < f.size() / kPage; ++p) {
    const std::size_t at = p * kPage;
    if (u16(f, at + 10) != flags || u16(f, at + 12) < 16 + 2 * 2) continue;
    const std::size_t node = at + u16(f, at + 16 + (flags == 1 ? 2 : 0));
    if (u16(f, node + 6) != key_size) continue;
    std::string damaged = f;
    damaged[at] ^= 1;  // its page number
    if (check(damaged).verdict == Verdict::damaged) found.push_back(p);
  }
  return found;
}

TEST(LmdbStructure, SoundStoresOfEveryShapePass) {
  // Empty (just made), one record, many (branch levels), records on overflow pages, many commits
  // (free pages reused: a free list).
  for (const auto& [n, name] : {std::pair{0, "empty"}, {1, "one"}, {1500, "many"}}) {
    const std::string f = store_of(n, {384, 1024}, name);
    const Outcome o = check(f);
    EXPECT_EQ(o.verdict, Verdict::sound) << name << ": " << o.why;
  }
  // Large batches: free-list records long enough for overflow pages, one of them the file's last
  // page (bench/cache_open_bench's store, on which a read past the record's end once failed).
  const std::string f = store_of(10240, {384}, "batches", 256);
  const Outcome o = check(f);
  EXPECT_EQ(o.verdict, Verdict::sound) << o.why;
}

TEST(LmdbStructure, DamageLmdbWouldTrustWhenWritingIsFound) {
  const std::string pristine = store_of(1500, {384, 1024}, "damage");
  ASSERT_EQ(check(pristine).verdict, Verdict::sound);
  const std::vector<std::size_t> leaves = live_pages(pristine, 2, 72), branches = live_pages(pristine, 1, 72);
  ASSERT_GE(leaves.size(), 10u);
  ASSERT_GE(branches.size(), 1u);
  const std::size_t leaf = leaves[leaves.size() / 2] * kPage, branch = branches[0] * kPage;
  const auto expect_damaged = [&](const std::string& f, const std::string& what, const char* case_name) {
    const Outcome o = check(f);
    EXPECT_EQ(o.verdict, Verdict::damaged) << case_name;
    EXPECT_NE(o.why.find(what), std::string::npos) << case_name << ": " << o.why;
    EXPECT_NE(o.why.find("'vectors'"), std::string::npos) << case_name << ": " << o.why;
  };
  {  // a leaf whose header names another page (the page LMDB copies on a write)
    std::string f = pristine;
    f[leaf] ^= 0x40;
    expect_damaged(f, "its header says page", "page number");
  }
  {  // bounds: upper below lower
    std::string f = pristine;
    put16(f, leaf + 14, u16(f, leaf + 12) - 2);
    expect_damaged(f, "bounds", "bounds");
  }
  {  // a node offset whose node header would run past the page's end
    std::string f = pristine;
    put16(f, leaf + 16, kPage - 4);
    expect_damaged(f, "outside", "node offset");
  }
  {  // a node at an odd offset (LMDB only ever places them at even ones)
    std::string f = pristine;
    put16(f, leaf + 16, u16(f, leaf + 16) + 1);
    expect_damaged(f, "odd offset", "odd node offset");
  }
  {  // two keys out of order (their offsets swapped)
    std::string f = pristine;
    const std::uint16_t a = u16(f, leaf + 16), b = u16(f, leaf + 18);
    put16(f, leaf + 16, b);
    put16(f, leaf + 18, a);
    expect_damaged(f, "is not above", "key order");
  }
  {  // a key longer than the page holds
    std::string f = pristine;
    put16(f, leaf + u16(f, leaf + 16) + 6, 5000);
    expect_damaged(f, "runs past the page", "key size");
  }
  {  // a branch's child outside the file
    std::string f = pristine;
    const std::size_t node = branch + u16(f, branch + 18);
    put16(f, node, 0xfff0);
    put16(f, node + 2, 0x7f);
    expect_damaged(f, "outside the file", "child page");
  }
  {  // two of a branch's children the same page
    std::string f = pristine;
    const std::size_t first = branch + u16(f, branch + 16), second = branch + u16(f, branch + 18);
    std::memcpy(f.data() + second, f.data() + first, 6);  // the child's page number: mn_lo, mn_hi, mn_flags
    expect_damaged(f, "reached twice", "shared child");
  }
  {  // the tree records one level more than its leaves are at (md_depth in the main tree's record
     // of 'vectors': the 48 bytes after the name; every copy, old pages included)
    std::string f = pristine;
    int copies = 0;
    for (std::size_t at = f.find("vectors"); at != std::string::npos; at = f.find("vectors", at + 1), ++copies)
      put16(f, at + 7 + 6, u16(f, at + 7 + 6) + 1);
    ASSERT_GT(copies, 0);
    expect_damaged(f, "a leaf at level", "depth");
  }
  {  // the tree records one entry more than it holds (md_entries: 32 bytes into the record)
    std::string f = pristine;
    for (std::size_t at = f.find("vectors"); at != std::string::npos; at = f.find("vectors", at + 1))
      put16(f, at + 7 + 32, u16(f, at + 7 + 32) + 1);
    expect_damaged(f, "it records", "entry count");
  }
}

// 1024 floats do not fit a 4 KiB page: each vector is on overflow pages, which a write copies
// (mdb_page_touch) or frees by the count in their header.
TEST(LmdbStructure, DamagedOverflowPagesAreFound) {
  const std::string pristine = store_of(60, {1024}, "overflow");
  ASSERT_EQ(check(pristine).verdict, Verdict::sound);
  int overflow_pages = 0, found = 0;
  for (std::size_t p = 2; p < pristine.size() / kPage; ++p) {
    const std::size_t at = p * kPage;
    if (u16(pristine, at + 10) != 4) continue;  // P_OVERFLOW
    ++overflow_pages;
    for (const std::size_t field : {std::size_t{0}, std::size_t{12}}) {  // its page number; its page count (mp_pages)
      std::string f = pristine;
      f[at + field] ^= 0x10;
      const Outcome o = check(f);
      if (o.verdict == Verdict::sound) continue;  // a page of an older snapshot, which no tree reaches
      ++found;
      EXPECT_EQ(o.verdict, Verdict::damaged) << "page " << p;
      // named as a bad overflow page, or (a count grown past its run) as claiming pages another
      // value holds
      const bool named = o.why.find("overflow page " + std::to_string(p)) != std::string::npos || o.why.find("reached twice") != std::string::npos;
      EXPECT_TRUE(named) << "page " << p << ": " << o.why;
    }
  }
  EXPECT_GE(overflow_pages, 60);
  EXPECT_GE(found, 2 * 50) << "of " << overflow_pages << " overflow pages";
}

// The fuzzer's input behind "mp->mp_pgno != pgno" in mdb_page_touch: a main-tree page whose header
// names page 7, the page LMDB's free list then handed out for its copy.
TEST(LmdbStructure, PageNamingAnotherPageIsFound) {
  const std::string f = test::read_file(test::source_dir() + "/fuzz/corpus/fuzz_cache_store/regression_put_touch_assert.mdb");
  const Outcome o = check(f);
  EXPECT_EQ(o.verdict, Verdict::damaged);
  EXPECT_EQ(o.why, "the main tree, page 5: its header says page 7");
}

// A free-list record naming a page a tree uses: LMDB would hand a live page out for new data.
TEST(LmdbStructure, FreeListNamingALivePageIsFound) {
  std::string f = store_of(40, {384}, "free-live");  // 40 commits: a free list
  ASSERT_EQ(check(f).verdict, Verdict::sound);
  // The free tree's root (the newest meta's FREE_DBI md_root) is a leaf of records: count, pages.
  const std::size_t meta = (newest_txnid(f) & 1) * kPage;
  std::uint64_t root = 0;
  std::memcpy(&root, f.data() + meta + 40 + 40, 8);
  ASSERT_NE(root, ~std::uint64_t{0});
  const std::size_t leaf = root * kPage;
  ASSERT_EQ(u16(f, leaf + 10), 2) << "the free tree of this store is one leaf";
  const std::size_t node = leaf + u16(f, leaf + 16);
  const std::size_t data = node + 8 + u16(f, node + 6);
  std::uint64_t count = 0;
  std::memcpy(&count, f.data() + data, 8);
  ASSERT_GE(count, 1u);
  std::memcpy(f.data() + data + 8, &root, 8);  // the free list now names the free tree's own root
  const Outcome o = check(f);
  EXPECT_EQ(o.verdict, Verdict::damaged);
  EXPECT_NE(o.why.find("which is in use or named twice"), std::string::npos) << o.why;
}

TEST(LmdbStructure, AFileEndingBeforeAPageItNamesIsDamage) {
  const std::string f = store_of(200, {384}, "short");
  const Outcome o = check(f.substr(0, f.size() - 3 * kPage) + std::string(3 * kPage - 100, '\0'));
  EXPECT_EQ(o.verdict, Verdict::damaged);
  EXPECT_FALSE(o.why.empty());
}

// The file shrank after its size was read (another process truncated or replaced it): the pread
// that finds its end is damage, not a read of whatever follows.
TEST(LmdbStructure, AFileShorterThanMeasuredIsDamage) {
  const std::string f = store_of(200, {384}, "shrunk");
  const std::uint64_t pages = f.size() / kPage;
  const Outcome o = check(f.substr(0, f.size() - 2 * kPage), newest_txnid(f), nullptr, pages);
  EXPECT_EQ(o.verdict, Verdict::damaged);
  EXPECT_NE(o.why.find("the file ends"), std::string::npos) << o.why;
}

TEST(LmdbStructure, AnOverwrittenMetaPageAsksForANewSnapshot) {
  const std::string f = store_of(3, {8}, "meta");
  EXPECT_EQ(check(f, newest_txnid(f) + 2).verdict, Verdict::snapshot_gone);
}

TEST(LmdbStructure, AStopRequestEndsTheCheck) {
  const std::string f = store_of(1500, {384}, "stop");
  std::atomic<bool> stop{true};
  EXPECT_EQ(check(f, newest_txnid(f), &stop).verdict, Verdict::stopped);
  stop = false;
  EXPECT_EQ(check(f, newest_txnid(f), &stop).verdict, Verdict::sound);
}

}  // namespace
}  // namespace leanembed
