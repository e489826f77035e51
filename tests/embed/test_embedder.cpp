// The embedder end to end: vectors against the reference stack's, batching, the input policy.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <atomic>
#include <random>
#include <thread>

#include "leanembed/embedder.h"
#include "leanembed/error.h"
#include "embed_test_support.h"

using namespace leanembed;
using test::cosine;
using test::model_dir;
using test::options_for;
using test::same;

namespace {

struct Reference {
  std::vector<std::string> sentences;
  std::vector<std::vector<float>> embeddings;
};

Reference load_reference(const std::string& model, const std::string& variant) {
  auto j = nlohmann::json::parse(test::read_file(test::shared_dir() + "/models/expected/" + model + "/" + variant + ".json"));
  Reference r;
  r.sentences = j.at("sentences").get<std::vector<std::string>>();
  r.embeddings = j.at("embeddings").get<std::vector<std::vector<float>>>();
  return r;
}

double min_cosine(const std::vector<std::vector<float>>& got, const std::vector<std::vector<float>>& want) {
  EXPECT_EQ(got.size(), want.size());
  double m = 1;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) m = std::min(m, cosine(got[i], want[i]));
  return m;
}

}  // namespace

TEST(Embedder, MiniLmFastPathMatchesPyTorch) {
  Reference ref = load_reference("minilm-l6-synthetic", "torch_fp32");
  Embedder e(options_for("minilm-l6-synthetic"));
  EXPECT_EQ(e.info().path, "fast");
  EXPECT_EQ(e.dims(), 384);
  double m = min_cosine(e.embed(ref.sentences), ref.embeddings);
  RecordProperty("min_cosine", std::to_string(m));
  EXPECT_GE(m, 0.99999);
}

TEST(Embedder, MiniLmFastPathMatchesOnnxRuntime) {
  Reference ref = load_reference("minilm-l6-synthetic", "model");
  Embedder e(options_for("minilm-l6-synthetic"));
  EXPECT_GE(min_cosine(e.embed(ref.sentences), ref.embeddings), 0.99999);
}

TEST(Embedder, TinyBothPathsBothOpsetsMatchPyTorch) {
  Reference ref = load_reference("tiny-bert-synthetic", "torch_fp32");
  for (const char* file : {"onnx/model.onnx", "onnx/model_opset17.onnx"}) {
    for (ExecutionPath path : {ExecutionPath::fast, ExecutionPath::interpreter}) {
      EmbedderOptions o = options_for("tiny-bert-synthetic", path);
      o.location.model_file = file;
      Embedder e(o);
      EXPECT_EQ(e.info().path, path == ExecutionPath::fast ? "fast" : "interpreter");
      EXPECT_GE(min_cosine(e.embed(ref.sentences), ref.embeddings), 0.99999) << file;
    }
  }
}

TEST(Embedder, OnnxRuntimeOptimizedFileRunsOnTheInterpreter) {
  Reference ref = load_reference("tiny-bert-synthetic", "model_ort_optimized");
  EmbedderOptions o = options_for("tiny-bert-synthetic");
  o.location.model_file = "onnx/model_ort_optimized.onnx";
  Embedder e(o);
  EXPECT_EQ(e.info().path, "interpreter");
  EXPECT_NE(e.info().path_reason.find("not a recognised encoder"), std::string::npos) << e.info().path_reason;
  EXPECT_GE(min_cosine(e.embed(ref.sentences), ref.embeddings), 0.99999);
}

TEST(Embedder, OrderIsKeptWhateverTheBatching) {
  Reference ref = load_reference("tiny-bert-synthetic", "torch_fp32");
  std::vector<std::string> texts = ref.sentences;
  texts.push_back("");
  texts.push_back(std::string(3000, 'a') + " tail");
  std::mt19937 rng(7);
  std::shuffle(texts.begin(), texts.end(), rng);
  EmbedderOptions big = options_for("tiny-bert-synthetic");
  Embedder all_at_once(big);
  std::vector<std::vector<float>> a = all_at_once.embed(texts);
  EmbedderOptions small = big;
  small.batch_size = 3;
  small.batch_tokens = 40;
  small.keep_arena = false;
  Embedder batched(small);
  std::vector<std::vector<float>> b = batched.embed(texts);
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<float> one = batched.embed_one(texts[i]);
    EXPECT_GE(cosine(a[i], one), 0.999999) << "text " << i;
    EXPECT_GE(cosine(b[i], one), 0.999999) << "text " << i;
  }
}

TEST(Embedder, EmptyTextIsClsSep) {
  Embedder e(options_for("tiny-bert-synthetic"));
  EXPECT_EQ(e.tokenize("").ids, (std::vector<int64_t>{101, 102}));
  std::vector<float> v = e.embed_one("");
  double n = 0;
  for (float x : v) n += double(x) * x;
  EXPECT_NEAR(n, 1.0, 1e-5);
}

TEST(Embedder, LongTextIsTruncatedToMaxLength) {
  EmbedderOptions o = options_for("tiny-bert-synthetic");
  Embedder e(o);  // max_length 256 from sentence_bert_config.json
  std::string word_times_1000, word_times_254;
  for (int i = 0; i < 1000; ++i) word_times_1000 += "hello ";
  for (int i = 0; i < 254; ++i) word_times_254 += "hello ";
  EXPECT_EQ(e.tokenize(word_times_1000).ids.size(), 256u);
  EXPECT_EQ(e.tokenize(word_times_1000).ids.back(), 102);
  EXPECT_GE(cosine(e.embed_one(word_times_1000), e.embed_one(word_times_254)), 0.9999999);
  o.max_length = 16;
  Embedder short_one(o);
  EXPECT_EQ(short_one.tokenize(word_times_1000).ids.size(), 16u);
}

