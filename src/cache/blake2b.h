// BLAKE2b (RFC 7693): the hash behind model fingerprints and cache keys.
//
// Written from the RFC's description; checked against its Appendix A vector and its Appendix E
// self-test in tests/cache. Scalar, portable, ~1 GB/s on one x86-64 core.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace leanembed::cache {

class Blake2b {
 public:
  static constexpr std::size_t block_bytes = 128;
  static constexpr std::size_t max_digest_bytes = 64;
  static constexpr std::size_t max_key_bytes = 64;

  // digest_bytes in 1..64, key.size() in 0..64; throws Error(invalid_argument) otherwise.
  explicit Blake2b(std::size_t digest_bytes = 32, std::span<const std::byte> key = {});

  // Adds bytes to the message. Any split of a message gives the same digest.
  void update(std::span<const std::byte> data);
  void update(const void* data, std::size_t n) {
    update(std::span<const std::byte>(static_cast<const std::byte*>(data), n));
  }

  // Writes digest_bytes() bytes to out (out.size() must be >= digest_bytes()). Call once.
  void finish(std::span<std::byte> out);

  std::size_t digest_bytes() const { return digest_bytes_; }

 private:
  void compress(const std::byte* block, bool last);

  std::array<std::uint64_t, 8> h_{};
  std::uint64_t t0_ = 0, t1_ = 0;                 // message bytes compressed so far (128-bit)
  std::array<std::byte, block_bytes> buffer_{};   // bytes not yet compressed
  std::size_t buffered_ = 0;
  std::size_t digest_bytes_ = 32;
};

// One-shot BLAKE2b-256 of bytes.
std::array<std::uint8_t, 32> blake2b_256(std::span<const std::byte> data);

}  // namespace leanembed::cache
