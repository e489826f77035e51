// A string -> id hash table for WordPiece vocabularies: keys live in one arena, slots are 16
// bytes (open addressing, linear probing, load factor <= 1/2). Lookups take string_views and
// never allocate. Memory: the key bytes + 32 bytes per entry (rounded to a power of two).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace leanembed::tokenizer {

class VocabTable {
 public:
  // Builds the table; a key given twice keeps the later id (as the Rust library's HashMap does).
  // Throws Error(model_format) naming `what` if the keys exceed 4 GiB in total.
  void build(const std::vector<std::pair<std::string_view, std::uint32_t>>& entries,
             const std::string& what);
  // The id of `key`, or -1.
  std::int64_t find(std::string_view key) const noexcept;
  std::size_t size() const noexcept { return size_; }
  // Length in bytes of the longest key (0 when empty): longer strings are never looked up.
  std::size_t max_key_length() const noexcept { return max_key_length_; }
  // Bytes this table holds on the heap: the slot array and the key arena (capacities).
  std::size_t memory_bytes() const noexcept { return slots_.capacity() * sizeof(Slot) + arena_.capacity(); }

 private:
  struct Slot {
    std::uint32_t tag;     // high bits of the hash
    std::uint32_t offset;  // key position in arena_
    std::uint32_t length;  // key length; UINT32_MAX marks an empty slot
    std::uint32_t id;
  };
  std::vector<Slot> slots_;
  std::string arena_;
  std::uint64_t mask_ = 0;
  std::size_t size_ = 0;
  std::size_t max_key_length_ = 0;
};

std::uint64_t hash_bytes(const char* data, std::size_t n) noexcept;

}  // namespace leanembed::tokenizer