TEST(Embedder, InvalidUtf8IsReplacedNotRejected) {
  Embedder e(options_for("tiny-bert-synthetic"));
  // "caf\xC3" is cut mid-sequence: it decodes as "caf\uFFFD", and clean_text drops U+FFFD.
  std::vector<float> bad = e.embed_one(std::string("caf\xC3 au lait\xFF"));
  std::vector<float> good = e.embed_one("caf au lait");
  EXPECT_GE(cosine(bad, good), 0.9999999);
}

TEST(Embedder, PoolingNormalizeAndDimsOptions) {
  EmbedderOptions o = options_for("tiny-bert-synthetic");
  Embedder full(o);
  o.dims = 16;
  Embedder cut(o);
  EXPECT_EQ(cut.dims(), 16);
  std::vector<float> f = full.embed_one("matryoshka vectors"), c = cut.embed_one("matryoshka vectors");
  ASSERT_EQ(c.size(), 16u);
  // The cut vector is the renormalised head of the full one.
  EXPECT_GE(cosine(std::span<const float>(f.data(), 16), c), 0.9999999);
  o.dims = 0;
  o.normalize = false;
  o.pooling = Pooling::cls;
  Embedder raw(o);
  EXPECT_EQ(raw.info().pooling, Pooling::cls);
  double n = 0;
  for (float x : raw.embed_one("not normalised")) n += double(x) * x;
  EXPECT_GT(std::abs(n - 1.0), 1e-3);
  o.dims = 1000;
  EXPECT_THROW(Embedder too_many(o), Error);
}

TEST(Embedder, BadOptionsAndMissingFilesAreTypedErrors) {
  EmbedderOptions o = options_for("tiny-bert-synthetic");
  o.batch_size = 0;
  try {
    Embedder e(o);
    FAIL();
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::invalid_argument);
  }
  o = options_for("minilm-l6-synthetic");
  o.location.dtype = Dtype::q4f16;  // not one we quantize at load, and not in the folder
  try {
    Embedder e(o);
    FAIL();
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::io);
    EXPECT_NE(std::string(err.what()).find("model_q4f16.onnx"), std::string::npos);
  }
  o = options_for("tiny-bert-synthetic", ExecutionPath::fast);
  o.location.model_file = "onnx/model_ort_optimized.onnx";
  EXPECT_THROW(Embedder e(o), Error);
}

TEST(Embedder, ConcurrentCallersGetTheSameVectors) {
  Embedder e(options_for("tiny-bert-synthetic"));
  Reference ref = load_reference("tiny-bert-synthetic", "torch_fp32");
  std::vector<std::vector<float>> want = e.embed(ref.sentences);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < ref.sentences.size(); i += 4)
        if (cosine(e.embed_one(ref.sentences[i]), want[i]) < 0.999999) ++mismatches;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Embedder, CacheReturnsTheSameVectorsAndSkipsTheEncoder) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(test::binary_dir()) / "test_embedder_cache";
  fs::remove_all(dir);
  Reference ref = load_reference("tiny-bert-synthetic", "torch_fp32");
  EmbedderOptions plain = options_for("tiny-bert-synthetic");
  std::vector<std::vector<float>> want = Embedder(plain).embed(ref.sentences);

  EmbedderOptions cached = plain;
  cached.embedding_cache_dir = dir.string();
  cached.cache_memory_bytes = 1 << 20;
  {
    Embedder cold(cached);
    EXPECT_EQ(cold.embed(ref.sentences), want);
    EXPECT_EQ(cold.info().cache_misses, ref.sentences.size());
    EXPECT_EQ(cold.embed(ref.sentences), want);  // now from memory
    EXPECT_EQ(cold.info().cache_hits, ref.sentences.size());
  }
  {
    Embedder warm(cached);  // a new embedder: the disk level has them
    EXPECT_EQ(warm.embed(ref.sentences), want);
    EXPECT_EQ(warm.info().cache_hits, ref.sentences.size());
    EXPECT_EQ(warm.info().cache_misses, 0u);
    EXPECT_EQ(warm.info().cache_entries_disk, ref.sentences.size());
  }
  {
    EmbedderOptions other = cached;  // other dims: other vectors, never the cached ones
    other.dims = 32;
    Embedder e(other);
    std::vector<std::vector<float>> got = e.embed({ref.sentences[0]});
    EXPECT_EQ(e.info().cache_misses, 1u);
    EXPECT_EQ(got[0].size(), 32u);
  }
}

TEST(Embedder, CorruptCacheIsSetAsideAndEmbeddingGoesOn) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(test::binary_dir()) / "test_embedder_cache_corrupt";
  fs::remove_all(dir);
  fs::create_directories(dir);
  { std::ofstream(dir / "data.mdb", std::ios::binary) << std::string(70000, 'x'); }
  EmbedderOptions o = options_for("tiny-bert-synthetic");
  o.embedding_cache_dir = dir.string();
  std::vector<std::string> warnings;
  o.on_warning = [&](const std::string& w) { warnings.push_back(w); };
  Embedder e(o);
  std::vector<float> v = e.embed_one("still embedded");
  EXPECT_EQ(v.size(), 64u);
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings[0].find("data.mdb"), std::string::npos) << warnings[0];
  bool moved = false;
  for (const auto& entry : fs::directory_iterator(dir))
    moved |= entry.path().filename().string().starts_with("data.mdb.");
  EXPECT_TRUE(moved);
}
