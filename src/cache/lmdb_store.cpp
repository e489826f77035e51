#include "cache/lmdb_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <system_error>

#include "cache/cache_record.h"
#include "cache/lmdb_structure.h"
#include "core/fault_guard.h"
#include "leanembed/error.h"

namespace leanembed::cache {
namespace {

constexpr char kHeaderKey[] = "header";
using record::kHeaderBytes;
constexpr std::size_t kMinMapBytes = 256u << 10;      // room for the header and a few pages

// The lookups of a batch and the copies of their records, run under
// fault_guard::call_catching_faults (one sigsetjmp per batch): LMDB follows page numbers and offsets
// it finds in the file, and a damaged page can send it (or the copy) to an address that faults.
// Plain C data only: the frames are abandoned, not unwound, on a fault.
struct GuardedGets {
  MDB_txn* txn;
  MDB_dbi dbi;
  const CacheKey* const* keys;
  std::size_t count;
  std::byte* records;           // count slots of slot_bytes: record i is copied to slot i
  std::size_t slot_bytes;
  int* rc;                      // per key: mdb_get's result, or 1 = found with another length
  std::size_t done;             // keys looked up so far (a key whose lookup faulted is not counted)
};
void guarded_gets(void* arg) {
  auto* g = static_cast<GuardedGets*>(arg);
  for (; g->done < g->count; ++g->done) {
    const CacheKey& key = *g->keys[g->done];
    MDB_val k{CacheKey::size, const_cast<std::uint8_t*>(key.bytes.data())};
    MDB_val value{};
    int rc = mdb_get(g->txn, g->dbi, &k, &value);
    if (rc == 0 && value.mv_size != record::vector_record_bytes(key.dims)) rc = 1;
    if (rc == 0) std::memcpy(g->records + g->done * g->slot_bytes, value.mv_data, value.mv_size);
    g->rc[g->done] = rc;
    if (rc != 0 && rc != 1 && rc != MDB_NOTFOUND) {  // an LMDB error: stop after this key
      ++g->done;
      return;
    }
  }
}

// The reads of an existing store's structure at open (the main database, 'meta' and its header,
// 'vectors'), run under fault_guard::call_catching_faults: LMDB follows the root page numbers it
// finds in the file, and a damaged meta or branch page can send it to an address that faults
// (found by fuzz_cache_store). Plain C data only, as GuardedGets. `step` says which call set `rc`.
struct GuardedOpenReads {
  MDB_txn* txn;
  MDB_dbi main_dbi, meta_dbi, vectors;
  MDB_stat main_stat;
  int rc, step;  // step: 0 main database, 1 its stat, 2 'meta', 3 the header, 4 'vectors', 5 done
  std::byte header[kHeaderBytes];
  std::size_t header_size;
};

void guarded_open_reads(void* arg) {
  auto* g = static_cast<GuardedOpenReads*>(arg);
  g->step = 0;
  if ((g->rc = mdb_dbi_open(g->txn, nullptr, 0, &g->main_dbi)) != 0) return;
  g->step = 1;
  if ((g->rc = mdb_stat(g->txn, g->main_dbi, &g->main_stat)) != 0 || g->main_stat.ms_entries == 0) return;
  g->step = 2;
  if ((g->rc = mdb_dbi_open(g->txn, "meta", 0, &g->meta_dbi)) != 0) return;
  g->step = 3;
  MDB_val k{sizeof kHeaderKey - 1, const_cast<char*>(kHeaderKey)};
  MDB_val v{};
  if ((g->rc = mdb_get(g->txn, g->meta_dbi, &k, &v)) != 0) return;
  g->header_size = v.mv_size;
  if (v.mv_size == kHeaderBytes) std::memcpy(g->header, v.mv_data, kHeaderBytes);
  g->step = 4;
  if ((g->rc = mdb_dbi_open(g->txn, "vectors", 0, &g->vectors)) != 0) return;
  g->step = 5;
}

// Debian's liblmdb is built with its assertions on, and a damaged page can fail one (mdb_page_search's
// "root > 1", found by fuzz_cache_store), which aborts the process. Inside a guarded call
// (fault_guard) the failed assertion becomes a fault the guard catches: raise(SIGBUS) runs the
// guard's handler, which jumps out, and the store is treated as damaged. Outside one the raise
// changes nothing and LMDB aborts as before.
void on_lmdb_assert(MDB_env*, const char*) { ::raise(SIGBUS); }

// Making a new (or empty) environment ours: 'meta' with the header, then 'vectors'. Guarded too:
// an "empty" main database may sit on damaged pages that fault or fail an assertion.
struct GuardedCreate {
  MDB_txn* txn;
  const std::byte* header;
  MDB_dbi vectors;
  int rc, step;  // step: 0 creating 'meta', 1 writing the header, 2 creating 'vectors', 3 done
};
void guarded_create(void* arg) {
  auto* g = static_cast<GuardedCreate*>(arg);
  MDB_dbi meta_dbi = 0;
  g->step = 0;
  if ((g->rc = mdb_dbi_open(g->txn, "meta", MDB_CREATE, &meta_dbi)) != 0) return;
  g->step = 1;
  MDB_val k{sizeof kHeaderKey - 1, const_cast<char*>(kHeaderKey)};
  MDB_val v{kHeaderBytes, const_cast<std::byte*>(g->header)};
  if ((g->rc = mdb_put(g->txn, meta_dbi, &k, &v, 0)) != 0) return;
  g->step = 2;
  if ((g->rc = mdb_dbi_open(g->txn, "vectors", MDB_CREATE, &g->vectors)) != 0) return;
  g->step = 3;
}

// mdb_txn_begin, adopting a map another process grew (MDB_MAP_RESIZED) up to 8 times.
int begin_adopting_resizes(MDB_env* env, unsigned flags, MDB_txn** txn) {
  int rc = 0;
  for (int attempt = 0;; ++attempt) {
    rc = mdb_txn_begin(env, nullptr, flags, txn);
    if (rc != MDB_MAP_RESIZED || attempt == 8) return rc;
    mdb_env_set_mapsize(env, 0);
  }
}

// LMDB divides by the page size its meta pages record (mdb_env_open: me_maxpg = mapsize / psize)
// without checking it, so a damaged meta page with page size 0 raises SIGFPE inside mdb_env_open
// (found by fuzz_cache_store). Checked here first: both meta pages (the second at the first's page
// size) must record a power-of-two page size from 512 to 65536 bytes. Returns "" when they do (or
// when the file is too short to hold them: LMDB then refuses or initialises it itself), else why not.
std::string meta_page_size_problem(const std::string& data_path) {
  const int fd = ::open(data_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  constexpr std::size_t kPsizeOffset = 16 + 4 + 4 + 8 + 8;  // page header, magic, version, address, mapsize
  std::string problem;
  std::uint64_t at = 0;
  for (int meta = 0; meta < 2 && problem.empty(); ++meta) {
    std::uint32_t psize = 0;
    if (::pread(fd, &psize, sizeof psize, static_cast<off_t>(at + kPsizeOffset)) != static_cast<ssize_t>(sizeof psize)) break;
    if (psize < 512 || psize > 65536 || (psize & (psize - 1)) != 0)
      problem = "meta page " + std::to_string(meta) + " records a page size of " + std::to_string(psize) + " bytes";
    at += psize;
  }
  ::close(fd);
  return problem;
}

// LMDB's own error codes are negative (MDB_KEYEXIST .. MDB_LAST_ERRCODE); system errors positive.
bool is_lmdb_code(int rc) { return rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE; }

std::string utc_timestamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

const char* reason_name(int reason) {
  switch (reason) {
    case 1: return "corrupt";
    case 2: return "foreign";
    default: return "version";
  }
}

// Holds an exclusive flock on <dir>/open.lock for the duration of an open.
class OpenLock {
 public:
  explicit OpenLock(const std::string& directory) {
    std::string path = directory + "/open.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(ErrorCode::io, "cache: cannot create '" + path + "': " + std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        int err = errno;
        ::close(fd_);
        throw Error(ErrorCode::io, "cache: cannot lock '" + path + "': " + std::strerror(err));
      }
    }
  }
  ~OpenLock() { ::close(fd_); }  // closing releases the flock
  OpenLock(const OpenLock&) = delete;
  OpenLock& operator=(const OpenLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

LmdbStore::LmdbStore(const StoreOptions& options, Warn warn) : options_(options), warn_(std::move(warn)) {
  if (options_.initial_map_bytes > options_.max_map_bytes) {
    throw Error(ErrorCode::invalid_argument, "cache: disk_initial_bytes (" +
                                                 std::to_string(options_.initial_map_bytes) +
                                                 ") is larger than disk_max_bytes (" +
                                                 std::to_string(options_.max_map_bytes) + ")");
  }
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  auto round_up = [page](std::size_t n) { return (std::max(n, kMinMapBytes) + page - 1) / page * page; };
  options_.initial_map_bytes = round_up(options_.initial_map_bytes);
  options_.max_map_bytes = std::max(round_up(options_.max_map_bytes), options_.initial_map_bytes);

  std::error_code ec;
  std::filesystem::create_directories(options_.directory, ec);
  if (ec) {
    throw Error(ErrorCode::io, "cache: cannot create folder '" + options_.directory + "': " + ec.message());
  }
  OpenLock lock(options_.directory);
  try {
    for (int attempt = 0;; ++attempt) {
      std::string why;
      OpenResult result = try_open(why);
      if (result == OpenResult::ok) break;
      close_env();
      if (attempt == 1) {
        throw Error(ErrorCode::io, "cache: the new store in '" + options_.directory + "' is unusable too: " + why);
      }
      move_aside(result, why);
    }
  } catch (...) {
    close_env();
    throw;
  }
  start_structure_check();
}

LmdbStore::~LmdbStore() {
  stop_check_.store(true);
  if (checker_.joinable()) checker_.join();
  close_env();
}

void LmdbStore::start_structure_check() {
  const auto run = [this] {
    StructureCheck result;
    try {
      result = check_structure(lmdb_structure::Extent::whole_file);
    } catch (const std::exception& e) {
      result = {StructureCheck::could_not_run, e.what()};  // LMDB's or the system's failure, not the file's
    }
    {
      std::lock_guard lock(check_mutex_);
      check_ = std::move(result);
      check_done_ = true;
    }
    check_done_cv_.notify_all();
  };
  try {
    checker_ = std::thread(run);
  } catch (const std::system_error&) {
    run();  // no thread to be had: check now
  }
}

void LmdbStore::ensure_structure_checked() {
  StructureCheck current;
  {
    std::unique_lock lock(check_mutex_);
    check_done_cv_.wait(lock, [this] { return check_done_; });
    current = check_;
  }
  if (current.outcome == StructureCheck::could_not_run) {
    // The background check could not run (a full reader table, ...): once more, here. A failure
    // to run propagates (Error(runtime) when transient: the Cache skips this batch).
    current = check_structure(lmdb_structure::Extent::whole_file);
    if (current.outcome == StructureCheck::could_not_run)
      throw Error(ErrorCode::runtime, "cache: '" + options_.directory + "' could not be checked before writing: " + current.message);
  }
  if (current.outcome == StructureCheck::damaged) {
    // Set aside outside check_mutex_: set_aside_damaged takes the open lock and calls the warning callback.
    current = {StructureCheck::set_aside, set_aside_damaged(current.message)};
  }
  {
    std::lock_guard lock(check_mutex_);
    check_ = current;
  }
  if (current.outcome == StructureCheck::set_aside) throw Error(ErrorCode::io, current.message);
}

void LmdbStore::close_env() noexcept {
  if (env_ != nullptr) mdb_env_close(env_);
  env_ = nullptr;
}

void LmdbStore::fail(const char* what, int rc) const {
  throw Error(ErrorCode::io, std::string("cache: LMDB ") + what + " on '" + options_.directory +
                                 "' failed: " + mdb_strerror(rc));
}

void LmdbStore::warn(CacheWarningKind kind, const std::string& message) {
  if (!warn_) return;
  try {
    warn_(kind, message);
  } catch (...) {
    // A throwing callback must not break the cache.
  }
}

// The current snapshot through cache/lmdb_structure.h's check. Throws Error(io) if LMDB cannot
// begin the read transaction or fstat fails, Error(runtime) if the reader table is full.
LmdbStore::StructureCheck LmdbStore::check_structure(lmdb_structure::Extent extent) {
  for (int attempt = 0;; ++attempt) {
    // Under env_lock_ like every transaction: on its own thread the check runs beside the cache's
    // reads, and must not overlap a change of the map's size (which waits for it, as for a read).
    // The read transaction pins the snapshot: no writer reuses its pages while they are checked.
    std::shared_lock<std::shared_mutex> lock;
    MDB_txn* read = begin_read(lock, "mdb_txn_begin (structure check)");
    struct EndRead {
      MDB_txn* txn;
      ~EndRead() { mdb_txn_abort(txn); }
    } end_read{read};
    MDB_stat env_stat{};
    mdb_env_stat(env_, &env_stat);
    MDB_envinfo info{};
    mdb_env_info(env_, &info);
    int fd = -1;
    struct stat st {};
    if (mdb_env_get_fd(env_, &fd) != 0 || ::fstat(fd, &st) != 0) fail("stat data.mdb", errno);
    const std::size_t psize = env_stat.ms_psize;
    // Pages the check may read: those the file holds, up to the newest meta page's last page (which
    // bounds every snapshot's; the bitmap is sized by it, not by a sparse file's length).
    const std::uint64_t file_pages =
        std::min<std::uint64_t>(static_cast<std::uint64_t>(st.st_size) / psize, static_cast<std::uint64_t>(info.me_last_pgno) + 1);
    // The bounds lmdb_structure.h states: a bit per page, kBufferPages pages.
    std::vector<std::uint64_t> seen((file_pages + 63) / 64);
    // Not zeroed: check() reads a page into a buffer before it looks at it (zeroing the 66 pages,
    // and faulting them in, was ~12% of a fuzz_cache_store input's time).
    const auto buffers = std::make_unique_for_overwrite<unsigned char[]>(lmdb_structure::kBufferPages * psize);
    char why[320] = "";
    lmdb_structure::Input in{extent, fd, psize, file_pages, mdb_txn_id(read), seen.data(), buffers.get(), why, sizeof why,
                             &stop_check_};
    switch (lmdb_structure::check(in)) {
      case lmdb_structure::Verdict::sound: return {StructureCheck::sound, ""};
      case lmdb_structure::Verdict::damaged: return {StructureCheck::damaged, std::string("its pages are damaged: ") + why};
      case lmdb_structure::Verdict::stopped: return {StructureCheck::could_not_run, "the check was stopped (the store is closing)"};
      case lmdb_structure::Verdict::snapshot_gone:
        // Other processes committed twice while this snapshot began; a damaged meta page does this
        // every time (LMDB reads it too, and finds what it finds): after a few, say so, not "damaged".
        if (attempt < 8) continue;
        return {StructureCheck::could_not_run, std::string("the snapshot kept moving: ") + why};
    }
  }
}

LmdbStore::OpenResult LmdbStore::try_open(std::string& why) {
  const std::string data_path = options_.directory + "/data.mdb";
  int rc = mdb_env_create(&env_);
  if (rc != 0) {
    env_ = nullptr;
    fail("mdb_env_create", rc);
  }
  mdb_env_set_assert(env_, on_lmdb_assert);
  if (std::string problem = meta_page_size_problem(data_path); !problem.empty()) {
    why = problem;
    return OpenResult::corrupt;
  }
  mdb_env_set_maxdbs(env_, 4);
  mdb_env_set_mapsize(env_, options_.initial_map_bytes);
  const unsigned flags = MDB_NOTLS | (options_.sync ? MDB_NOMETASYNC : MDB_NOSYNC);
  rc = mdb_env_open(env_, options_.directory.c_str(), flags, 0644);
  if (rc != 0) {
    if (is_lmdb_code(rc)) {  // MDB_INVALID (not an LMDB file), MDB_VERSION_MISMATCH, ...
      why = std::string("LMDB cannot open it: ") + mdb_strerror(rc);
      return OpenResult::corrupt;
    }
    fail("mdb_env_open", rc);
  }
  int dead = 0;
  mdb_reader_check(env_, &dead);  // frees slots of readers whose process died

  // A file shorter than its own last page would fault when that page is read.
  MDB_envinfo info{};
  MDB_stat env_stat{};
  mdb_env_info(env_, &info);
  mdb_env_stat(env_, &env_stat);
  struct stat st {};
  if (::stat(data_path.c_str(), &st) != 0) fail("stat data.mdb", errno);
  const std::uint64_t needed = (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * env_stat.ms_psize;
  if (static_cast<std::uint64_t>(st.st_size) < needed) {
    why = "truncated: " + std::to_string(st.st_size) + " bytes, its pages need " + std::to_string(needed);
    return OpenResult::corrupt;
  }

  // What the reads below go through (the main tree, 'meta'), checked first: LMDB loops forever in
  // mdb_dbi_open on some damaged main trees, which no fault guard stops (found by fuzz_cache_store).
  // (A check that could not run leaves these reads as they were before it: guarded.)
  if (const StructureCheck c = check_structure(lmdb_structure::Extent::opening_reads); c.outcome == StructureCheck::damaged) {
    why = c.message;
    return OpenResult::corrupt;
  }

  MDB_txn* txn = nullptr;
  rc = begin_adopting_resizes(env_, 0, &txn);
  if (rc != 0) {
    if (is_lmdb_code(rc)) {
      why = std::string("cannot start a transaction: ") + mdb_strerror(rc);
      return OpenResult::corrupt;
    }
    fail("mdb_txn_begin", rc);
  }
  // From here on the transaction must end on every path.
  auto lmdb_error = [&](const char* what, int code) -> OpenResult {
    mdb_txn_abort(txn);
    if (!is_lmdb_code(code)) fail(what, code);
    why = std::string(what) + ": " + mdb_strerror(code);
    return OpenResult::corrupt;
  };
  GuardedOpenReads g{};
  g.txn = txn;
  if (!fault_guard::call_catching_faults(guarded_open_reads, &g)) {
    // The write transaction holds the writer lock in lock.mdb: end it (aborting touches only the
    // transaction's own memory; guarded all the same), then the caller closes the environment and
    // sets the file aside.
    fault_guard::call_catching_faults([](void* t) { mdb_txn_abort(static_cast<MDB_txn*>(t)); }, txn);
    why = "reading its structure faulted (a damaged meta or B-tree page)";
    return OpenResult::corrupt;
  }
  if (g.step == 0 && g.rc != 0) return lmdb_error("opening the main database", g.rc);
  if (g.step == 1 && g.rc != 0) return lmdb_error("reading the main database", g.rc);
  if (g.main_stat.ms_entries == 0) {
    // A new (or empty) environment: make it ours. That writes, so its pages are checked first
    // (cache/lmdb_structure.h; an empty environment has few; a check that cannot run sets it aside
    // too: nothing in it to lose); a store with data is checked in the background instead
    // (start_structure_check), before the first put_many.
    StructureCheck checked;
    try {
      checked = check_structure(lmdb_structure::Extent::whole_file);
    } catch (...) {
      mdb_txn_abort(txn);  // the write transaction holds the writer lock of lock.mdb
      throw;
    }
    if (checked.outcome != StructureCheck::sound) {
      mdb_txn_abort(txn);
      why = checked.message;
      return OpenResult::corrupt;
    }
    const std::array<std::byte, kHeaderBytes> header = record::encode_header(format_version);
    GuardedCreate c{txn, header.data(), 0, 0, 0};
    if (!fault_guard::call_catching_faults(guarded_create, &c)) {
      fault_guard::call_catching_faults([](void* t) { mdb_txn_abort(static_cast<MDB_txn*>(t)); }, txn);
      why = "making it a leanembed store faulted (a damaged page)";
      return OpenResult::corrupt;
    }
    if (c.step == 0) return lmdb_error("creating 'meta'", c.rc);
    if (c.step == 1) return lmdb_error("writing the header", c.rc);
    if (c.step == 2) return lmdb_error("creating 'vectors'", c.rc);
    vectors_ = c.vectors;
  } else {
    if (g.step == 2 && (g.rc == MDB_NOTFOUND || g.rc == MDB_INCOMPATIBLE)) {
      mdb_txn_abort(txn);
      why = "an LMDB environment without a leanembed header";
      return OpenResult::foreign;
    }
    if (g.step == 2) return lmdb_error("opening 'meta'", g.rc);
    if (g.step == 3 && g.rc == MDB_NOTFOUND) {
      mdb_txn_abort(txn);
      why = "its 'meta' database has no header";
      return OpenResult::foreign;
    }
    if (g.step == 3) return lmdb_error("reading the header", g.rc);
    // g.header holds the value only when it has the header's size.
    const std::optional<record::Header> h =
        g.header_size == kHeaderBytes ? record::decode_header(g.header) : std::nullopt;
    if (!h) {
      mdb_txn_abort(txn);
      why = "its header is not leanembed's (" + std::to_string(g.header_size) + " bytes)";
      return OpenResult::foreign;
    }
    if (h->format_version != format_version || h->key_size != CacheKey::size ||
        h->value_format != record::kValueFormatF32LeChecked) {
      mdb_txn_abort(txn);
      why = "format version " + std::to_string(h->format_version) + " (key " + std::to_string(h->key_size) +
            " bytes, value format " + std::to_string(h->value_format) + "); this build reads version " +
            std::to_string(format_version);
      return OpenResult::version;
    }
    if (g.step == 4 && (g.rc == MDB_NOTFOUND || g.rc == MDB_INCOMPATIBLE)) {
      mdb_txn_abort(txn);
      why = "its 'vectors' database is missing";
      return OpenResult::foreign;
    }
    if (g.step == 4) return lmdb_error("opening 'vectors'", g.rc);
    vectors_ = g.vectors;
  }
  // Committing keeps the database handles (read-only work commits without writing).
  rc = mdb_txn_commit(txn);
  if (rc != 0) {
    if (!is_lmdb_code(rc)) fail("mdb_txn_commit", rc);
    why = std::string("committing the header: ") + mdb_strerror(rc);
    return OpenResult::corrupt;
  }
  return OpenResult::ok;
}

// data.mdb.<reason>-<UTC time>[-n]: a name not taken yet.
static std::string aside_name(const std::string& data_path, const char* reason) {
  const std::string base = data_path + "." + reason + "-" + utc_timestamp();
  std::string target = base;
  std::error_code ec;
  for (int n = 1; std::filesystem::exists(target, ec); ++n) target = base + "-" + std::to_string(n);
  return target;
}

void LmdbStore::move_aside(OpenResult reason, const std::string& why) {
  const std::string data_path = options_.directory + "/data.mdb";
  const std::string target_name = aside_name(data_path, reason_name(static_cast<int>(reason)));
  std::string target = target_name;
  if (::rename(data_path.c_str(), target.c_str()) != 0) {
    if (errno != ENOENT) {
      throw Error(ErrorCode::io, "cache: store '" + data_path + "' is unusable (" + why + ") and cannot be moved to '" +
                                     target + "': " + std::strerror(errno));
    }
    target.clear();  // only lock.mdb was bad
  }
  ::unlink((options_.directory + "/lock.mdb").c_str());
  std::string message = "cache: store '" + data_path + "' is unusable (" + why + "); ";
  if (!target.empty()) {
    moved_aside_.push_back(target);
    message += "moved it to '" + target + "' and started a new store";
  } else {
    message += "removed its lock file and started a new store";
  }
  warn(CacheWarningKind::store_moved_aside, message);
}

void LmdbStore::adopt_map_size() {
  std::unique_lock lock(env_lock_);
  int rc = mdb_env_set_mapsize(env_, 0);  // 0: the size another process committed
  if (rc != 0) fail("mdb_env_set_mapsize", rc);
}

bool LmdbStore::grow_map() {
  std::unique_lock lock(env_lock_);
  MDB_envinfo info{};
  mdb_env_info(env_, &info);
  const std::size_t current = info.me_mapsize;
  if (current >= options_.max_map_bytes) {
    if (!full_.exchange(true)) {
      warn(CacheWarningKind::store_full, "cache: store '" + options_.directory + "' reached its cap of " +
                                             std::to_string(options_.max_map_bytes) +
                                             " bytes; new vectors are no longer written to disk");
    }
    return false;
  }
  const std::size_t next = std::min(options_.max_map_bytes, current * 2);
  int rc = mdb_env_set_mapsize(env_, next);
  if (rc != 0) fail("mdb_env_set_mapsize", rc);
  return true;
}

MDB_txn* LmdbStore::begin_read(std::shared_lock<std::shared_mutex>& lock, const char* what) {
  for (int attempt = 0;; ++attempt) {
    lock = std::shared_lock(env_lock_);
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
    if (rc == 0) return txn;
    if (rc == MDB_MAP_RESIZED && attempt < 8) {
      lock.unlock();
      adopt_map_size();
      continue;
    }
    if (rc == MDB_READERS_FULL && attempt < 8) {
      int dead = 0;
      mdb_reader_check(env_, &dead);  // a process died holding slots since we opened
      if (dead > 0) continue;
    }
    if (rc == MDB_READERS_FULL) {
      throw Error(ErrorCode::runtime, "cache: LMDB reader table of '" + options_.directory + "' is full");
    }
    fail(what, rc);
  }
}

std::size_t LmdbStore::get_many(std::span<const CacheKey* const> keys, std::span<float* const> dst,
                                std::span<std::uint8_t> found) {
  std::string damage;  // non-empty: the store is damaged (set aside after the transaction)
  std::size_t hits = 0;
  std::fill(found.begin(), found.end(), 0);
  {
    std::shared_lock<std::shared_mutex> lock;
    MDB_txn* txn = begin_read(lock, "mdb_txn_begin (read)");
    // Every key of a batch has the same dims (Cache checks it); a slot per key for its record.
    const std::size_t slot = keys.empty() ? 0 : record::vector_record_bytes(keys[0]->dims);
    std::vector<std::byte> records(keys.size() * slot);
    std::vector<int> rcs(keys.size(), MDB_NOTFOUND);
    GuardedGets g{txn, vectors_, keys.data(), keys.size(), records.data(), slot, rcs.data(), 0};
    for (const CacheKey* k : keys) {
      if (record::vector_record_bytes(k->dims) != slot) g.count = 0;  // mixed dims: not from Cache; look nothing up
    }
    if (!fault_guard::call_catching_faults(guarded_gets, &g)) {
      damage = "reading a record faulted (a damaged B-tree page)";
    }
    for (std::size_t i = 0; i < g.done && damage.empty(); ++i) {
      const CacheKey& key = *keys[i];
      const int rc = rcs[i];
      if (rc == MDB_NOTFOUND || rc == 1) continue;  // absent, or another length: a miss
      if (rc != 0) {
        if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_BAD_TXN) {
          damage = std::string("LMDB reports ") + mdb_strerror(rc);
          break;
        }
        mdb_txn_abort(txn);
        fail("mdb_get", rc);
      }
      const std::span<const std::byte> bytes(records.data() + i * slot, slot);
      const record::VectorRecord r = record::decode_vector(key, bytes, dst[i]);
      if (r == record::VectorRecord::other_dims) continue;
      if (r == record::VectorRecord::damaged) {
        damage = "a record's checksum does not match its contents";
        break;
      }
      found[i] = 1;
      ++hits;
    }
    mdb_txn_abort(txn);
  }
  if (!damage.empty()) {
    std::fill(found.begin(), found.end(), 0);
    throw Error(ErrorCode::io, set_aside_damaged(damage));
  }
  return hits;
}

std::string LmdbStore::set_aside_damaged(const std::string& why) {
  const std::string data_path = options_.directory + "/data.mdb";
  std::string message = "cache: store '" + data_path + "' is damaged (" + why + ")";
  try {
    OpenLock open_lock(options_.directory);
    // Still the file this store has open? (Another process may have set it aside already.)
    int fd = -1;
    struct stat ours {}, named {};
    if (mdb_env_get_fd(env_, &fd) == 0 && ::fstat(fd, &ours) == 0 && ::stat(data_path.c_str(), &named) == 0 &&
        ours.st_dev == named.st_dev && ours.st_ino == named.st_ino) {
      const std::string target = aside_name(data_path, "corrupt");
      if (::rename(data_path.c_str(), target.c_str()) == 0) {
        ::unlink((options_.directory + "/lock.mdb").c_str());
        message += "; moved it to '" + target + "' (the next cache opened on the folder starts a new store)";
        warn(CacheWarningKind::store_moved_aside, message);
        return message;
      }
      message += "; it could not be moved aside: " + std::string(std::strerror(errno));
    } else {
      message += "; another process has already set it aside";
    }
  } catch (const Error& e) {
    message += std::string("; ") + e.what();
  }
  return message;
}

std::size_t LmdbStore::put_many(std::span<const CacheKey* const> keys, std::span<const float* const> vectors) {
  if (keys.empty() || full_.load()) return 0;
  std::lock_guard writer(write_mutex_);
  ensure_structure_checked();
  for (int attempt = 0; attempt < 64; ++attempt) {
    std::shared_lock lock(env_lock_);
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc == MDB_MAP_RESIZED) {
      lock.unlock();
      adopt_map_size();
      continue;
    }
    if (rc != 0) fail("mdb_txn_begin (write)", rc);
    std::size_t added = 0;
    bool map_full = false;
    for (std::size_t i = 0; i < keys.size() && !map_full; ++i) {
      const CacheKey& key = *keys[i];
      MDB_val k{CacheKey::size, const_cast<std::uint8_t*>(key.bytes.data())};
      MDB_val v{record::vector_record_bytes(key.dims), nullptr};
      rc = mdb_put(txn, vectors_, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);
      if (rc == 0) {
        record::encode_vector(key, vectors[i], std::span<std::byte>(static_cast<std::byte*>(v.mv_data), v.mv_size));
        ++added;
      } else if (rc == MDB_MAP_FULL) {
        map_full = true;
      } else if (rc != MDB_KEYEXIST) {
        mdb_txn_abort(txn);
        if (rc == ENOSPC) break;
        fail("mdb_put", rc);
      }
    }
    if (rc == ENOSPC) {
      if (!full_.exchange(true)) warn(CacheWarningKind::store_full, "cache: no space left for '" + options_.directory + "'");
      return 0;
    }
    if (!map_full) {
      rc = mdb_txn_commit(txn);  // frees txn whatever the outcome
      if (rc == 0) return added;
      if (rc == ENOSPC) {
        if (!full_.exchange(true)) warn(CacheWarningKind::store_full, "cache: no space left for '" + options_.directory + "'");
        return 0;
      }
      if (rc != MDB_MAP_FULL) fail("mdb_txn_commit", rc);
    } else {
      mdb_txn_abort(txn);
    }
    lock.unlock();
    if (!grow_map()) return 0;
  }
  throw Error(ErrorCode::io, "cache: could not commit to '" + options_.directory + "' after 64 attempts");
}

StoreStats LmdbStore::stats() {
  StoreStats s;
  s.full = full_.load();
  {
    std::shared_lock<std::shared_mutex> lock;
    MDB_txn* txn = begin_read(lock, "mdb_txn_begin (stats)");
    MDB_stat db{};
    const int rc = mdb_stat(txn, vectors_, &db);
    MDB_envinfo info{};
    mdb_env_info(env_, &info);
    MDB_stat env_stat{};
    mdb_env_stat(env_, &env_stat);
    mdb_txn_abort(txn);
    if (rc != 0) fail("mdb_stat", rc);
    s.entries = db.ms_entries;
    s.used_bytes = (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * env_stat.ms_psize;
    s.map_bytes = info.me_mapsize;
  }
  struct stat st {};
  if (::stat((options_.directory + "/data.mdb").c_str(), &st) == 0) s.file_bytes = static_cast<std::uint64_t>(st.st_size);
  return s;
}

}  // namespace leanembed::cache
