#include "cache/lmdb_structure.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace leanembed::cache::lmdb_structure {
namespace {

// LMDB 0.9's file format on a 64-bit little-endian build (lmdb.h and mdb.c of liblmdb 0.9.24:
// MDB_page, MDB_node, MDB_meta, MDB_db). Every read below is a memcpy of one of these fields.
constexpr std::size_t kPageHeader = 16;  // mp_pgno u64, mp_pad u16, mp_flags u16, mp_lower u16, mp_upper u16
constexpr std::size_t kFlagsAt = 10, kLowerAt = 12, kUpperAt = 14, kOverflowPagesAt = 12;
constexpr std::uint16_t kBranch = 0x01, kLeaf = 0x02, kOverflow = 0x04;
constexpr std::size_t kNodeHeader = 8;  // mn_lo u16, mn_hi u16, mn_flags u16, mn_ksize u16
constexpr std::uint16_t kNodeBigData = 0x01, kNodeSubData = 0x02, kNodeDupData = 0x04;
constexpr std::uint32_t kMetaMagic = 0xBEEFC0DE, kMetaVersion = 1;
constexpr std::size_t kMetaMagicAt = 16, kMetaVersionAt = 20, kFreeDbAt = 40, kMainDbAt = 88, kLastPageAt = 136,
                      kTxnIdAt = 144;
constexpr std::size_t kDbRecord = 48;  // md_pad u32, md_flags u16, md_depth u16, 4 counts u64, md_root u64
constexpr std::uint16_t kIntegerKey = 0x08;
constexpr std::uint16_t kDupFlags = 0x04 | 0x10 | 0x20 | 0x40;  // DUPSORT, DUPFIXED, INTEGERDUP, REVERSEDUP
constexpr std::uint64_t kNoPage = ~std::uint64_t{0};  // P_INVALID: an empty tree's root
constexpr unsigned kMaxDepth = 32;                    // LMDB's cursor stack (CURSOR_STACK)

template <typename T>
T load(const unsigned char* at) {
  T v;
  std::memcpy(&v, at, sizeof v);
  return v;
}

struct Db {
  std::uint16_t flags = 0, depth = 0;
  std::uint64_t branch_pages = 0, leaf_pages = 0, overflow_pages = 0, entries = 0, root = kNoPage;
};
Db load_db(const unsigned char* at) {
  Db d;
  d.flags = load<std::uint16_t>(at + 4);
  d.depth = load<std::uint16_t>(at + 6);
  d.branch_pages = load<std::uint64_t>(at + 8);
  d.leaf_pages = load<std::uint64_t>(at + 16);
  d.overflow_pages = load<std::uint64_t>(at + 24);
  d.entries = load<std::uint64_t>(at + 32);
  d.root = load<std::uint64_t>(at + 40);
  return d;
}

enum class Kind { free_pages, main, named };

// One tree being walked: what it records and what the walk counted.
struct Tree {
  Kind kind;
  const char* name;
  Db db;
  std::uint64_t branch_pages = 0, leaf_pages = 0, overflow_pages = 0, entries = 0;
};

struct Walk {
  Input& in;
  std::uint64_t last_page;  // the snapshot's last page (its meta's mm_last_pg)
  bool stopped = false;     // in.stop turned true: the walk returned false without a verdict

  unsigned char* buffer(unsigned slot) const { return in.buffers + std::size_t{slot} * in.page_size; }

