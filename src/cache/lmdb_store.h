// The disk level: CacheKey → float32 vector in an LMDB environment shared by processes.
//
// Layout: named database "meta" holds one header entry; named database "vectors" maps the 72-byte
// key to the vector's record (checksummed). The bytes of both are cache/cache_record.h's.
//
// Before anything is written, the file's pages are checked (cache/lmdb_structure.h): LMDB trusts
// them when it writes. A new or empty store is checked while it opens (making it ours writes); a
// store with data is checked on a thread of its own that the constructor starts, so that opening a
// large store costs no more than before; the first put_many waits for the verdict, and a store that
// fails it is set aside as below (reads meanwhile are guarded and checksummed as always). What the
// open itself reads (the meta page, the main tree, 'meta') is checked before LMDB reads it. While
// the check runs it holds a read transaction: a map grown by another process is adopted after it.
// The warning callback must not call back into the store (it may run with the store's locks held).
//
// Damage after opening: a record whose checksum does not match, an LMDB "corrupted" / "page not
// found" answer, or a memory fault while LMDB reads a record (caught: core/fault_guard.h) makes
// get_many set the file aside (data.mdb.corrupt-<UTC time>) and throw Error(io); no vector of a
// damaged record is ever returned.
//
// Opening (under an flock on <dir>/open.lock so that processes do not race each other):
// stale reader slots of dead processes are cleared (mdb_reader_check); a data.mdb that LMDB
// rejects, that is shorter than its own last page, that holds data but no header, or a header of
// another format version, is renamed to data.mdb.<corrupt|foreign|version>-<UTC time>, lock.mdb
// is removed, and a new store is made.
//
// Growth: on MDB_MAP_FULL the map doubles (never past max_map_bytes) and the batch is retried;
// at the cap the store stops inserting (full() turns true, one warning). A map grown by another
// process (MDB_MAP_RESIZED) is adopted.
//
// Errors after opening throw Error(io) (LMDB failure; the caller should stop using the store) or
// Error(runtime) (transient: reader table full even after clearing dead readers).
//
// Threads: get_many/put_many/stats may be called concurrently; writes are serialised inside.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "cache/lmdb_structure.h"
#include "leanembed/cache.h"

namespace leanembed::cache {

struct StoreOptions {
  std::string directory;
  std::size_t initial_map_bytes = 16u << 20;
  std::size_t max_map_bytes = 1u << 30;
  bool sync = true;  // MDB_NOMETASYNC when true (one fsync per commit), MDB_NOSYNC when false
};

struct StoreStats {
  std::uint64_t entries = 0, used_bytes = 0, file_bytes = 0, map_bytes = 0;
  bool full = false;
};

class LmdbStore {
 public:
  static constexpr std::uint32_t format_version = 2;
  using Warn = std::function<void(CacheWarningKind, const std::string&)>;

  // Opens or makes the store (see above). Throws Error(io) naming the folder and the reason when
  // the folder, the environment or a replacement store cannot be made; Error(invalid_argument)
  // if initial_map_bytes > max_map_bytes. warn may be empty.
  LmdbStore(const StoreOptions& options, Warn warn);
  ~LmdbStore();
  LmdbStore(const LmdbStore&) = delete;
  LmdbStore& operator=(const LmdbStore&) = delete;

  // One read transaction: for each i, on a hit copies keys[i]->dims floats to dst[i] and sets
  // found[i] = 1 (else 0). A stored value of the wrong length is a miss. Returns the hits.
  std::size_t get_many(std::span<const CacheKey* const> keys, std::span<float* const> dst,
                       std::span<std::uint8_t> found);
  // One write transaction (retried after growing the map): stores vectors[i] (keys[i]->dims
  // floats) under keys[i] unless present. Returns how many were new; 0 once full().
  std::size_t put_many(std::span<const CacheKey* const> keys, std::span<const float* const> vectors);

  StoreStats stats();
  bool full() const { return full_.load(); }
  // Where bad stores found at open were moved.
  const std::vector<std::string>& moved_aside() const { return moved_aside_; }
  const std::string& directory() const { return options_.directory; }

 private:
  enum class OpenResult { ok, corrupt, foreign, version };
  OpenResult try_open(std::string& why);
  // What check_structure found: sound, damaged (message: why), could_not_run (message: why not),
  // or set_aside (damaged and set aside; message: the set-aside message).
  struct StructureCheck {
    enum Outcome { sound, damaged, could_not_run, set_aside } outcome = could_not_run;
    std::string message;
  };
  StructureCheck check_structure(lmdb_structure::Extent extent);
  // Runs check_structure (whole_file) on checker_ (or here, if no thread can be made).
  void start_structure_check();
  // Called by put_many with write_mutex_ held: waits for the check; runs it again if it could not
  // run (throws Error(runtime) if it still cannot); sets a damaged store aside and throws Error(io).
  void ensure_structure_checked();
  void close_env() noexcept;
  void move_aside(OpenResult reason, const std::string& why);
  // A damaged record was found after opening: renames data.mdb to data.mdb.corrupt-<UTC time> if it
  // is still this store's file (under the open lock), warns; returns the message for the caller's
  // Error (the store is not used again: the Cache turns its disk level off).
  std::string set_aside_damaged(const std::string& why);
  bool grow_map();      // false at the cap
  void adopt_map_size();
  // Begins a read-only transaction with `lock` (on env_lock_) held shared, retrying after another
  // process grew the map or after clearing dead readers' slots; `what` names the caller in errors.
  MDB_txn* begin_read(std::shared_lock<std::shared_mutex>& lock, const char* what);
  void warn(CacheWarningKind kind, const std::string& message);
  [[noreturn]] void fail(const char* what, int rc) const;

  StoreOptions options_;
  Warn warn_;
  MDB_env* env_ = nullptr;
  MDB_dbi vectors_ = 0;
  std::shared_mutex env_lock_;  // shared: a transaction is open; unique: the map is being resized
  std::mutex write_mutex_;      // one writer of this process at a time
  std::atomic<bool> full_{false};
  std::vector<std::string> moved_aside_;
  std::thread checker_;
  std::atomic<bool> stop_check_{false};  // set by the destructor: the check ends early
  std::mutex check_mutex_;               // guards the two below
  std::condition_variable check_done_cv_;
  bool check_done_ = false;
  StructureCheck check_;
};

}  // namespace leanembed::cache
