// The public embedder (include/leanembed/embedder.h): model folder → tokenizer + engine → pooled,
// normalised vectors in input order.
#include "leanembed/embedder.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <sys/stat.h>

#include "embed/model_folder.h"
#include "leanembed/cache.h"
#include "embed/pooling.h"
#include "kernels/kernels.h"
#include "kernels/threads.h"
#include "leanembed/error.h"
#include "leanembed/tokenizer.h"
#include "onnx/reader.h"
#include "runtime/engine.h"

namespace leanembed {

struct Embedder::Impl {
  EmbedderOptions options;
  ModelFolder folder;
  Tokenizer tokenizer;
  std::unique_ptr<runtime::Engine> engine;
  int64_t hidden = 0;
  int64_t dims = 0;
  int64_t max_length = 0;
  Pooling pooling = Pooling::mean;
  bool normalize = true;
  std::size_t model_file_bytes = 0;
  std::unique_ptr<Cache> cache;                // null without a cache
  std::unique_ptr<CacheKeyMaker> cache_keys;

  Impl(const EmbedderOptions& o, ModelFolder f, Tokenizer t)
      : options(o), folder(std::move(f)), tokenizer(std::move(t)) {}

  void open_cache();
  void embed_sorted_batches(std::span<const std::string_view> texts, std::span<float> out);
  void embed_through_cache(std::span<const std::string_view> texts, std::span<float> out);
};

// The cache's scope is everything but the text that decides a vector: the model file's and the
// tokenizer's bytes, dtype, pooling, normalisation, max length, dims.
void Embedder::Impl::open_cache() {
  if (options.cache_dir.empty() && options.cache_memory_bytes == 0) return;
  CacheScope scope;
  scope.model = fingerprint_file(folder.onnx_path);
  scope.dtype = options.location.model_file.empty() ? dtype_name(options.location.dtype) : "file";
  scope.pooling = pooling_name(pooling);
  scope.normalize = normalize;
  scope.max_length = max_length;
  scope.dims = dims;
  scope.extra = fingerprint_hex(fingerprint_file(tokenizer.source()));
  cache_keys = std::make_unique<CacheKeyMaker>(scope);
  CacheOptions co;
  co.memory_bytes = options.cache_memory_bytes;
  co.directory = options.cache_dir;
  auto warn = options.on_warning;
  co.on_warning = [warn](const CacheWarning& w) {
    if (warn) warn(w.message);
    else std::fprintf(stderr, "leanembed: cache: %s\n", w.message.c_str());
  };
  cache = std::make_unique<Cache>(co);
}

// Looks every text up; embeds the misses only (in one sorted, batched pass) and stores them.
void Embedder::Impl::embed_through_cache(std::span<const std::string_view> texts, std::span<float> out) {
  std::vector<CacheKey> keys;
  keys.reserve(texts.size());
  for (std::string_view t : texts) keys.push_back(cache_keys->key(t));
  std::vector<uint8_t> found(texts.size(), 0);
  if (cache->get_many(keys, out, found) == texts.size()) return;
  std::vector<std::string_view> missing;
  std::vector<CacheKey> missing_keys;
  std::vector<std::size_t> where;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (found[i]) continue;
    missing.push_back(texts[i]);
    missing_keys.push_back(keys[i]);
    where.push_back(i);
  }
  std::vector<float> vectors(missing.size() * static_cast<std::size_t>(dims));
  embed_sorted_batches(missing, vectors);
  for (std::size_t k = 0; k < where.size(); ++k)
    std::copy_n(vectors.begin() + k * dims, dims, out.begin() + where[k] * dims);
  cache->put_many(missing_keys, vectors);
}

namespace {

void check_options(const EmbedderOptions& o) {
  auto bad = [](const std::string& what) { throw Error(ErrorCode::invalid_argument, what); };
  if (o.threads < 0) bad("threads must be >= 0 (0 = all cores), got " + std::to_string(o.threads));
  if (o.batch_size < 1) bad("batch_size must be >= 1, got " + std::to_string(o.batch_size));
  if (o.batch_tokens < 1) bad("batch_tokens must be >= 1, got " + std::to_string(o.batch_tokens));
  if (o.max_length < 0) bad("max_length must be >= 0 (0 = the model's), got " + std::to_string(o.max_length));
  if (o.dims < 0) bad("dims must be >= 0 (0 = all), got " + std::to_string(o.dims));
}

Tokenizer load_tokenizer(const ModelFolder& f) {
  if (!f.tokenizer_json.empty()) return Tokenizer::from_tokenizer_json(f.tokenizer_json);
  std::string special = f.folder + "/special_tokens_map.json";
  struct stat st {};
  if (::stat(special.c_str(), &st) != 0) special.clear();
  return Tokenizer::from_vocab_txt(f.vocab_txt, f.tokenizer_config_json, special);
}

runtime::PathChoice path_choice(ExecutionPath p) {
  switch (p) {
    case ExecutionPath::fast: return runtime::PathChoice::fast;
    case ExecutionPath::interpreter: return runtime::PathChoice::interpreter;
    case ExecutionPath::automatic: break;
  }
  return runtime::PathChoice::automatic;
}

}  // namespace

