// A check of an LMDB file's structure, page by page, before LMDB is allowed to write to it.
//
// LMDB trusts its pages: a write transaction copies the pages on a key's path (their lower/upper
// bounds and node offsets taken as found), splits them, and reuses the pages its free-page list
// names. A damaged page makes that copy write past a page buffer or fail one of liblmdb's
// assertions (found by fuzz_cache_store: "mp->mp_pgno != pgno" in mdb_page_touch: a page whose header
// named the page the free list handed out for its copy; a heap overflow in mdb_txn_commit from a damaged free-list record). Reads are
// guarded (core/fault_guard.h) and checksummed (cache_record.h); writes cannot be guarded (LMDB
// keeps its own stack cursors in the transaction), so the store checks the file once at open, and
// a file that fails is set aside before anything is written to it.
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
// Cost: one pass over the page headers and node offsets of every page the trees hold (the whole
// file, for a cache): mostly a memory round trip per page (bench/cache_open_bench); memory: a bitmap
// of one bit per page (32 KiB per GiB of file).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace leanembed::cache::lmdb_structure {

// What check() reads: the file's pages in memory (LMDB's read-only map of it: mdb_env_info's
// me_mapaddr), and the snapshot to check. Plain C data: check() runs under the fault guard.
struct Input {
  const unsigned char* pages;  // page 0 of the file
  std::size_t page_size;       // as LMDB reports it (mdb_env_stat)
  std::uint64_t file_pages;    // pages the file holds (every page number checked is below this)
  std::uint64_t txnid;         // the snapshot's transaction id (mdb_txn_id of a read transaction)
  std::uint64_t* seen;         // a zeroed bitmap of at least (file_pages + 63) / 64 words
  char* why;                   // receives the problem (a C string) when check() returns damaged
  std::size_t why_size;
  const std::atomic<bool>* stop;  // when it turns true, check() returns stopped (read per branch page)
};

// sound, or damaged with `why` naming the tree, the page and what is wrong, or snapshot_gone: the meta
// page of the snapshot records another transaction (other processes committed twice since the
// snapshot began and rewrote it: begin a new one and check again; a damaged meta page says so too,
// every time). Allocates nothing and throws nothing; a fault while reading (the file shrank
// meanwhile) is the caller's to catch (fault_guard::call_catching_faults).
enum class Verdict { sound, damaged, snapshot_gone, stopped };
Verdict check(Input& in) noexcept;

}  // namespace leanembed::cache::lmdb_structure
