// What the embedder does when the model's files are not what they were: external data in the cache
// key, a model replaced while unloaded, a file rewritten or truncated in place while mapped, a
// model whose file carries bytes the model does not use. (Issue 16, items 1, 2, 3, 12, 13.)
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "embed_test_support.h"
#include "leanembed/embedder.h"
#include "leanembed/error.h"
#include "onnx/reader.h"
#include "safetensors/safetensors.h"

using namespace leanembed;
using test::model_dir;
using test::options_for;
using test::same;
namespace fs = std::filesystem;

namespace {

// A fresh copy of a shared model folder (writable), with only onnx/model.onnx in onnx/.
std::string copy_model(const std::string& model, const std::string& name) {
  const fs::path dst = fs::path(test::binary_dir()) / "model-changes" / name;
  fs::remove_all(dst);
  fs::create_directories(dst.parent_path());
  fs::copy(model_dir(model), dst, fs::copy_options::recursive);
  for (const auto& entry : fs::directory_iterator(dst / "onnx"))
    if (entry.path().filename() != "model.onnx") fs::remove(entry.path());
  for (const auto& entry : fs::recursive_directory_iterator(dst))
    fs::permissions(entry.path(), fs::perms::owner_write, fs::perm_options::add);
  fs::permissions(dst, fs::perms::owner_write, fs::perm_options::add);
  return dst.string();
}

// Byte offset and size of an initializer's bytes inside the file (raw_data stored in the file).
std::pair<std::size_t, std::size_t> tensor_range(const std::string& path, const std::string& name) {
  const onnx::Model m = onnx::read_model(path, onnx::ReadOptions{.copy_misaligned = false});
  const onnx::TensorData* t = m.graph.initializer(name);
  if (t == nullptr || !t->mapped) throw std::runtime_error("test: no mapped initializer " + name + " in " + path);
  return {static_cast<std::size_t>(t->bytes.data() - m.file_bytes.data()), t->bytes.size()};
}

// Writes `bytes` at `offset` of an existing file without truncating it (same inode, same size).
void write_in_place(const std::string& path, std::size_t offset, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

// Float bytes that differ from the synthetic weights (0.25 everywhere).
std::string quarter_floats(std::size_t bytes) {
  std::string b(bytes / 4 * 4, '\0');
  const float q = 0.25f;
  for (std::size_t i = 0; i < b.size(); i += 4) std::memcpy(b.data() + i, &q, 4);
  return b;
}

// The word table of the tiny model: every text's vector depends on it.
constexpr const char* kWordTable = "embeddings.word_embeddings.weight";

const std::vector<std::string> kTexts = {"the first text", "a second text, with more words in it", "x"};

// A folder whose onnx/model.onnx keeps its weights in onnx/model.onnx_data (the external-data form
// ONNX writes for models over 2 GB), made with python3-onnx (Debian's, as ../shared/tools does).
std::string external_data_model(const std::string& name) {
  const std::string dir = copy_model("tiny-bert-synthetic", name);
  const std::string onnx_path = dir + "/onnx/model.onnx";
  const std::string command = "/usr/bin/python3 -c \"import onnx; m = onnx.load('" + onnx_path +
                              "'); onnx.save_model(m, '" + onnx_path +
                              "', save_as_external_data=True, all_tensors_to_one_file=True, "
                              "location='model.onnx_data', size_threshold=1024)\"";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("test: could not write external data: " + command);
  return dir;
}

// A fresh copy of a shared model folder that loads from model.safetensors (no onnx/ folder).
std::string copy_safetensors_model(const std::string& name) {
  const std::string dir = copy_model("tiny-bert-synthetic", name);
  fs::remove_all(fs::path(dir) / "onnx");
  return dir;
}

// Byte offset and size of a tensor's bytes inside a safetensors file.
std::pair<std::size_t, std::size_t> safetensors_range(const std::string& path, const std::string& name) {
  const auto file = safetensors::File::open(path);
  const safetensors::Tensor* t = file->find(name);
  if (t == nullptr) throw std::runtime_error("test: no tensor " + name + " in " + path);
  return {t->file_offset, t->bytes.size()};
}

}  // namespace

// Item 1: two folders with byte-identical model.onnx files but different model.onnx_data must not
// share cache entries.
TEST(ModelChanges, CacheKeyCoversExternalDataFiles) {
  const std::string a = external_data_model("external-a");
  const std::string b = external_data_model("external-b");
  ASSERT_EQ(test::read_file(a + "/onnx/model.onnx"), test::read_file(b + "/onnx/model.onnx"));
  // b's weights differ: the first 4 MiB of its data file (the word table's first 16384 rows: every
  // word of the texts) become 0.25.
  write_in_place(b + "/onnx/model.onnx_data", 0, quarter_floats(4u << 20));

  const std::string cache_dir = fs::path(a).parent_path() / "cache-external";
  fs::remove_all(cache_dir);
  auto options = [&](const std::string& folder, bool cached) {
    EmbedderOptions o = options_for("tiny-bert-synthetic");
    o.location.model = folder;
    if (cached) o.embedding_cache_dir = cache_dir;
    return o;
  };
  const auto want_b = Embedder(options(b, false)).embed(kTexts);
  const auto got_a = Embedder(options(a, true)).embed(kTexts);
  ASSERT_FALSE(same(got_a[0], want_b[0])) << "the test's change to b's weights does not change the vectors";
  Embedder eb(options(b, true));
  const auto got_b = eb.embed(kTexts);
  EXPECT_EQ(eb.info().cache_hits, 0u) << "b's texts were served from a's cache entries";
  for (std::size_t i = 0; i < kTexts.size(); ++i) EXPECT_TRUE(same(got_b[i], want_b[i])) << "text " << i;
}

// Item 2: after an unload, the reload must be the same model; a replaced file fails loudly instead of
// mixing two models' vectors in one stream (or storing the new model's under the old cache scope).
TEST(ModelChanges, ReloadOfAReplacedModelFailsLoudly) {
  const std::string dir = copy_model("tiny-bert-synthetic", "replaced");
  const std::string path = dir + "/onnx/model.onnx";
  EmbedderOptions o = options_for("tiny-bert-synthetic");
  o.location.model = dir;
  o.embedding_cache_dir = dir + "/vectors";
  Embedder e(o);
  const auto before = e.embed(kTexts);
  e.unload();
  // Replace the file as a deployment would: a new file renamed over the old one (other weights).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a new modification time tick
  fs::copy_file(path, path + ".new");
  const auto [offset, bytes] = tensor_range(path + ".new", kWordTable);
  write_in_place(path + ".new", offset, quarter_floats(bytes));
  fs::rename(path + ".new", path);
  try {
    const auto after = e.embed(kTexts);
    ADD_FAILURE() << "the reload read the replaced file without a word; vectors "
                  << (same(after[0], before[0]) ? "equal" : "differ");
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::io) << err.what();
    EXPECT_NE(std::string(err.what()).find(path), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find("changed"), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find("new Embedder"), std::string::npos) << err.what();
  }
  EXPECT_THROW(e.embed(kTexts), Error);  // and it stays refused: never the other model's vectors
  // The same folder, loaded afresh, is the new model (and must not get the old model's vectors).
  Embedder fresh(o);
  EXPECT_FALSE(same(fresh.embed(kTexts)[0], before[0]));
  EXPECT_EQ(fresh.info().cache_hits, 0u);
}

