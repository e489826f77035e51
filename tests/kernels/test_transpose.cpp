// Transposition (kernels/transpose.h): the reference against the definition, and every table this
// CPU runs — and the table the dispatch picks under the ISA cap in effect (ctest also runs this
// executable under LEANEMBED_ISA caps) — against the reference, bit for bit: odd shapes (not
// multiples of 8 or 16), 1 x N, N x 1, MiniLM's 384 x 384, 1536 x 384, 384 x 1536; sources at every
// byte offset mod 4, destinations off 64-byte alignment; random bits (NaN payloads, signalling
// NaNs, subnormals, infinities included); nothing written past the destination.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/float16.h"
#include "kernels/cpu_features.h"
#include "kernels/dispatch.h"
#include "kernels/transpose.h"

namespace leanembed::kernels {
namespace {

const std::vector<std::pair<int64_t, int64_t>> kShapes = {
    {1, 1},   {1, 7},    {7, 1},    {1, 384},  {384, 1},  {1, 1536}, {1536, 1},  {2, 3},    {3, 2},
    {5, 9},   {7, 13},   {8, 8},    {9, 17},   {15, 33},  {16, 16},  {17, 31},   {23, 5},   {31, 47},
    {33, 8},  {8, 33},   {40, 24},  {47, 65},  {63, 129}, {64, 64},  {100, 37},  {384, 384}, {1536, 384},
    {384, 1536}, {385, 383}, {383, 1537}};

enum class Kind { copy32, copy16, bf16_to_f32 };
const Kind kKinds[] = {Kind::copy32, Kind::copy16, Kind::bf16_to_f32};
const char* kind_name(Kind k) { return k == Kind::copy32 ? "copy32" : k == Kind::copy16 ? "copy16" : "bf16_to_f32"; }
int in_bytes(Kind k) { return k == Kind::copy32 ? 4 : 2; }
int out_bytes(Kind k) { return k == Kind::copy16 ? 2 : 4; }

constexpr std::size_t kGuard = 64;  // bytes past the destination that must stay untouched
constexpr unsigned char kFill = 0xA5;

// The destination bytes of `table` on src (rows x cols of `kind`'s input), written at `dst_offset`
// bytes into a buffer prefilled with kFill; the whole buffer is returned (checked for the guard).
std::vector<unsigned char> run(const TransposeKernels& table, Kind kind, const std::byte* src, int64_t rows,
                               int64_t cols, std::size_t dst_offset) {
  const std::size_t bytes = static_cast<std::size_t>(rows * cols) * out_bytes(kind);
  // 64-byte aligned storage, then an offset (a multiple of the element size: the loader's block is aligned).
  auto* raw = static_cast<unsigned char*>(std::aligned_alloc(64, (dst_offset + bytes + kGuard + 63) / 64 * 64));
  std::memset(raw, kFill, dst_offset + bytes + kGuard);
  void* dst = raw + dst_offset;
  switch (kind) {
    case Kind::copy32: table.copy32(src, rows, cols, static_cast<uint32_t*>(dst)); break;
    case Kind::copy16: table.copy16(src, rows, cols, static_cast<uint16_t*>(dst)); break;
    case Kind::bf16_to_f32: table.bf16_to_f32(src, rows, cols, static_cast<uint32_t*>(dst)); break;
  }
  std::vector<unsigned char> out(raw, raw + dst_offset + bytes + kGuard);
  std::free(raw);
  return out;
}

// Random source bytes at `offset` into the returned buffer.
std::vector<std::byte> random_source(int64_t rows, int64_t cols, Kind kind, std::size_t offset, std::mt19937& gen) {
  std::vector<std::byte> buf(offset + static_cast<std::size_t>(rows * cols) * in_bytes(kind) + 1);
  for (std::byte& b : buf) b = static_cast<std::byte>(gen() & 0xFF);
  return buf;
}

void expect_guard(const std::vector<unsigned char>& out, std::size_t dst_offset, std::size_t bytes, const std::string& what) {
  for (std::size_t i = 0; i < dst_offset; ++i) ASSERT_EQ(out[i], kFill) << what << ": wrote before dst";
  for (std::size_t i = dst_offset + bytes; i < out.size(); ++i) ASSERT_EQ(out[i], kFill) << what << ": wrote past dst";
}

// `table` against the reference over every shape, source offsets 0-3, two destination offsets.
void expect_matches_reference(const TransposeKernels& table) {
  std::mt19937 gen(13);
  const TransposeKernels& ref = transpose_kernels_reference();
  for (Kind kind : kKinds)
    for (auto [rows, cols] : kShapes)
      for (std::size_t src_offset : {0, 1, 2, 3}) {
        const std::size_t dst_offset = src_offset % 2 ? static_cast<std::size_t>(out_bytes(kind)) : 0;
        const std::vector<std::byte> src = random_source(rows, cols, kind, src_offset, gen);
        const std::string what = std::string(table.isa) + " " + kind_name(kind) + " " + std::to_string(rows) + " x " +
                                 std::to_string(cols) + ", src offset " + std::to_string(src_offset) + ", dst offset " +
                                 std::to_string(dst_offset);
        const auto want = run(ref, kind, src.data() + src_offset, rows, cols, dst_offset);
        const auto got = run(table, kind, src.data() + src_offset, rows, cols, dst_offset);
        ASSERT_EQ(got.size(), want.size());
        if (got != want) {  // name the first element that differs
          const std::size_t n = static_cast<std::size_t>(out_bytes(kind));
          std::size_t at = dst_offset;
          while (at < got.size() && std::memcmp(&got[at], &want[at], n) == 0) at += n;
          const int64_t e = static_cast<int64_t>((at - dst_offset) / n);
          FAIL() << what << ": first difference at destination element " << e << " (row " << e / rows << ", column "
                 << e % rows << ")";
        }
        expect_guard(got, dst_offset, static_cast<std::size_t>(rows * cols) * out_bytes(kind), what);
      }
}

std::vector<const TransposeKernels*> tables_this_cpu_runs() {
  std::vector<const TransposeKernels*> tables{&transpose_kernels_reference()};
  if (cpu_has_avx2_fma()) tables.push_back(&transpose_kernels_avx2());
  return tables;
}

TEST(Transpose, ReferenceIsTheDefinition) {
  const int64_t rows = 3, cols = 5;
  std::vector<uint32_t> s32(rows * cols);
  std::vector<uint16_t> s16(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      s32[r * cols + c] = static_cast<uint32_t>(0x10000 * r + c + 0x7FC00001u);  // NaN bits among them
      s16[r * cols + c] = static_cast<uint16_t>(0x100 * r + c + 0x7C01);
    }
  std::vector<uint32_t> d32(rows * cols), w32(rows * cols);
  std::vector<uint16_t> d16(rows * cols);
  const TransposeKernels& ref = transpose_kernels_reference();
  ref.copy32(reinterpret_cast<const std::byte*>(s32.data()), rows, cols, d32.data());
  ref.copy16(reinterpret_cast<const std::byte*>(s16.data()), rows, cols, d16.data());
  ref.bf16_to_f32(reinterpret_cast<const std::byte*>(s16.data()), rows, cols, w32.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      EXPECT_EQ(d32[c * rows + r], s32[r * cols + c]);
      EXPECT_EQ(d16[c * rows + r], s16[r * cols + c]);
      float widened = bfloat16_to_float(s16[r * cols + c]);
      uint32_t bits;
      std::memcpy(&bits, &widened, 4);
      EXPECT_EQ(w32[c * rows + r], bits);
    }
}

TEST(Transpose, EachTableFastMatchesReferenceOverShapes) {
  for (const TransposeKernels* table : tables_this_cpu_runs()) expect_matches_reference(*table);
}

// What runs under the cap in effect (LEANEMBED_ISA): the expected table, bit-identical to the reference.
TEST(Transpose, DispatchedTableMatchesReference) {
  const Isa level = kernel_config().isa;
  EXPECT_STREQ(transpose_kernels().isa, level >= Isa::avx2 && cpu_has_avx2_fma() ? "avx2" : "ref")
      << "level " << isa_name(level);
  expect_matches_reference(transpose_kernels());
}

TEST(Transpose, EmptyMatricesWriteNothing) {
  const std::byte src[4] = {};
  for (const TransposeKernels* table : tables_this_cpu_runs())
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{0, 0}, {0, 9}, {9, 0}}) {
      for (Kind kind : kKinds) {
        const auto got = run(*table, kind, src, rows, cols, 0);
        expect_guard(got, 0, 0, std::string(table->isa) + " " + kind_name(kind) + " empty");
      }
    }
}

}  // namespace
}  // namespace leanembed::kernels
