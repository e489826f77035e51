// The word table read with pread (EmbeddingTable::row_source, RecognizeOptions::table_rows_by_pread):
// the same values as through the mapping for every table encoding, the same hidden states on the
// tiny model's files, attached only for a table inside the file read_model mapped, and the table's
// pages really stay out of the process (its page table, /proc/self/pagemap).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/file_reader.h"
#include "core/float16.h"
#include "encoder_test_data.h"
#include "leanembed/error.h"
#include "onnx/reader.h"
#include "onnx/writer.h"
#include "quantize/quantize.h"
#include "runtime/engine.h"

namespace leanembed::runtime::encoder {
namespace {

using namespace test_data;

const std::string kTiny = "tiny-bert-synthetic";

onnx::Model read_zero_copy(const std::string& path) {
  return onnx::read_model(path, onnx::ReadOptions{.copy_misaligned = false});
}

EncoderWeights recognize_with(const onnx::Model& m, bool by_pread) {
  RecognizeResult r = recognize_encoder(m, RecognizeOptions{.table_rows_by_pread = by_pread});
  if (!r.weights) throw std::runtime_error("test: " + m.path + " not recognised: " + r.reason);
  return std::move(*r.weights);
}

// The word table's offset in the model file, from the mapping.
std::size_t table_offset(const onnx::Model& m, const EmbeddingTable& t) {
  return static_cast<std::size_t>(t.bytes - m.file_bytes.data());
}

// Runs `batch` on the fast path with each weights; expects the two outputs bit for bit equal.
void expect_identical_runs(EncoderWeights a, EncoderWeights b, const Packed& batch, const std::string& what,
                           kernels::Implementation backend = kernels::Implementation::reference) {
  FastEncoderOptions o;
  o.implementation = backend;
  FastEncoder ea(std::move(a), o), eb(std::move(b), o);
  const std::vector<float> ya = run(ea, batch), yb = run(eb, batch);
  ASSERT_EQ(ya.size(), yb.size());
  EXPECT_EQ(std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)), 0) << what << ": outputs differ";
}

// Pages of [p, p + n) present in this process' page table now (/proc/self/pagemap bit 63).
std::size_t pages_in_process(const void* p, std::size_t n) {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const std::uintptr_t first = reinterpret_cast<std::uintptr_t>(p) / page;
  const std::uintptr_t last = (reinterpret_cast<std::uintptr_t>(p) + n + page - 1) / page;
  std::ifstream pagemap("/proc/self/pagemap", std::ios::binary);
  if (!pagemap) throw std::runtime_error("test: cannot open /proc/self/pagemap");
  std::vector<uint64_t> entries(last - first);
  pagemap.seekg(static_cast<std::streamoff>(first * sizeof(uint64_t)));
  pagemap.read(reinterpret_cast<char*>(entries.data()), static_cast<std::streamsize>(entries.size() * sizeof(uint64_t)));
  if (!pagemap) throw std::runtime_error("test: cannot read /proc/self/pagemap");
  std::size_t present = 0;
  for (uint64_t e : entries) present += (e >> 63) & 1;
  return present;
}

std::string temp_path(const std::string& name) { return test::binary_dir() + "/word_table_pread_" + name; }