// Item 2: an unload and reload of an unchanged model goes on as before.
TEST(ModelChanges, ReloadOfTheSameModelGoesOn) {
  const std::string dir = copy_model("tiny-bert-synthetic", "same");
  EmbedderOptions o = options_for("tiny-bert-synthetic");
  o.location.model = dir;
  Embedder e(o);
  const auto before = e.embed(kTexts);
  for (int i = 0; i < 3; ++i) {
    e.unload();
    const auto again = e.embed(kTexts);
    for (std::size_t t = 0; t < kTexts.size(); ++t) EXPECT_TRUE(same(again[t], before[t]));
  }
  EXPECT_EQ(e.info().loads, 4u);
}

// Item 3: the mapped file rewritten in place with the same size: an error, never changed vectors.
void expect_rewrite_in_place_is_refused(ExecutionPath path) {
  const std::string dir = copy_model("tiny-bert-synthetic", path == ExecutionPath::fast ? "rewrite-fast" : "rewrite-interp");
  const std::string file = dir + "/onnx/model.onnx";
  EmbedderOptions o = options_for("tiny-bert-synthetic", path);
  o.location.model = dir;
  Embedder e(o);
  const auto before = e.embed(kTexts);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a new modification time tick
  const auto [offset, bytes] = tensor_range(file, kWordTable);
  write_in_place(file, offset, quarter_floats(bytes));
  try {
    const auto after = e.embed(kTexts);
    ADD_FAILURE() << "a rewritten model file was used without a word; the first vector "
                  << (same(after[0], before[0]) ? "is unchanged" : "changed");
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::io) << err.what();
    EXPECT_NE(std::string(err.what()).find(file), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find("changed"), std::string::npos) << err.what();
  }
}
TEST(ModelChanges, RewriteInPlaceFastPathIsAnError) { expect_rewrite_in_place_is_refused(ExecutionPath::fast); }
TEST(ModelChanges, RewriteInPlaceInterpreterIsAnError) { expect_rewrite_in_place_is_refused(ExecutionPath::interpreter); }