  // Reads `size` bytes at `offset` of the file into `to`; false (why set) if the file ends first.
  bool read(const Tree& t, std::uint64_t pgno, std::uint64_t offset, void* to, std::size_t size) {
    auto* out = static_cast<unsigned char*>(to);
    while (size > 0) {
      const ssize_t got = ::pread(in.fd, out, size, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return fail(t, pgno, "the file ends (or cannot be read) at byte %llu", static_cast<unsigned long long>(offset));
      out += got;
      offset += static_cast<std::uint64_t>(got);
      size -= static_cast<std::size_t>(got);
    }
    return true;
  }
  bool read_page(const Tree& t, std::uint64_t n, unsigned slot) { return read(t, n, n * in.page_size, buffer(slot), in.page_size); }

  bool fail(const Tree& t, std::uint64_t pgno, const char* format, ...) __attribute__((format(printf, 4, 5))) {
    int used = std::snprintf(in.why, in.why_size, "the %s tree, page %llu: ", t.name, static_cast<unsigned long long>(pgno));
    if (used >= 0 && static_cast<std::size_t>(used) < in.why_size) {
      va_list args;
      va_start(args, format);
      std::vsnprintf(in.why + used, in.why_size - static_cast<std::size_t>(used), format, args);
      va_end(args);
    }
    return false;
  }

  bool seen(std::uint64_t n) const { return (in.seen[n / 64] >> (n % 64)) & 1u; }
  void mark(std::uint64_t n) { in.seen[n / 64] |= std::uint64_t{1} << (n % 64); }

  // A page number a tree or the free list may name: past the meta pages, not past the last page.
  bool in_file(std::uint64_t n) const { return n >= 2 && n <= last_page; }

  // Claims page n (and the count-1 after it) for a tree; each page may be claimed once.
  bool claim(const Tree& t, std::uint64_t from, std::uint64_t n, std::uint64_t count) {
    for (std::uint64_t p = n; p < n + count; ++p) {
      if (seen(p)) return fail(t, from, "page %llu is reached twice (or is a meta page)", static_cast<unsigned long long>(p));
      mark(p);
    }
    return true;
  }

  // LMDB's key orders: an integer key (the free-page tree's transaction ids), else bytes then length.
  static int compare(Kind kind, const unsigned char* a, std::size_t an, const unsigned char* b, std::size_t bn) {
    if (kind == Kind::free_pages) {
      const auto x = load<std::uint64_t>(a), y = load<std::uint64_t>(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    const int c = std::memcmp(a, b, an < bn ? an : bn);
    return c != 0 ? c : an < bn ? -1 : an > bn ? 1 : 0;
  }

  // A leaf node's value: inside the page (`data` points at it), or on the overflow pages it names
  // (checked and claimed; `data` null, `overflow` their first page: the value is at its byte 16).
  bool value(Tree& t, std::uint64_t pgno, const unsigned char* p, const unsigned char* node, std::uint16_t flags,
             std::size_t end_of_key, const unsigned char*& data, std::uint64_t& overflow, std::uint64_t& size) {
    size = load<std::uint16_t>(node) | (std::uint64_t{load<std::uint16_t>(node + 2)} << 16);
    data = nullptr;
    overflow = 0;
    if (!(flags & kNodeBigData)) {
      if (end_of_key + size > in.page_size) return fail(t, pgno, "a value of %llu bytes runs past the page", static_cast<unsigned long long>(size));
      data = p + end_of_key;
      return true;
    }
    if (end_of_key + 8 > in.page_size) return fail(t, pgno, "an overflow page number runs past the page");
    const auto first = load<std::uint64_t>(p + end_of_key);
    if (!in_file(first)) return fail(t, pgno, "overflow page %llu is outside the file", static_cast<unsigned long long>(first));
    unsigned char op[kPageHeader];
    if (!read(t, pgno, first * in.page_size, op, sizeof op)) return false;
    const auto count = load<std::uint32_t>(op + kOverflowPagesAt);
    const std::uint64_t needed = (kPageHeader - 1 + size) / in.page_size + 1;
    if (load<std::uint64_t>(op) != first || load<std::uint16_t>(op + kFlagsAt) != kOverflow || count < needed ||
        first + count - 1 > last_page) {
      return fail(t, pgno, "overflow page %llu is not one of %llu pages for a %llu-byte value", static_cast<unsigned long long>(first),
                  static_cast<unsigned long long>(needed), static_cast<unsigned long long>(size));
    }
    if (!claim(t, pgno, first, count)) return false;
    t.overflow_pages += count;
    overflow = first;
    return true;
  }

  bool named_tree(const Tree& main, std::uint64_t pgno, const unsigned char* key, std::size_t key_size,
                  const unsigned char* record, std::uint64_t size, unsigned slot);

  // Checks page `pgno` of tree t at `level` (the root is level 1) and everything below it, reading
  // it into buffer `slot` (its children use the next: a named tree's pages follow the main tree's).
  bool page_and_below(Tree& t, std::uint64_t pgno, unsigned level, unsigned slot) {
    if (!read_page(t, pgno, slot)) return false;
    const unsigned char* p = buffer(slot);
    const auto header_pgno = load<std::uint64_t>(p);
    const auto flags = load<std::uint16_t>(p + kFlagsAt);
    const auto lower = load<std::uint16_t>(p + kLowerAt);
    const auto upper = load<std::uint16_t>(p + kUpperAt);
    if (header_pgno != pgno) return fail(t, pgno, "its header says page %llu", static_cast<unsigned long long>(header_pgno));
    if (flags != kBranch && flags != kLeaf) return fail(t, pgno, "flags 0x%x, not a branch or leaf page", flags);
    if (lower < kPageHeader || upper < lower || upper > in.page_size || (lower - kPageHeader) % 2 != 0)
      return fail(t, pgno, "bounds lower %u, upper %u do not fit a %zu-byte page", lower, upper, in.page_size);
    const std::size_t keys = (lower - kPageHeader) / 2;
    const bool leaf = flags == kLeaf;
    if (leaf != (level == t.db.depth)) return fail(t, pgno, "a %s at level %u of a tree of depth %u", leaf ? "leaf" : "branch", level, t.db.depth);
    // LMDB keeps every branch at 2 keys or more (mdb_rebalance; only mid-rebalance may a free-tree
    // branch have 1, never on disk) and asserts it when it deletes free-list records.
    if (keys < (leaf ? 1u : 2u)) return fail(t, pgno, "a %s with %zu keys", leaf ? "leaf" : "branch", keys);
    (leaf ? t.leaf_pages : t.branch_pages) += 1;
    if (!leaf && in.stop != nullptr && in.stop->load(std::memory_order_relaxed)) {
      stopped = true;
      return false;
    }
    const unsigned char* previous_key = nullptr;
    std::size_t previous_size = 0;
    for (std::size_t i = 0; i < keys; ++i) {
      const auto at = load<std::uint16_t>(p + kPageHeader + 2 * i);
      // Nodes start at even offsets (LMDB rounds their sizes up to even, and moves them by those sizes).
      if (at < upper || at + kNodeHeader > in.page_size)
        return fail(t, pgno, "node %zu at offset %u is outside [%u, %zu)", i, at, upper, in.page_size - kNodeHeader + 1);
      if (at % 2 != 0) return fail(t, pgno, "node %zu is at an odd offset (%u)", i, at);
      const unsigned char* node = p + at;
      const auto node_flags = load<std::uint16_t>(node + 4);
      const auto key_size = load<std::uint16_t>(node + 6);
      const std::size_t end_of_key = at + kNodeHeader + key_size;
      if (end_of_key > in.page_size) return fail(t, pgno, "node %zu's %u-byte key runs past the page", i, key_size);
      const unsigned char* key = node + kNodeHeader;
      if (t.kind == Kind::free_pages && (leaf || i > 0) && key_size != 8) return fail(t, pgno, "a %u-byte transaction id", key_size);
      if (leaf || i > 0) {  // a branch's first key is not used
        if (previous_key && compare(t.kind, previous_key, previous_size, key, key_size) >= 0)
          return fail(t, pgno, "node %zu's key is not above the one before", i);
        previous_key = key;
        previous_size = key_size;
      }
      if (!leaf) {
        const std::uint64_t child = load<std::uint16_t>(node) | (std::uint64_t{load<std::uint16_t>(node + 2)} << 16) |
                                    (std::uint64_t{node_flags} << 32);
        if (!in_file(child)) return fail(t, pgno, "child page %llu is outside the file", static_cast<unsigned long long>(child));
        if (!claim(t, pgno, child, 1) || !page_and_below(t, child, level + 1, slot + 1)) return false;
        continue;
      }
      ++t.entries;
      if (node_flags & ~(kNodeBigData | kNodeSubData | kNodeDupData)) return fail(t, pgno, "node %zu has flags 0x%x", i, node_flags);
      if (node_flags & kNodeDupData) return fail(t, pgno, "node %zu holds duplicates, which none of its databases allows", i);
      const unsigned char* data = nullptr;
      std::uint64_t overflow = 0, size = 0;
      if (!value(t, pgno, p, node, node_flags, end_of_key, data, overflow, size)) return false;
      if (node_flags & kNodeSubData) {
        if (t.kind != Kind::main || data == nullptr) return fail(t, pgno, "node %zu names a database here", i);
        if (!named_tree(t, pgno, key, key_size, data, size, slot + 1)) return false;
      } else if (t.kind == Kind::free_pages) {
        if (!free_record(t, pgno, data, overflow, size, slot + 1)) return false;
      }
    }
    return true;
  }

  bool tree(Tree& t, unsigned slot) {
    if (t.db.root == kNoPage) {
      if (t.db.depth != 0 || t.db.entries != 0 || t.db.branch_pages + t.db.leaf_pages + t.db.overflow_pages != 0)
        return fail(t, t.db.root, "an empty tree that records depth %u and %llu entries", t.db.depth,
                    static_cast<unsigned long long>(t.db.entries));
      return true;
    }
    if (t.db.depth < 1 || t.db.depth > kMaxDepth) return fail(t, t.db.root, "depth %u", t.db.depth);
    if (!in_file(t.db.root)) return fail(t, t.db.root, "the root is outside the file");
    if (!claim(t, t.db.root, t.db.root, 1) || !page_and_below(t, t.db.root, 1, slot)) return false;
    if (t.branch_pages != t.db.branch_pages || t.leaf_pages != t.db.leaf_pages || t.overflow_pages != t.db.overflow_pages ||
        t.entries != t.db.entries) {
      return fail(t, t.db.root, "it records %llu/%llu/%llu branch/leaf/overflow pages and %llu entries, it holds %llu/%llu/%llu and %llu",
                  static_cast<unsigned long long>(t.db.branch_pages), static_cast<unsigned long long>(t.db.leaf_pages),
                  static_cast<unsigned long long>(t.db.overflow_pages), static_cast<unsigned long long>(t.db.entries),
                  static_cast<unsigned long long>(t.branch_pages), static_cast<unsigned long long>(t.leaf_pages),
                  static_cast<unsigned long long>(t.overflow_pages), static_cast<unsigned long long>(t.entries));
    }
    return true;
  }

  // A free-list record: a count n, then n page numbers, each a page of the file that nothing else
  // claims (the free tree is walked after the main tree, so a page a tree uses is claimed already;
  // one a later free-tree page turns out to be fails that page's claim). The words are in the page
  // (`data`), or read a page's worth at a time (no further than the record's end) from its overflow
  // pages into buffer `scratch`.
  bool free_record(const Tree& t, std::uint64_t pgno, const unsigned char* data, std::uint64_t overflow,
                   std::uint64_t size, unsigned scratch) {
    const std::uint64_t at = overflow * in.page_size + kPageHeader;  // on overflow pages: the record's offset
    const std::size_t per_chunk = in.page_size / 8;
    const auto word = [&](std::uint64_t k, std::uint64_t& v) -> bool {
      if (data != nullptr) {
        v = load<std::uint64_t>(data + 8 * k);
        return true;
      }
      if (k % per_chunk == 0 &&
          !read(t, pgno, at + 8 * k, buffer(scratch), std::min<std::uint64_t>(in.page_size, size - 8 * k)))
        return false;
      v = load<std::uint64_t>(buffer(scratch) + 8 * (k % per_chunk));
      return true;
    };
    if (size < 8 || size % 8 != 0) return fail(t, pgno, "a free-list record of %llu bytes", static_cast<unsigned long long>(size));
    std::uint64_t n = 0;
    if (!word(0, n)) return false;
    if (n > size / 8 - 1)
      return fail(t, pgno, "a free-list record of %llu bytes that counts %llu page numbers", static_cast<unsigned long long>(size),
                  static_cast<unsigned long long>(n));
    for (std::uint64_t k = 1; k <= n; ++k) {
      std::uint64_t free_page = 0;
      if (!word(k, free_page)) return false;
      if (!in_file(free_page)) return fail(t, pgno, "the free list names page %llu, outside the file", static_cast<unsigned long long>(free_page));
      if (seen(free_page)) return fail(t, pgno, "the free list names page %llu, which is in use or named twice", static_cast<unsigned long long>(free_page));
      mark(free_page);
    }
    return true;
  }
};

bool Walk::named_tree(const Tree& main, std::uint64_t pgno, const unsigned char* key, std::size_t key_size,
                      const unsigned char* record, std::uint64_t size, unsigned slot) {
  char name[40] = "named '";
  const std::size_t shown = key_size < 24 ? key_size : 24;
  for (std::size_t i = 0; i < shown; ++i) name[7 + i] = (key[i] >= 0x20 && key[i] < 0x7f) ? static_cast<char>(key[i]) : '?';
  std::memcpy(name + 7 + shown, "'", 2);
  if (size != kDbRecord) return fail(main, pgno, "the record of database %s has %llu bytes, not %zu", name + 6, static_cast<unsigned long long>(size), kDbRecord);
  Tree sub{Kind::named, name, load_db(record)};
  if (sub.db.flags & (kDupFlags | kIntegerKey | 0x02)) return fail(sub, sub.db.root, "database flags 0x%x (leanembed's are plain)", sub.db.flags);
  if (in.extent == Extent::opening_reads && key_size == 7 && std::memcmp(key, "vectors", 7) == 0) return true;
  return tree(sub, slot);
}

}  // namespace

Verdict check(Input& in) noexcept {
  Walk w{in, 0};
  const auto fail = [&](const char* what) {
    std::snprintf(in.why, in.why_size, "%s", what);
    return Verdict::damaged;
  };
  const auto verdict = [](bool sound) { return sound ? Verdict::sound : Verdict::damaged; };
  if (in.file_pages < 2 || in.page_size < 512) return fail("the file holds no meta pages");
  // LMDB reads the meta page numbered (transaction id & 1) for a snapshot.
  const Tree meta_page{Kind::main, "meta-page", {}};
  if (!w.read_page(meta_page, in.txnid & 1, 0)) return Verdict::damaged;
  const unsigned char* meta = w.buffer(0);
  if (load<std::uint32_t>(meta + kMetaMagicAt) != kMetaMagic || load<std::uint32_t>(meta + kMetaVersionAt) != kMetaVersion)
    return fail("its meta page is not LMDB's");
  if (load<std::uint64_t>(meta + kTxnIdAt) != in.txnid) {
    std::snprintf(in.why, in.why_size, "meta page %llu records transaction %llu, the snapshot is %llu",
                  static_cast<unsigned long long>(in.txnid & 1), static_cast<unsigned long long>(load<std::uint64_t>(meta + kTxnIdAt)),
                  static_cast<unsigned long long>(in.txnid));
    return Verdict::snapshot_gone;
  }
  w.last_page = load<std::uint64_t>(meta + kLastPageAt);
  if (w.last_page < 1 || w.last_page >= in.file_pages) {
    std::snprintf(in.why, in.why_size, "its meta page records last page %llu, the file holds %llu pages",
                  static_cast<unsigned long long>(w.last_page), static_cast<unsigned long long>(in.file_pages));
    return Verdict::damaged;
  }
  w.mark(0);  // the meta pages: no tree or free-list record may name them
  w.mark(1);
  // (The free tree's md_flags hold the environment's flags, not a database's: not checked.)
  Tree free_tree{Kind::free_pages, "free-page", load_db(meta + kFreeDbAt)};
  Tree main_tree{Kind::main, "main", load_db(meta + kMainDbAt)};
  if (main_tree.db.flags != 0)
    return verdict(w.fail(main_tree, main_tree.db.root, "database flags 0x%x (leanembed's is plain)", main_tree.db.flags));
  if (in.extent == Extent::opening_reads) return w.tree(main_tree, 1) ? Verdict::sound : Verdict::damaged;
  // The main tree (and the trees it names) first: then every page a tree uses is claimed when the
  // free tree's records are read.
  if (!w.tree(main_tree, 1) || !w.tree(free_tree, 1)) return w.stopped ? Verdict::stopped : Verdict::damaged;
  return Verdict::sound;
}

}  // namespace leanembed::cache::lmdb_structure