void write_bytes(const std::string& path, const std::vector<std::byte>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// ---- EmbeddingTable with and without a row source --------------------------------------------------

struct TableCase {
  const char* name;
  TableEncoding encoding;
  bool per_column;
};

class RowSourceDecoding : public ::testing::TestWithParam<TableCase> {};

// A table of 3000 rows x 7 columns (21000 values: more than the 16 KiB read buffer holds for every
// encoding) in memory and the same bytes at an odd offset of a file: copy_to, add_to and load give
// the same bits for rows, row runs, and ranges that cross the buffer's chunks.
TEST_P(RowSourceDecoding, GivesTheSameValuesAsTheBytesInMemory) {
  const TableCase c = GetParam();
  constexpr int64_t kRows = 3000, kCols = 7, kSize = kRows * kCols;
  constexpr std::size_t kOffset = 13;
  EmbeddingTable memory;
  memory.encoding = c.encoding;
  memory.size = kSize;
  memory.scale = 0.037f;
  memory.zero_point = c.encoding == TableEncoding::uint8 ? 131 : -3;
  if (c.per_column)
    for (int64_t k = 0; k < kCols; ++k) {
      memory.column_scale.push_back(0.01f * static_cast<float>(k + 1));
      memory.column_zero_point.push_back(c.encoding == TableEncoding::uint8 ? 120 + static_cast<int32_t>(k) : static_cast<int32_t>(k) - 3);
    }
  std::vector<std::byte> values(static_cast<std::size_t>(kSize) * memory.element_bytes());
  uint32_t x = 2024;
  auto next = [&] { return x = x * 1664525u + 1013904223u; };
  for (int64_t i = 0; i < kSize; ++i) {
    const float f = static_cast<float>(static_cast<int32_t>(next() >> 8) - (1 << 23)) / static_cast<float>(1 << 23);
    switch (c.encoding) {
      case TableEncoding::fp32: std::memcpy(values.data() + i * 4, &f, 4); break;
      case TableEncoding::fp16: {
        const uint16_t h = float_to_half(f);
        std::memcpy(values.data() + i * 2, &h, 2);
        break;
      }
      case TableEncoding::bf16: {  // safetensors BF16 tables (runtime/encoder/bert_safetensors.h)
        const uint16_t h = float_to_bfloat16(f);
        std::memcpy(values.data() + i * 2, &h, 2);
        break;
      }
      default: values[static_cast<std::size_t>(i)] = static_cast<std::byte>(next() >> 24); break;
    }
  }
  memory.bytes = values.data();
  std::vector<std::byte> file_bytes(kOffset, std::byte{0x5a});
  file_bytes.insert(file_bytes.end(), values.begin(), values.end());
  file_bytes.push_back(std::byte{0x77});
  const std::string path = temp_path(std::string("decode_") + c.name + ".bin");
  write_bytes(path, file_bytes);

  EmbeddingTable from_file = memory;
  from_file.bytes = nullptr;  // a row source never reads `bytes`: a read would crash
  from_file.row_source = std::make_shared<const FileReader>(path);
  from_file.row_source_offset = kOffset;

  struct Range {
    int64_t first, n;
  };
  for (Range r : {Range{0, kCols}, Range{5 * kCols, kCols}, Range{(kRows - 1) * kCols, kCols}, Range{3, 1},
                  Range{0, kSize}, Range{1, kSize - 1}, Range{2, 17000}, Range{100, 0}}) {
    const std::string where = std::string(c.name) + " [" + std::to_string(r.first) + ", +" + std::to_string(r.n) + ")";
    std::vector<float> a(static_cast<std::size_t>(r.n) + 1, -7.0f), b = a;
    memory.copy_to(r.first, r.n, a.data());
    from_file.copy_to(r.first, r.n, b.data());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << where << " copy_to";
    EXPECT_EQ(a.back(), -7.0f) << where << " copy_to wrote past n";
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = b[i] = 0.25f * static_cast<float>(i % 5);
    memory.add_to(r.first, r.n, a.data());
    from_file.add_to(r.first, r.n, b.data());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << where << " add_to";
  }
  for (int64_t i : {int64_t{0}, int64_t{6}, int64_t{7}, kSize / 2 + 3, kSize - 1}) {
    const float a = memory.load(i), b = from_file.load(i);
    EXPECT_EQ(std::memcmp(&a, &b, sizeof a), 0) << c.name << " load(" << i << ")";
  }
  // Guard against a vacuous comparison: the decoded values are not all equal.
  std::vector<float> row(kCols * 2);
  from_file.copy_to(0, kCols * 2, row.data());
  EXPECT_NE(row[0], row[kCols + 1]);
  std::remove(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(Encodings, RowSourceDecoding,
                         ::testing::Values(TableCase{"fp32", TableEncoding::fp32, false},
                                           TableCase{"fp16", TableEncoding::fp16, false},
                                           TableCase{"bf16", TableEncoding::bf16, false},
                                           TableCase{"uint8", TableEncoding::uint8, false},
                                           TableCase{"int8", TableEncoding::int8, false},
                                           TableCase{"uint8_per_column", TableEncoding::uint8, true},
                                           TableCase{"int8_per_column", TableEncoding::int8, true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(RowSource, AFileThatCanNoLongerBeReadIsAnIoErrorNamingIt) {
  const std::string path = temp_path("truncated.bin");
  write_bytes(path, std::vector<std::byte>(4000, std::byte{1}));
  EmbeddingTable t;
  t.encoding = TableEncoding::fp32;
  t.size = 1000;
  t.row_source = std::make_shared<const FileReader>(path);
  std::vector<float> row(10);
  t.copy_to(990, 10, row.data());
  ASSERT_EQ(::truncate(path.c_str(), 2000), 0);
  for (bool add : {false, true}) {
    try {
      add ? t.add_to(990, 10, row.data()) : t.copy_to(990, 10, row.data());
      ADD_FAILURE() << "expected Error(io)";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::io);
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  std::remove(path.c_str());
}

// ---- The recognizer's rule -------------------------------------------------------------------------

TEST(WordTableByPread, IsAttachedForAModelReadFromAFileAndGivesTheSameHiddenStates) {
  const Reference ref = load_reference(kTiny, "model");
  const Packed batch = pack(ref, 0, 24);
  for (bool zero_copy : {true, false}) {
    onnx::ReadOptions options;
    options.copy_misaligned = !zero_copy;
    const onnx::Model m = onnx::read_model(model_file(kTiny, "model.onnx"), options);
    ASSERT_TRUE(m.file_backed);
    EncoderWeights by_pread = recognize_with(m, true), mapped = recognize_with(m, false);
    const onnx::TensorData* table = m.graph.initializer("embeddings.word_embeddings.weight");
    ASSERT_NE(table, nullptr);
    EXPECT_EQ(mapped.word_embeddings.row_source, nullptr);
    // Attached exactly when the reader left the table a view of the file (a misaligned fp32 table
    // is copied by copy_misaligned, and then stays a view of that copy).
    ASSERT_EQ(by_pread.word_embeddings.row_source != nullptr, table->mapped) << "zero_copy " << zero_copy;
    if (by_pread.word_embeddings.row_source) {
      EXPECT_EQ(by_pread.word_embeddings.row_source->path(), m.path);
      EXPECT_EQ(by_pread.word_embeddings.row_source_offset, table_offset(m, by_pread.word_embeddings));
    }
    // Only the word table.
    EXPECT_EQ(by_pread.position_embeddings.row_source, nullptr);
    EXPECT_EQ(by_pread.token_type_embeddings.row_source, nullptr);
    expect_identical_runs(std::move(by_pread), std::move(mapped), batch, "tiny fp32");
  }
}

TEST(WordTableByPread, GivesTheSameHiddenStatesForUint8AndFp16Tables) {
  const Reference ref = load_reference(kTiny, "model");
  const Packed batch = pack(ref, 0, 24);
  struct File {
    std::string path;
    TableEncoding encoding;
    bool per_column;
  };
  // ORT's quantized file (uint8, one scale), the fp16 file, and `leanembed quantize --dtype q8`'s
  // per-column uint8 table (quantized in memory, written to a file, read back).
  onnx::Model source = onnx::read_model(model_file(kTiny, "model.onnx"));
  quantize::QuantizeOptions qo;
  qo.calibration.assign(ref.ids.begin(), ref.ids.begin() + 8);
  qo.fp16_tables = false;  // its default keeps the tables fp16
  const std::string q8 = temp_path("q8.onnx");
  onnx::write_model(quantize::quantize_model(source, Dtype::q8, qo), q8);
  for (const File& f : {File{model_file(kTiny, "model_quantized.onnx"), TableEncoding::uint8, false},
                        File{model_file(kTiny, "model_fp16.onnx"), TableEncoding::fp16, false},
                        File{q8, TableEncoding::uint8, true}}) {
    const onnx::Model m = read_zero_copy(f.path);
    EncoderWeights by_pread = recognize_with(m, true), mapped = recognize_with(m, false);
    EXPECT_EQ(by_pread.word_embeddings.encoding, f.encoding) << f.path;
    EXPECT_EQ(!by_pread.word_embeddings.column_scale.empty(), f.per_column) << f.path;
    ASSERT_NE(by_pread.word_embeddings.row_source, nullptr) << f.path;
    EXPECT_EQ(by_pread.word_embeddings.row_source_offset, table_offset(m, by_pread.word_embeddings));
    expect_identical_runs(std::move(by_pread), std::move(mapped), batch, f.path);
  }
  std::remove(q8.c_str());
}

TEST(WordTableByPread, IsNotAttachedToAModelGivenFromMemory) {
  const std::string path = model_file(kTiny, "model.onnx");
  const std::string text = test::read_file(path);
  auto bytes = std::make_shared<std::vector<std::byte>>(text.size());
  std::memcpy(bytes->data(), text.data(), text.size());
  const onnx::Model m = onnx::parse_model(*bytes, bytes, "", path, onnx::ReadOptions{.copy_misaligned = false});
  EXPECT_FALSE(m.file_backed);
  EncoderWeights w = recognize_with(m, true);
  EXPECT_EQ(w.word_embeddings.row_source, nullptr);
  // It still runs, with the same result as the file read by pread.
  EncoderWeights by_pread = recognize_with(read_zero_copy(path), true);
  ASSERT_NE(by_pread.word_embeddings.row_source, nullptr);
  const Reference ref = load_reference(kTiny, "model");
  expect_identical_runs(std::move(w), std::move(by_pread), pack(ref, 0, 16), "from memory");
}

TEST(WordTableByPread, IsNotAttachedToATableOutsideTheFilesMapping) {
  // A table in memory the model owns (as a quantizer's or the reader's copies are): stays a view.
  onnx::Model m = read_zero_copy(model_file(kTiny, "model.onnx"));
  onnx::TensorData* t = nullptr;
  for (auto& init : m.graph.initializers)
    if (init.name == "embeddings.word_embeddings.weight") t = &init;
  ASSERT_NE(t, nullptr);
  auto copy = std::make_shared<std::vector<std::byte>>(t->bytes.begin(), t->bytes.end());
  t->bytes = *copy;
  t->owner = copy;
  t->mapped = false;
  EncoderWeights w = recognize_with(m, true);
  EXPECT_EQ(w.word_embeddings.row_source, nullptr);
  EXPECT_EQ(static_cast<const void*>(w.word_embeddings.bytes), static_cast<const void*>(copy->data()));
}

// The row source reads through the descriptor read_model mapped (MappedFile::reader()), so the rows
// are the mapped file's whatever the path names later: a file renamed over the path, or the path
// removed, changes nothing (issue 16: one model's bytes only, never another file's rows).
TEST(WordTableByPread, ReadsTheMappedFileEvenWhenThePathWasReplacedOrRemoved) {
  const std::string original = test::read_file(model_file(kTiny, "model.onnx"));
  const std::string path = temp_path("replaced.onnx");
  auto write = [](const std::string& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  write(path, original);
  const onnx::Model m = read_zero_copy(path);
  const EncoderWeights first = recognize_with(m, true);
  ASSERT_NE(first.word_embeddings.row_source, nullptr);
  const std::size_t offset = first.word_embeddings.row_source_offset;
  const std::size_t table_bytes = static_cast<std::size_t>(first.word_embeddings.size) * 4;
  const Reference ref = load_reference(kTiny, "model");
  // Replaced (renamed over) by a file whose first or last table row differs, or whose size differs.
  for (std::size_t at : {offset, offset + table_bytes - 1}) {
    std::string changed = original;
    changed[at] = static_cast<char>(changed[at] ^ 0x40);
    write(path + ".new", changed);
    ASSERT_EQ(std::rename((path + ".new").c_str(), path.c_str()), 0);
    const EncoderWeights w = recognize_with(m, true);
    ASSERT_NE(w.word_embeddings.row_source, nullptr) << "byte " << at << " changed";
    expect_identical_runs(w, recognize_with(m, false), pack(ref, 0, 8), "after a replacement");
  }
  write(path + ".new", original + "x");
  ASSERT_EQ(std::rename((path + ".new").c_str(), path.c_str()), 0);
  EXPECT_NE(recognize_with(m, true).word_embeddings.row_source, nullptr) << "size changed";
  std::remove(path.c_str());
  const EncoderWeights after_removal = recognize_with(m, true);
  EXPECT_NE(after_removal.word_embeddings.row_source, nullptr) << "removed";
  expect_identical_runs(first, recognize_with(m, false), pack(ref, 0, 8), "after removal");
  expect_identical_runs(after_removal, recognize_with(m, false), pack(ref, 0, 8), "attached after removal");
}

// ---- Resident memory and the Engine ----------------------------------------------------------------

TEST(WordTableByPread, KeepsTheTablesPagesOutOfTheProcess) {
  const std::string path = model_file(kTiny, "model.onnx");
  const Reference ref = load_reference(kTiny, "model");
  const Packed batch = pack(ref, 0, ref.ids.size());
  // Two separate mappings of the file, one per way of reading the table.
  const onnx::Model for_pread = read_zero_copy(path), for_mapping = read_zero_copy(path);
  EncoderWeights a = recognize_with(for_pread, true), b = recognize_with(for_mapping, false);
  ASSERT_NE(a.word_embeddings.row_source, nullptr);
  const EmbeddingTable ta = a.word_embeddings, tb = b.word_embeddings;
  const std::size_t table_bytes = static_cast<std::size_t>(ta.size) * ta.element_bytes();
  const std::size_t table_pages = table_bytes / static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  expect_identical_runs(std::move(a), std::move(b), batch, "tiny fp32", kernels::Implementation::fast);
  const std::size_t by_pread = pages_in_process(ta.bytes, table_bytes);
  const std::size_t by_mapping = pages_in_process(tb.bytes, table_bytes);
  std::printf("word table: %zu pages; in the process after %zu sentences: %zu read by pread, %zu through the mapping\n",
              table_pages, ref.ids.size(), by_pread, by_mapping);
  // By pread: at most what faults at the table's two ends bring in — the attach check's reads
  // there and the reads of the tensors stored next to it (the position table is read through the
  // mapping by every run) — each fault mapping up to 16 cached pages around it (the kernel's
  // fault-around), two windows per end at most: 4 x 17. (2 x 17 failed on a fresh machine: 36.)
  // Through the mapping: every row read brings its pages (the measurement sees them).
  EXPECT_LE(by_pread, 4u * 17u);
  EXPECT_GT(by_mapping, 8u * 17u);
}

TEST(WordTableByPread, TheEngineSaysSoAndCanBeToldNotTo) {
  const onnx::Model m = read_zero_copy(model_file(kTiny, "model.onnx"));
  Engine by_pread(m, EngineOptions{.path = ExecutionPath::fast});
  Engine mapped(m, EngineOptions{.path = ExecutionPath::fast, .table_rows_by_pread = false});
  Engine interpreted(m, EngineOptions{.path = ExecutionPath::interpreter});
  EXPECT_TRUE(by_pread.description().word_table_by_pread());
  EXPECT_FALSE(mapped.description().word_table_by_pread());
  EXPECT_FALSE(interpreted.description().word_table_by_pread());
  const Reference ref = load_reference(kTiny, "model");
  const Packed batch = pack(ref, 0, 16);
  const auto hidden = static_cast<std::size_t>(by_pread.description().hidden);
  std::vector<float> a(batch.ids.size() * hidden), b(a.size());
  by_pread.run(batch.ids, batch.types, batch.offsets, a);
  mapped.run(batch.ids, batch.types, batch.offsets, b);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace leanembed::runtime::encoder
