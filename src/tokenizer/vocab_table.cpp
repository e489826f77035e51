#include "tokenizer/vocab_table.h"

#include <cstring>
#include <limits>

#include "leanembed/error.h"

namespace leanembed::tokenizer {

std::uint64_t hash_bytes(const char* p, std::size_t n) noexcept {
  constexpr std::uint64_t k1 = 0x9FB21C651E98DF25ull;
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * k1;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n) {
    std::uint64_t v = 0;
    std::memcpy(&v, p, n);
    h = (h ^ v) * k1;
    h ^= h >> 29;
  }
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  return h;
}

void VocabTable::build(const std::vector<std::pair<std::string_view, std::uint32_t>>& entries,
                       const std::string& what) {
  constexpr std::uint32_t empty = std::numeric_limits<std::uint32_t>::max();
  std::size_t total = 0;
  for (const auto& e : entries) total += e.first.size();
  if (total >= empty || entries.size() >= (std::size_t{1} << 30)) {
    throw Error(ErrorCode::model_format, what + ": vocabulary too large (" + std::to_string(entries.size()) +
                                             " entries, " + std::to_string(total) + " bytes)");
  }
  std::size_t capacity = 16;
  while (capacity < entries.size() * 2) capacity *= 2;
  slots_.assign(capacity, Slot{0, 0, empty, 0});
  mask_ = capacity - 1;
  arena_.clear();
  arena_.reserve(total);
  size_ = 0;
  max_key_length_ = 0;
  for (const auto& [key, id] : entries) {
    std::uint64_t h = hash_bytes(key.data(), key.size());
    auto tag = static_cast<std::uint32_t>(h >> 32);
    for (std::uint64_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.length == empty) {
        s = Slot{tag, static_cast<std::uint32_t>(arena_.size()), static_cast<std::uint32_t>(key.size()), id};
        arena_.append(key);
        ++size_;
        if (key.size() > max_key_length_) max_key_length_ = key.size();
        break;
      }
      if (s.tag == tag && s.length == key.size() &&
          std::memcmp(arena_.data() + s.offset, key.data(), key.size()) == 0) {
        s.id = id;  // later duplicate wins
        break;
      }
    }
  }
}

std::int64_t VocabTable::find(std::string_view key) const noexcept {
  if (size_ == 0 || key.size() > max_key_length_) return -1;
  constexpr std::uint32_t empty = std::numeric_limits<std::uint32_t>::max();
  std::uint64_t h = hash_bytes(key.data(), key.size());
  auto tag = static_cast<std::uint32_t>(h >> 32);
  for (std::uint64_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.length == empty) return -1;
    if (s.tag == tag && s.length == key.size() &&
        std::memcmp(arena_.data() + s.offset, key.data(), key.size()) == 0) {
      return s.id;
    }
  }
}

}  // namespace leanembed::tokenizer
