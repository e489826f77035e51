#include "cache/blake2b.h"

#include <bit>
#include <cstring>
#include <string>
#include <utility>

#include "leanembed/error.h"

namespace leanembed::cache {
namespace {

constexpr std::array<std::uint64_t, 8> kIv = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

// Message word schedule per round (RFC 7693 section 2.7); rounds 10 and 11 reuse rows 0 and 1.
constexpr std::uint8_t kSigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

inline std::uint64_t load_le64(const std::byte* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

// The mixing function G (RFC 7693 section 3.1).
inline void mix(std::uint64_t* v, int a, int b, int c, int d, std::uint64_t x, std::uint64_t y) {
  v[a] = v[a] + v[b] + x;
  v[d] = std::rotr(v[d] ^ v[a], 32);
  v[c] = v[c] + v[d];
  v[b] = std::rotr(v[b] ^ v[c], 24);
  v[a] = v[a] + v[b] + y;
  v[d] = std::rotr(v[d] ^ v[a], 16);
  v[c] = v[c] + v[d];
  v[b] = std::rotr(v[b] ^ v[c], 63);
}

// One round: G on the columns, then on the diagonals.
template <std::size_t R>
inline void round(std::uint64_t* v, const std::uint64_t* m) {
  constexpr const std::uint8_t* s = kSigma[R];
  mix(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
  mix(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
  mix(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
  mix(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
  mix(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
  mix(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
  mix(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
  mix(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
}

}  // namespace

Blake2b::Blake2b(std::size_t digest_bytes, std::span<const std::byte> key) : digest_bytes_(digest_bytes) {
  if (digest_bytes == 0 || digest_bytes > max_digest_bytes || key.size() > max_key_bytes) {
    throw Error(ErrorCode::invalid_argument,
                "BLAKE2b: digest length must be 1..64 and key length 0..64; got " +
                    std::to_string(digest_bytes) + " and " + std::to_string(key.size()));
  }
  h_ = kIv;
  // Parameter block word 0: digest length, key length, fanout 1, depth 1 (sequential mode).
  h_[0] ^= 0x01010000ULL ^ (static_cast<std::uint64_t>(key.size()) << 8) ^ digest_bytes;
  if (!key.empty()) {
    std::array<std::byte, block_bytes> block{};
    std::memcpy(block.data(), key.data(), key.size());
    update(block);  // the key is the first block, zero-padded
  }
}

void Blake2b::compress(const std::byte* block, bool last) {
  std::uint64_t m[16];
  for (int i = 0; i < 16; ++i) m[i] = load_le64(block + 8 * i);
  std::uint64_t v[16];
  for (int i = 0; i < 8; ++i) {
    v[i] = h_[i];
    v[i + 8] = kIv[i];
  }
  v[12] ^= t0_;
  v[13] ^= t1_;
  if (last) v[14] = ~v[14];
  // Twelve rounds, unrolled so that every message index is a compile-time constant.
  [&]<std::size_t... R>(std::index_sequence<R...>) { (round<R>(v, m), ...); }(std::make_index_sequence<12>{});
  for (int i = 0; i < 8; ++i) h_[i] ^= v[i] ^ v[i + 8];
}

void Blake2b::update(std::span<const std::byte> data) {
  const std::byte* p = data.data();
  std::size_t n = data.size();
  auto count = [this](std::uint64_t bytes) {
    t0_ += bytes;
    if (t0_ < bytes) ++t1_;
  };
  while (n > 0) {
    // A full buffer is compressed only once more input arrives: the last block needs the flag.
    if (buffered_ == block_bytes) {
      count(block_bytes);
      compress(buffer_.data(), false);
      buffered_ = 0;
    }
    if (buffered_ == 0) {
      // Whole blocks straight from the input, keeping at least one byte back.
      while (n > block_bytes) {
        count(block_bytes);
        compress(p, false);
        p += block_bytes;
        n -= block_bytes;
      }
    }
    std::size_t take = std::min(n, block_bytes - buffered_);
    std::memcpy(buffer_.data() + buffered_, p, take);
    buffered_ += take;
    p += take;
    n -= take;
  }
}

void Blake2b::finish(std::span<std::byte> out) {
  if (out.size() < digest_bytes_) {
    throw Error(ErrorCode::invalid_argument, "BLAKE2b: output buffer of " + std::to_string(out.size()) +
                                                 " bytes is shorter than the digest (" +
                                                 std::to_string(digest_bytes_) + ")");
  }
  t0_ += buffered_;
  if (t0_ < buffered_) ++t1_;
  std::memset(buffer_.data() + buffered_, 0, block_bytes - buffered_);
  compress(buffer_.data(), true);
  for (std::size_t i = 0; i < digest_bytes_; ++i) {
    out[i] = static_cast<std::byte>((h_[i / 8] >> (8 * (i % 8))) & 0xff);
  }
}

std::array<std::uint8_t, 32> blake2b_256(std::span<const std::byte> data) {
  Blake2b hash(32);
  hash.update(data);
  std::array<std::uint8_t, 32> out{};
  hash.finish(std::as_writable_bytes(std::span(out)));
  return out;
}

}  // namespace leanembed::cache