Embedder::Embedder(const EmbedderOptions& options) {
  check_options(options);
  kernels::threads_set(options.threads);
  ModelFolder folder = resolve_model_folder(options.location);
  Tokenizer tokenizer = load_tokenizer(folder);
  impl_ = std::make_unique<Impl>(options, std::move(folder), std::move(tokenizer));
  Impl& m = *impl_;

  onnx::Model model = onnx::read_model(m.folder.onnx_path);
  struct stat st {};
  if (::stat(m.folder.onnx_path.c_str(), &st) == 0) m.model_file_bytes = static_cast<std::size_t>(st.st_size);
  runtime::EngineOptions eo;
  eo.path = path_choice(options.path);
  eo.keep_arena = options.keep_arena;
  m.engine = std::make_unique<runtime::Engine>(std::move(model), eo, m.folder.hidden_size);

  const runtime::EngineDescription& d = m.engine->description();
  m.max_length = options.max_length > 0 ? options.max_length : m.folder.max_length;
  if (d.max_positions > 0) m.max_length = std::min(m.max_length, d.max_positions);
  if (m.max_length < static_cast<int64_t>(m.tokenizer.num_special_tokens()) + 1) {
    throw Error(ErrorCode::invalid_argument, "max_length " + std::to_string(m.max_length) +
                                                 " leaves no room for a token beside the special tokens");
  }
  m.pooling = options.pooling.value_or(m.folder.pooling);
  m.normalize = options.normalize.value_or(m.folder.normalize);

  // The fast path knows the hidden size from the weights; the interpreter path takes config.json's
  // (a run checks the output against it).
  m.hidden = d.hidden;
  if (m.hidden <= 0) {
    throw Error(ErrorCode::model_format, "cannot tell the hidden size of '" + m.folder.onnx_path +
                                             "': it is not a recognised encoder and config.json has no hidden_size");
  }
  if (options.dims > m.hidden) {
    throw Error(ErrorCode::invalid_argument, "dims " + std::to_string(options.dims) + " is more than the model's " +
                                                 std::to_string(m.hidden) + " dimensions");
  }
  m.dims = options.dims > 0 ? options.dims : m.hidden;
  m.open_cache();
}

Embedder::~Embedder() = default;

int64_t Embedder::dims() const { return impl_->dims; }

void Embedder::embed(std::span<const std::string_view> texts, std::span<float> out) {
  if (out.size() != texts.size() * static_cast<std::size_t>(impl_->dims)) {
    throw Error(ErrorCode::invalid_argument, "embed: out holds " + std::to_string(out.size()) + " floats, " +
                                                 std::to_string(texts.size()) + " texts need " +
                                                 std::to_string(texts.size() * impl_->dims));
  }
  if (impl_->cache) {
    impl_->embed_through_cache(texts, out);
  } else {
    impl_->embed_sorted_batches(texts, out);
  }
}