// Item 3: the mapped file truncated: an error, never SIGBUS.
void expect_truncation_is_an_error(ExecutionPath path) {
  const std::string dir = copy_model("tiny-bert-synthetic", path == ExecutionPath::fast ? "truncate-fast" : "truncate-interp");
  const std::string file = dir + "/onnx/model.onnx";
  EmbedderOptions o = options_for("tiny-bert-synthetic", path);
  o.location.model = dir;
  Embedder e(o);
  (void)e.embed(kTexts);
  fs::resize_file(file, fs::file_size(file) / 4);
  try {
    (void)e.embed({"different texts than before", "so nothing is warm", "in any cache"});
    ADD_FAILURE() << "a truncated model file was used without a word";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find(file), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find("changed"), std::string::npos) << err.what();
  }
}
TEST(ModelChanges, TruncationFastPathIsAnErrorNotSigbus) { expect_truncation_is_an_error(ExecutionPath::fast); }
TEST(ModelChanges, TruncationInterpreterIsAnErrorNotSigbus) { expect_truncation_is_an_error(ExecutionPath::interpreter); }

// Item 3, while batches run: a writer rewrites the file in place (same size) while callers embed;
// every call returns the original vectors or throws Error. Bounded: until 3 calls after the write. (A truncation while a
// batch runs still raises SIGBUS: see src/embed/README.md, "Model files".)
TEST(ModelChanges, RewriteDuringBatchesNeverMixesVectors) {
  const std::string dir = copy_model("tiny-bert-synthetic", "race-rewrite");
  const std::string file = dir + "/onnx/model.onnx";
  EmbedderOptions o = options_for("tiny-bert-synthetic");
  o.location.model = dir;
  o.batch_size = 1;  // many batches per call: the change lands between and inside batches
  Embedder e(o);
  std::vector<std::string> texts;
  for (int i = 0; i < 16; ++i) texts.push_back("text number " + std::to_string(i) + " with a few more words");
  const auto want = e.embed(texts);
  const auto [offset, bytes] = tensor_range(file, kWordTable);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a new modification time tick
  std::atomic<bool> changed{false};
  std::thread writer([&, offset = offset, bytes = bytes] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    write_in_place(file, offset, quarter_floats(bytes));
    changed = true;
  });
  int wrong = 0, errors = 0, calls_after_change = 0;
  for (int call = 0; call < 100000 && calls_after_change < 3; ++call) {  // until 3 calls after the write
    const bool written = changed;
    try {
      const auto got = e.embed(texts);
      for (std::size_t i = 0; i < texts.size(); ++i) wrong += !same(got[i], want[i]);
    } catch (const Error&) {
      ++errors;
    }
    calls_after_change += written;
  }
  writer.join();
  EXPECT_EQ(wrong, 0) << "vectors of a changed model were returned";
  EXPECT_GT(errors, 0) << "the change was never reported";
}

// Items 2 and 3 for model.safetensors: the word table's rows are read with pread from the file while
// the model runs, so a same-size rewrite in place must be refused like the ONNX file's, and a reload
// of a replaced file must fail loudly.
TEST(ModelChanges, SafetensorsRewriteInPlaceIsAnError) {
  const std::string dir = copy_safetensors_model("st-rewrite");
  const std::string file = dir + "/model.safetensors";
  EmbedderOptions o = options_for("tiny-bert-synthetic");
  o.location.model = dir;
  Embedder e(o);
  ASSERT_EQ(e.info().model_format, "safetensors");
  const auto before = e.embed(kTexts);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a new modification time tick
  const auto [offset, bytes] = safetensors_range(file, kWordTable);
  write_in_place(file, offset, quarter_floats(bytes));
  try {
    const auto after = e.embed({"new texts, so that", "no row is", "warm anywhere"});
    ADD_FAILURE() << "a rewritten model.safetensors was used without a word";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::io) << err.what();
    EXPECT_NE(std::string(err.what()).find(file), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find("changed"), std::string::npos) << err.what();
  }
  EXPECT_THROW(e.embed(kTexts), Error);  // and it stays refused
}

