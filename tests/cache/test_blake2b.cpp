// BLAKE2b against RFC 7693 (Appendix A vector, Appendix E self-test) and digests from Python's
// hashlib (an independent implementation), plus fingerprint_file on the shared MiniLM file.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "cache/blake2b.h"
#include "cache_test_util.h"
#include "leanembed/cache.h"
#include "leanembed/error.h"

namespace leanembed::cache {
namespace {

using test::hex;

std::string digest_hex(std::span<const std::byte> data, std::size_t out_len, std::span<const std::byte> key = {}) {
  Blake2b h(out_len, key);
  h.update(data);
  std::vector<std::byte> out(out_len);
  h.finish(out);
  return hex(out);
}

std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

TEST(Blake2b, Rfc7693AppendixA) {
  EXPECT_EQ(digest_hex(bytes_of("abc"), 64),
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
            "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
}

// RFC 7693 Appendix E: a Fibonacci-generated input sequence.
std::vector<std::byte> selftest_seq(std::size_t len, std::uint32_t seed) {
  std::vector<std::byte> out(len);
  std::uint32_t a = 0xDEAD4BAD * seed, b = 1;
  for (std::size_t i = 0; i < len; ++i) {
    std::uint32_t t = a + b;
    a = b;
    b = t;
    out[i] = static_cast<std::byte>((t >> 24) & 0xFF);
  }
  return out;
}

TEST(Blake2b, Rfc7693AppendixESelfTest) {
  const std::size_t md_len[] = {20, 32, 48, 64};
  const std::size_t in_len[] = {0, 3, 128, 129, 255, 1024};
  Blake2b grand(32);
  for (std::size_t outlen : md_len) {
    for (std::size_t inlen : in_len) {
      std::vector<std::byte> in = selftest_seq(inlen, static_cast<std::uint32_t>(inlen));
      std::vector<std::byte> md(outlen);
      Blake2b unkeyed(outlen);
      unkeyed.update(in);
      unkeyed.finish(md);
      grand.update(md);
      std::vector<std::byte> key = selftest_seq(outlen, static_cast<std::uint32_t>(outlen));
      Blake2b keyed(outlen, key);
      keyed.update(in);
      keyed.finish(md);
      grand.update(md);
    }
  }
  std::byte result[32];
  grand.finish(result);
  EXPECT_EQ(hex(result), "c23a7800d98123bd10f506c61e29da5603d763b8bbad2e737f5e765a7bccd475");
}

TEST(Blake2b, MatchesPythonHashlib) {
  EXPECT_EQ(digest_hex({}, 32), "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  EXPECT_EQ(digest_hex(bytes_of("abc"), 32), "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
  std::vector<std::byte> data(1000003);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>((i * 7 + 3) & 255);
  EXPECT_EQ(digest_hex(data, 32), "26eac2928cd76a2d1c4560d812b2127f037c431611d5556a761e5f8445ad10e4");
  std::vector<std::byte> msg(1024), key(64);
  for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<std::byte>(i & 255);
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::byte>(i);
  EXPECT_EQ(digest_hex(msg, 64, key),
            "199c1d5b4f38a954adcaf5f29e2a4792ee3107b813f9a198ae373498690bc93b"
            "57ae16c86c039cb429fb6dd02d05e12a85392c90d46dd9320d143828d3df3266");
}

TEST(Blake2b, AnySplitGivesTheSameDigest) {
  std::vector<std::byte> data(1000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>((i * 31 + 7) & 255);
  const std::string whole = digest_hex(data, 32);
  for (std::size_t step : {1u, 5u, 127u, 128u, 129u, 256u, 999u}) {
    Blake2b h(32);
    for (std::size_t at = 0; at < data.size(); at += step) {
      h.update(std::span(data).subspan(at, std::min(step, data.size() - at)));
    }
    std::byte out[32];
    h.finish(out);
    EXPECT_EQ(hex(out), whole) << "step " << step;
  }
}

TEST(Blake2b, RejectsBadParameters) {
  EXPECT_THROW(Blake2b(0), Error);
  EXPECT_THROW(Blake2b(65), Error);
  std::vector<std::byte> key(65);
  EXPECT_THROW(Blake2b(32, key), Error);
}

TEST(Fingerprint, FileEqualsBytesAndDetectsOneFlippedByte) {
  const std::string dir = test::scratch_dir("fingerprint");
  const std::string path = dir + "/blob.bin";
  std::string content(300000, 'x');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 13);
  { std::ofstream(path, std::ios::binary) << content; }
  ModelFingerprint a = fingerprint_file(path);
  EXPECT_EQ(a, fingerprint_bytes(bytes_of(content)));
  content[150000] ^= 1;
  { std::ofstream(path, std::ios::binary) << content; }
  EXPECT_NE(fingerprint_file(path), a);
  EXPECT_THROW(fingerprint_file(dir + "/missing.onnx"), Error);
  EXPECT_THROW(fingerprint_file(dir), Error);  // a directory
  // Several 1 MiB read pieces and a partial last one; and an empty file.
  std::string big(5 * (1 << 19) + 7, 'y');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 1000);
  { std::ofstream(path, std::ios::binary) << big; }
  EXPECT_EQ(fingerprint_file(path), fingerprint_bytes(bytes_of(big)));
  { std::ofstream(path, std::ios::binary | std::ios::trunc); }
  EXPECT_EQ(fingerprint_file(path), fingerprint_bytes({}));
}

TEST(Fingerprint, SharedMiniLmFileMatchesHashlibAndIsFast) {
  const std::string path = test::shared_dir() + "/models/minilm-l6-synthetic/onnx/model.onnx";
  auto t0 = std::chrono::steady_clock::now();
  ModelFingerprint f = fingerprint_file(path);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Python: hashlib.blake2b(open(path,'rb').read(), digest_size=32).hexdigest()
  EXPECT_EQ(fingerprint_hex(f), "bfa54c12d52fe27f81f42f6533ee24abd42d8a51bd7e392c894c6e4441fa20ca");
  std::printf("[ figure ] fingerprint_file: 90389481 bytes in %.3f s (%.0f MB/s)\n", seconds, 90.389481 / seconds);
}

}  // namespace
}  // namespace leanembed::cache
