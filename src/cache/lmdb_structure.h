// A check of an LMDB file's structure, page by page, before LMDB is allowed to write to it.
//
// LMDB trusts its pages: a write transaction copies the pages on a key's path (their lower/upper
// bounds and node offsets taken as found), splits them, and reuses the pages its free-page list
// names. A damaged page makes that copy write past a page buffer or fail one of liblmdb's
// assertions (found by fuzz_cache_store: "mp->mp_pgno != pgno" in mdb_page_touch, a page whose
// header named the page the free list then handed out for its copy; a heap overflow in
// mdb_txn_commit from a damaged free-list record). Reads are guarded (core/fault_guard.h) and
// checksummed (cache_record.h); writes cannot be guarded (LMDB keeps its own stack cursors in the
// transaction), so the store checks the file once after opening it, and a file that fails is set
// aside before the store writes to it (cache/lmdb_store.h says when).
//
// What is checked, for one snapshot (the meta page of a read transaction): the free-page tree, the
// main tree and every named tree it holds (leanembed's 'meta' and 'vectors'). Every page reached:
// a page number past the two meta pages and not past the snapshot's last page, reached once (no
// page shared by two trees, none reached twice), its header's page number its own, a branch or leaf
// page (an overflow page only where a node points), 16 <= lower <= upper <= page size, every node
// within [upper, page size) with its key (and in a leaf its data, or its overflow page number)
// inside the page, keys in ascending order, every leaf at the tree's recorded depth, the page and
// entry counts the tree records; a named tree's record 48 bytes and of a plain (not duplicate-
// sorted) database. Every free-list record a count and that many page numbers of this file, none
// reached by a tree nor named twice. Not checked: the vectors' bytes (each record's checksum is,
// on read).
//
// Cost: one pass over every page the trees hold (the whole file, for a cache), read with pread into
// buffers of the caller's (not mapped: the store's pages never count in the process's resident set);
// memory: kBufferPages pages of buffer, and a bitmap of one bit per page (32 KiB per GiB of file).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace leanembed::cache::lmdb_structure {

// Page buffers check() needs: the meta page, a page per level of the main tree and of a named tree
// inside it (LMDB's cursors go 32 levels deep), and one for a free-list record on overflow pages.
constexpr std::size_t kBufferPages = 1 + 32 + 32 + 1;

// What check() covers: the whole snapshot as above, or only what opening a store reads before the
// whole check has run (the meta page, the main tree, and every named tree in it but 'vectors':
// leanembed's 'meta'; LMDB loops forever on some damaged main trees, found by fuzz_cache_store).
enum class Extent { whole_file, opening_reads };

// What check() reads: the file, and the snapshot to check.
struct Input {
  Extent extent;
  int fd;                      // the data file, open for reading (pread: no file position is used)
  std::size_t page_size;       // as LMDB reports it (mdb_env_stat)
  std::uint64_t file_pages;    // pages the file holds (every page number checked is below this)
  std::uint64_t txnid;         // the snapshot's transaction id (mdb_txn_id of a read transaction)
  std::uint64_t* seen;         // a zeroed bitmap of at least (file_pages + 63) / 64 words
  unsigned char* buffers;      // kBufferPages * page_size bytes
  char* why;                   // receives the problem (a C string) when check() returns damaged
  std::size_t why_size;
  const std::atomic<bool>* stop;  // when it turns true, check() returns stopped (read per branch page)
};

// sound, or damaged with `why` naming the tree, the page and what is wrong (a file that ends before
// a page the snapshot names, too), or snapshot_gone: the meta page of the snapshot records another
// transaction (other processes committed twice since the snapshot began and rewrote it: begin a new
// one and check again; a damaged meta page says so too, every time). Allocates nothing, throws
// nothing.
enum class Verdict { sound, damaged, snapshot_gone, stopped };
Verdict check(Input& in) noexcept;

}  // namespace leanembed::cache::lmdb_structure