// Memory per call: the texts' token ids (8 bytes per token, all texts of the call), then per batch
// the packed ids/offsets and the hidden states (batch tokens × hidden × 4 bytes, bounded by
// batch_tokens, or by one text's max_length when a single text is longer) — reused across batches.
void Embedder::Impl::embed_sorted_batches(std::span<const std::string_view> texts, std::span<float> out) {
  const std::size_t n = texts.size();
  std::vector<std::vector<int64_t>> ids(n);
  {
    Encoding e;
    for (std::size_t i = 0; i < n; ++i) {
      tokenizer.encode_into(texts[i], static_cast<std::size_t>(max_length), e);
      ids[i] = e.ids;
    }
  }
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ids[a].size() < ids[b].size(); });

  std::vector<int64_t> packed, offsets;
  std::vector<float> hidden_states, pooled;
  std::size_t next = 0;
  while (next < n) {
    // One batch: at least one text, then as many as fit batch_size and batch_tokens.
    std::size_t end = next;
    int64_t tokens = 0;
    while (end < n && static_cast<int64_t>(end - next) < options.batch_size &&
           (end == next || tokens + static_cast<int64_t>(ids[order[end]].size()) <= options.batch_tokens)) {
      tokens += static_cast<int64_t>(ids[order[end]].size());
      ++end;
    }
    packed.clear();
    offsets.assign(1, 0);
    for (std::size_t k = next; k < end; ++k) {
      const auto& v = ids[order[k]];
      packed.insert(packed.end(), v.begin(), v.end());
      offsets.push_back(static_cast<int64_t>(packed.size()));
    }
    hidden_states.resize(packed.size() * static_cast<std::size_t>(hidden));
    engine->run(packed, {}, offsets, hidden_states);
    const std::size_t count = end - next;
    pooled.resize(count * static_cast<std::size_t>(dims));
    pool_sequences(pooling, hidden_states, hidden, offsets, dims, pooled);
    for (std::size_t k = 0; k < count; ++k) {
      std::span<float> v(pooled.data() + k * dims, static_cast<std::size_t>(dims));
      if (normalize) l2_normalize(v);
      std::copy(v.begin(), v.end(), out.begin() + order[next + k] * dims);
    }
    next = end;
  }
  if (!options.keep_arena) engine->release_work_memory();
}

std::vector<std::vector<float>> Embedder::embed(const std::vector<std::string>& texts) {
  std::vector<std::string_view> views(texts.begin(), texts.end());
  std::vector<float> flat(texts.size() * static_cast<std::size_t>(impl_->dims));
  embed(views, flat);
  std::vector<std::vector<float>> rows(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i)
    rows[i].assign(flat.begin() + i * impl_->dims, flat.begin() + (i + 1) * impl_->dims);
  return rows;
}

std::vector<float> Embedder::embed_one(std::string_view text) {
  std::vector<float> v(static_cast<std::size_t>(impl_->dims));
  embed(std::span<const std::string_view>(&text, 1), v);
  return v;
}

Tokenized Embedder::tokenize(std::string_view text) const {
  Encoding e = impl_->tokenizer.encode(text, static_cast<std::size_t>(impl_->max_length), /*with_tokens=*/true);
  return {std::move(e.ids), std::move(e.tokens)};
}

EmbedderInfo Embedder::info() const {
  const Impl& m = *impl_;
  const runtime::EngineDescription& d = m.engine->description();
  EmbedderInfo i;
  i.folder = m.folder.folder;
  i.onnx_path = m.folder.onnx_path;
  i.tokenizer_path = m.tokenizer.source();
  i.model_type = m.folder.model_type;
  i.hidden_size = m.hidden;
  i.layers = d.layers;
  i.heads = d.heads;
  i.max_length = m.max_length;
  i.max_length_source = m.options.max_length > 0 ? "option" : m.folder.max_length_source;
  i.dims = m.dims;
  i.pooling = m.pooling;
  i.normalize = m.normalize;
  i.dtype = m.options.location.model_file.empty() ? dtype_name(m.options.location.dtype) : "from --model-file";
  i.path = d.path;
  i.path_reason = d.reason;
  i.kernels = std::string(kernels::row_kernels().isa) + " row kernels + oneDNN matmul";
  i.threads = kernels::threads_get();
  i.model_file_bytes = m.model_file_bytes;
  const int64_t tokens = std::min(m.options.batch_tokens, m.options.batch_size * m.max_length);
  const int64_t seqs = std::min<int64_t>(m.options.batch_size, tokens);
  i.planned_arena_bytes = m.engine->planned_bytes(seqs, tokens, std::min(m.max_length, tokens));
  if (m.cache) {
    const CacheStats c = m.cache->stats();
    i.cache_enabled = true;
    i.cache_problem = m.cache->status().disk_problem;
    i.cache_hits = c.memory_hits + c.disk_hits;
    i.cache_misses = c.misses;
    i.cache_hit_rate = c.hit_rate;
    i.cache_entries_memory = c.memory_entries;
    i.cache_entries_disk = c.disk_entries;
    i.cache_bytes_memory = c.memory_bytes;
    i.cache_bytes_disk = c.disk_used_bytes;
  }
  return i;
}

}  // namespace leanembed
