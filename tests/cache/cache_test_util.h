// Helpers shared by the cache tests: scratch folders, deterministic keys and vectors, hex.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "leanembed/cache.h"
#include "test_support.h"

namespace leanembed::test {

// A fresh empty folder under the build folder, unique per process and name.
inline std::string scratch_dir(const std::string& name) {
  std::filesystem::path p = std::filesystem::path(binary_dir()) / "cache-test" /
                            (name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

inline CacheScope test_scope(std::int64_t dims = 8) {
  CacheScope s;
  s.model.fill(0x5a);
  s.dtype = "fp32";
  s.pooling = "mean";
  s.normalize = true;
  s.max_length = 256;
  s.dims = dims;
  return s;
}

// Lower-case hex of bytes (digests, records).
inline std::string hex(std::span<const std::byte> bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (std::byte b : bytes) {
    s.push_back(digits[static_cast<unsigned>(b) >> 4]);
    s.push_back(digits[static_cast<unsigned>(b) & 15]);
  }
  return s;
}

inline std::string text_for(std::uint64_t id) { return "text number " + std::to_string(id); }

// The vector stored for text_for(id): distinct per id and per component.
inline std::vector<float> vector_for(std::uint64_t id, std::int64_t dims) {
  std::vector<float> v(static_cast<std::size_t>(dims));
  for (std::int64_t j = 0; j < dims; ++j) v[j] = static_cast<float>(id) * 0.5f + static_cast<float>(j) * 0.001f;
  return v;
}

}  // namespace leanembed::test