TEST(ModelChanges, SafetensorsReloadOfAReplacedModelFailsLoudly) {
  const std::string dir = copy_safetensors_model("st-replaced");
  const std::string path = dir + "/model.safetensors";
  EmbedderOptions o = options_for("tiny-bert-synthetic");
  o.location.model = dir;
  o.embedding_cache_dir = dir + "/vectors";
  Embedder e(o);
  const auto before = e.embed(kTexts);
  e.unload();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  fs::copy_file(path, path + ".new");
  const auto [offset, bytes] = safetensors_range(path + ".new", kWordTable);
  write_in_place(path + ".new", offset, quarter_floats(bytes));
  fs::rename(path + ".new", path);
  try {
    (void)e.embed(kTexts);
    ADD_FAILURE() << "the reload read the replaced model.safetensors without a word";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::io) << err.what();
    EXPECT_NE(std::string(err.what()).find(path), std::string::npos) << err.what();
  }
  // Loaded afresh it is the new model, under its own cache scope (the fingerprint is of the bytes).
  Embedder fresh(o);
  EXPECT_FALSE(same(fresh.embed(kTexts)[0], before[0]));
  EXPECT_EQ(fresh.info().cache_hits, 0u);
}

// Item 12: on the interpreter path too, max_length is capped by the model's positions (config.json
// max_position_embeddings = 512), so a long text is truncated rather than failing deep in the graph.
TEST(ModelChanges, InterpreterCapsMaxLengthByPositions) {
  EmbedderOptions o = options_for("tiny-bert-synthetic", ExecutionPath::interpreter);
  o.max_length = 1000;
  Embedder e(o);
  EXPECT_EQ(e.info().max_length, 512);
  std::string long_text;
  for (int i = 0; i < 900; ++i) long_text += "word ";
  std::vector<float> v;
  ASSERT_NO_THROW(v = e.embed_one(long_text));
  EmbedderOptions fast = options_for("tiny-bert-synthetic", ExecutionPath::fast);
  fast.max_length = 1000;
  Embedder f(fast);
  EXPECT_EQ(f.info().max_length, 512);
  EXPECT_GT(test::cosine(v, f.embed_one(long_text)), 0.99999);
}

// Item 13: the cache fingerprints what the model uses, not bytes it skips: a model file with a large
// unknown field (valid protobuf, ignored by every reader) has the same cache scope as without it.
TEST(ModelChanges, UnknownFieldsDoNotChangeTheCacheScope) {
  const std::string plain = copy_model("tiny-bert-synthetic", "unknown-plain");
  const std::string padded = copy_model("tiny-bert-synthetic", "unknown-padded");
  {
    // ModelProto field 1000, length-delimited, 16 MiB of zeros, appended (protobuf concatenates).
    std::ofstream out(padded + "/onnx/model.onnx", std::ios::binary | std::ios::app);
    const std::uint64_t key = (1000u << 3) | 2u, length = 16u << 20;
    for (std::uint64_t v : {key, length}) {
      do {
        const char b = static_cast<char>((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        out.put(b);
        v >>= 7;
      } while (v != 0);
    }
    const std::string zeros(1 << 20, '\0');
    for (int i = 0; i < 16; ++i) out << zeros;
  }
  const std::string cache_dir = plain + "/vectors";
  EmbedderOptions o = options_for("tiny-bert-synthetic");
  o.embedding_cache_dir = cache_dir;
  o.location.model = plain;
  const auto want = Embedder(o).embed(kTexts);
  o.location.model = padded;
  Embedder e(o);
  const auto got = e.embed(kTexts);
  EXPECT_EQ(e.info().cache_hits, kTexts.size()) << "the unknown field changed the model's fingerprint";
  for (std::size_t i = 0; i < kTexts.size(); ++i) EXPECT_TRUE(same(got[i], want[i]));
}
