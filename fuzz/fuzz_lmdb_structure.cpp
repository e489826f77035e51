// libFuzzer target: the check of an LMDB file's structure (src/cache/lmdb_structure.h), the parser
// of LMDB's pages that we own, run on the input as data.mdb without LMDB, so that a campaign reaches
// millions of inputs (fuzz_cache_store drives the same files through LMDB and the whole store at
// ~110 inputs/s: an environment, a thread and a map per input). Input: a data.mdb file, as in
// fuzz_cache_store (whose seeds this target shares). For each of the file's two meta pages, its
// transaction is checked as a snapshot, as LmdbStore::check_structure does (the page size from the
// free tree's record of that meta page when it is a power of two in [512, 65536], else 4096; the
// pages the file holds, up to that meta page's last page), both extents. Checked for every input:
//   - check() returns (ASan/UBSan: every read within the file's pages and the buffers);
//   - damaged comes with a reason, a C string within `why`; sound leaves `why` untouched;
//   - the same snapshot checked twice gets the same verdict (nothing carried between calls);
//   - opening_reads finds a file damaged only if whole_file does too (it checks a part of it).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cache/lmdb_structure.h"

namespace structure = leanembed::cache::lmdb_structure;

namespace {

// LMDB's MDB_meta, on the meta page after the 16-byte page header (lmdb.h / mdb.c, LMDB 0.9).
constexpr std::size_t kFreeDbPageSizeAt = 40;  // mm_dbs[FREE_DBI].md_pad: the page size
constexpr std::size_t kLastPageAt = 136, kTxnIdAt = 144;

template <typename T>
T load(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

int data_file() {
  static const int fd = ::memfd_create("data.mdb", 0);
  return fd;
}

structure::Verdict run(structure::Extent extent, int fd, std::size_t page_size, std::uint64_t file_pages,
                       std::uint64_t txnid, std::vector<unsigned char>& buffers) {
  std::vector<std::uint64_t> seen((file_pages + 63) / 64);
  char why[320];
  std::memset(why, 'x', sizeof why);
  const std::atomic<bool> stop{false};
  structure::Input in{extent, fd, page_size, file_pages, txnid, seen.data(), buffers.data(), why, sizeof why, &stop};
  const structure::Verdict v = structure::check(in);
  if (v == structure::Verdict::damaged) {
    const void* end = std::memchr(why, '\0', sizeof why);
    if (!end || end == why) __builtin_trap();  // no reason, or not a C string within the buffer
  } else if (v == structure::Verdict::sound) {
    for (char c : why)
      if (c != 'x') __builtin_trap();
  } else if (v != structure::Verdict::snapshot_gone) {
    __builtin_trap();  // stopped, though nothing asked it to stop
  }
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const int fd = data_file();
  if (fd < 0 || ::ftruncate(fd, 0) != 0) __builtin_trap();
  for (std::size_t done = 0; done < size;) {
    const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) __builtin_trap();
    done += static_cast<std::size_t>(n);
  }
  if (size < kTxnIdAt + 8) return 0;
  std::size_t page_size = 4096;
  const std::uint32_t recorded = load<std::uint32_t>(data + kFreeDbPageSizeAt);
  if (recorded >= 512 && recorded <= 65536 && (recorded & (recorded - 1)) == 0) page_size = recorded;
  static std::vector<unsigned char> buffers;
  buffers.resize(structure::kBufferPages * page_size);
  for (std::size_t meta_at : {std::size_t{0}, page_size}) {
    if (size < meta_at + kTxnIdAt + 8) break;
    const std::uint64_t txnid = load<std::uint64_t>(data + meta_at + kTxnIdAt);
    const std::uint64_t last = load<std::uint64_t>(data + meta_at + kLastPageAt);
    const std::uint64_t file_pages = std::min<std::uint64_t>(size / page_size, last == UINT64_MAX ? last : last + 1);
    const structure::Verdict whole = run(structure::Extent::whole_file, fd, page_size, file_pages, txnid, buffers);
    if (run(structure::Extent::whole_file, fd, page_size, file_pages, txnid, buffers) != whole) __builtin_trap();
    const structure::Verdict opening = run(structure::Extent::opening_reads, fd, page_size, file_pages, txnid, buffers);
    if (opening == structure::Verdict::damaged && whole != structure::Verdict::damaged) __builtin_trap();
  }
  return 0;
}
