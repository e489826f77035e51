// The public embedder (include/leanembed/embedder.h): model folder → tokenizer + engine → pooled,
// normalised vectors in input order; plus the model's life cycle (idle unload, reload, dispose), the
// memory budget and the embedding cache.
#include "leanembed/embedder.h"

#include <malloc.h>
#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <numeric>
#include <shared_mutex>
#include <thread>

#include "core/file_identity.h"
#include "embed/dense_module.h"
#include "embed/model_fingerprint.h"
#include "embed/model_folder.h"
#include "embed/pooling.h"
#include "kernels/kernels.h"
#include "kernels/threads.h"
#include "leanembed/cache.h"
#include "leanembed/error.h"
#include "leanembed/tokenizer.h"
#include "quantize/calibration.h"
#include "quantize/quantize.h"
#include "runtime/engine.h"
#include "runtime/load_engine.h"
#include "runtime/memory_budget.h"

namespace leanembed {
namespace {

using Clock = std::chrono::steady_clock;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

void check_options(const EmbedderOptions& o) {
  auto bad = [](const std::string& what) { throw Error(ErrorCode::invalid_argument, what); };
  if (o.threads < 0) bad("threads must be >= 0 (0 = all cores), got " + std::to_string(o.threads));
  if (o.force_threads && o.threads > kMaxThreads) {
    bad("threads " + std::to_string(o.threads) + " is more than leanembed runs (" + std::to_string(kMaxThreads) +
        ", even with force_threads)");
  }
  if (o.parallel_min_tokens < -1)
    bad("parallel_min_tokens must be >= -1 (-1 = automatic, 0 = never), got " + std::to_string(o.parallel_min_tokens));
  if (o.batch_size < 1) bad("batch_size must be >= 1, got " + std::to_string(o.batch_size));
  if (o.batch_tokens < 1) bad("batch_tokens must be >= 1, got " + std::to_string(o.batch_tokens));
  if (o.max_length < 0) bad("max_length must be >= 0 (0 = the model's), got " + std::to_string(o.max_length));
  if (o.dims < 0) bad("dims must be >= 0 (0 = all), got " + std::to_string(o.dims));
  if (!(o.idle_unload_seconds >= 0) || !std::isfinite(o.idle_unload_seconds))
    bad("idle_unload_seconds must be a finite number >= 0 (0 = never)");
}

// The cores this process may run on (its CPU affinity; what OpenMP calls the number of procs).
int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

// options.threads, capped at the available cores unless forced (a warning says so).
int thread_count(const EmbedderOptions& o) {
  const int cores = available_cores();
  if (o.threads <= cores || o.force_threads) return o.threads;
  const std::string notice = "threads " + std::to_string(o.threads) + " is more than the " + std::to_string(cores) +
                             " cores this process may run on: using " + std::to_string(cores) +
                             " (more threads than cores only slow each call down; force_threads / --force-threads "
                             "keeps the number asked for)";
  if (o.on_warning) o.on_warning(notice);
  else std::fprintf(stderr, "leanembed: warning: %s\n", notice.c_str());
  return cores;
}


}  // namespace

// What exists only while the model is loaded: unload() frees all of it.
struct Loaded {
  Tokenizer tokenizer;
  std::unique_ptr<runtime::Engine> engine;
  std::size_t arena_held = 0;  // with keep_arena: the engine's arena now (the largest planned since the last release)
  // The mapped files the engine reads its weights from while it runs (runtime::LoadedEngine::
  // files_in_use: the ONNX file and its external data, or the safetensors file): checked around
  // every batch (see "Model files" in src/embed/README.md). Empty when the engine owns its weights
  // (quantized at load).
  std::vector<std::shared_ptr<const MappedFile>> files;
};

struct Embedder::Impl {
  EmbedderOptions options;
  ModelFolder folder;

  // Fixed once the first load has decided them.
  int64_t hidden = 0, dims = 0, max_length = 0;
  int64_t pooled_width = 0;              // after the Dense modules (= hidden without them)
  std::vector<DenseLayer> dense;         // sentence-transformers Dense modules, in order
  Pooling pooling = Pooling::mean;
  bool normalize = true;
  std::size_t model_file_bytes = 0;
  std::size_t work_budget = 0;  // bytes for one batch's work memory (runtime::MemoryBudget); 0 = no budget
  EmbedderInfo description;     // the parts of info() that do not change

  std::unique_ptr<Cache> cache;  // null without a cache
  std::unique_ptr<CacheKeyMaker> cache_keys;

  // Model files. Every file the first load read (model, external data, tokenizer), with its
  // identity: a reload must find the very same files, else it fails (never a second model's
  // vectors under this embedder's name and cache scope). model_changed is set when a batch found
  // a mapped file changed under it; every later call fails with it.
  std::vector<runtime::ReadFile> first_load_files;
  ModelFingerprint fingerprint{};  // model_fingerprint() at the first load (with a cache)
  std::mutex changed_mutex;
  std::string model_changed;

  // Life cycle. `lifecycle` is held shared by every call that uses `loaded` and exclusively to
  // load or unload it, so an unload waits for calls in flight and calls wait for a reload.
  // glibc's rwlock prefers readers, so a steady stream of calls would starve an unload: every
  // lock of `lifecycle` first passes `gate`, which an unloader holds while it waits.
  std::mutex gate;
  std::shared_mutex lifecycle;
  std::unique_ptr<Loaded> loaded;
  bool disposed = false;
  std::atomic<int64_t> last_use_ms{0};
  std::atomic<uint64_t> loads{0}, unloads{0};
  std::atomic<double> last_load_seconds{0};

  // The idle watcher: a thread that unloads the model after idle_unload_seconds without calls.
  std::mutex idle_mutex;
  std::condition_variable idle_cv;
  bool idle_stop = false;
  std::thread idle_thread;

  explicit Impl(const EmbedderOptions& o) : options(o) {}

  std::unique_ptr<Loaded> load(bool first);
  void check_files(const Loaded& l, const char* when);
  void touch() { last_use_ms = now_ms(); }
  template <typename F>
  auto with_loaded(F&& f);
  void unload_locked();
  void watch_idle();
  void stop_idle_watcher();

  std::size_t batch_work_bytes(const runtime::Engine& engine, int64_t sequences, int64_t tokens, int64_t longest) const;
  void open_cache();
  void embed_sorted_batches(Loaded& l, std::span<const std::string_view> texts, std::span<float> out);
  void embed_id_batches(Loaded& l, std::span<const std::span<const int64_t>> ids, std::span<float> out);
  Encoding encode(const Loaded& l, std::string_view text, Truncation truncation, bool with_tokens) const;
  void embed_through_cache(Loaded& l, std::span<const std::string_view> texts, std::span<float> out);
};

namespace {

// The tokenizer's files: tokenizer.json, or vocab.txt with the configs that change its ids.
std::vector<std::string> tokenizer_files(const ModelFolder& folder) {
  if (!folder.tokenizer_json.empty()) return {folder.tokenizer_json};
  return {folder.vocab_txt, folder.tokenizer_config_json, folder.folder + "/special_tokens_map.json"};
}

std::string files_changed_message(const std::string& path, const std::string& change) {
  return "the model file '" + path + "' changed since this embedder first loaded it: " + change +
         ". It is not used: one embedder never mixes two models' vectors (or stores a new model's vectors "
         "under the old model's cache entries). Create a new Embedder (restart the program) to use the new file";
}

}  // namespace

// Reads the model. The first load records every file read and, with a cache, the model's
// fingerprint; a reload (after unload) must read the very same files (same device, inode, size,
// modification and change times) or it throws Error(io) and keeps nothing.
std::unique_ptr<Loaded> Embedder::Impl::load(bool first) {
  const auto t0 = Clock::now();
  auto l = std::make_unique<Loaded>(Loaded{Tokenizer::load(folder.folder), nullptr});
  runtime::LoadOptions lo;
  lo.engine.path = options.path;
  lo.engine.keep_arena = options.keep_arena;
  lo.engine.parallel_min_tokens = options.parallel_min_tokens;
  lo.hidden_hint = folder.hidden_size;
  // The cache's scope: what the model computes with, whichever files hold it (model_fingerprint.h).
  const bool fingerprint_it = first && (!options.embedding_cache_dir.empty() || options.cache_memory_bytes > 0);
  if (fingerprint_it) lo.inspect = [&](const onnx::Model& model) { fingerprint = model_fingerprint(model); };
  // No file for the asked dtype: quantize the fp32 model in memory (its result owns its tensors).
  if (folder.quantize_at_load) {
    lo.transform = [&](const onnx::Model& fp32) {
      quantize::QuantizeOptions qo;
      if (options.location.dtype != Dtype::fp16) qo.calibration = quantize::calibration_ids(l->tokenizer);
      return quantize::quantize_model(fp32, options.location.dtype, qo);
    };
  }
  const bool safetensors = folder.format == ModelFormat::safetensors;
  runtime::LoadedEngine loaded_engine = runtime::load_engine(
      {safetensors ? runtime::ModelFileFormat::safetensors : runtime::ModelFileFormat::onnx, folder.model_path(), folder.config_json},
      lo);
  if (fingerprint_it && safetensors) fingerprint = model_fingerprint(*loaded_engine.files_in_use.front());
  std::vector<runtime::ReadFile> read = std::move(loaded_engine.files_read);
  for (const std::string& path : tokenizer_files(folder)) {
    if (auto id = path.empty() ? std::nullopt : identity_of_path(path)) read.push_back({path, *id});
  }
  if (first) {
    first_load_files = read;
  } else {
    for (const runtime::ReadFile& was : first_load_files) {
      const auto now = std::find_if(read.begin(), read.end(), [&](const runtime::ReadFile& r) { return r.path == was.path; });
      const std::optional<FileIdentity> id = now == read.end() ? identity_of_path(was.path) : std::optional(now->identity);
      if (!id || !(*id == was.identity)) {
        throw Error(ErrorCode::io, files_changed_message(was.path, describe_change(was.identity, id)));
      }
    }
    for (const runtime::ReadFile& r : read) {
      if (std::none_of(first_load_files.begin(), first_load_files.end(), [&](const runtime::ReadFile& w) { return w.path == r.path; }))
        throw Error(ErrorCode::io, files_changed_message(r.path, "the reload reads this file, the first load did not"));
    }
  }
  l->engine = std::move(loaded_engine.engine);
  l->files = std::move(loaded_engine.files_in_use);
  malloc_trim(0);  // loading parsed JSON into many small blocks, now freed: give the pages back
  last_load_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  ++loads;
  return l;
}

// Runs f(Loaded&) with the model loaded (loading it first if it was unloaded) and held loaded until
// f returns.
template <typename F>
auto Embedder::Impl::with_loaded(F&& f) {
  for (;;) {
    {
      std::shared_lock lock(lifecycle, std::defer_lock);
      {
        std::lock_guard pass(gate);
        lock.lock();
      }
      if (disposed) throw Error(ErrorCode::invalid_argument, "this embedder was disposed");
      {
        std::lock_guard changed(changed_mutex);
        if (!model_changed.empty()) throw Error(ErrorCode::io, model_changed);
      }
      if (loaded) {
        struct Touch {
          Impl* m;
          ~Touch() { m->touch(); }
        } at_end{this};
        touch();
        return f(*loaded);
      }
    }
    std::lock_guard pass(gate);
    std::unique_lock lock(lifecycle);
    if (disposed) throw Error(ErrorCode::invalid_argument, "this embedder was disposed");
    if (!loaded) {
      loaded = load(/*first=*/false);
      touch();  // a fresh load is a use: the idle watcher must not take it back before the caller runs
    }
  }
}

// Throws Error(io) if a mapped model file changed (written, truncated, grown) since it was mapped or
// a page was read past its truncated end; the embedder then refuses every later call with the same
// message (the weights under the mapping are no longer the model's).
void Embedder::Impl::check_files(const Loaded& l, const char* when) {
  for (const auto& f : l.files) {
    const std::string change = f->changes();
    if (change.empty()) continue;
    const std::string message = "the model file '" + f->path() + "' changed " + when + ": " + change +
                                ". Nothing computed from it was returned or cached, and this embedder refuses further "
                                "work (its weights are no longer the model's). Create a new Embedder (restart the "
                                "program) to load the file as it is now; replace model files by renaming a new file "
                                "over the old one, never by writing into a file in use";
    {
      std::lock_guard changed(changed_mutex);
      if (model_changed.empty()) model_changed = message;
    }
    throw Error(ErrorCode::io, message);
  }
}

void Embedder::Impl::unload_locked() {
  if (!loaded) return;
  loaded.reset();
  ++unloads;
  malloc_trim(0);  // hand freed heap pages back to the system now, not at the next large free
}

void Embedder::Impl::watch_idle() {
  const double idle = options.idle_unload_seconds;
  const auto interval = std::chrono::milliseconds(std::clamp<int64_t>(static_cast<int64_t>(idle * 250), 5, 1000));
  std::unique_lock lock(idle_mutex);
  while (!idle_stop) {
    idle_cv.wait_for(lock, interval);
    if (idle_stop) break;
    if (static_cast<double>(now_ms() - last_use_ms.load()) < idle * 1000.0) continue;
    std::unique_lock pass(gate, std::try_to_lock);  // busy callers mean "not idle"
    if (!pass.owns_lock()) continue;
    std::unique_lock life(lifecycle, std::try_to_lock);
    if (!life.owns_lock()) continue;
    if (static_cast<double>(now_ms() - last_use_ms.load()) >= idle * 1000.0) unload_locked();  // still idle?
  }
}

void Embedder::Impl::stop_idle_watcher() {
  std::thread watcher;
  {
    std::lock_guard lock(idle_mutex);
    idle_stop = true;
    watcher = std::move(idle_thread);  // only one caller gets the thread to join
  }
  idle_cv.notify_all();
  if (watcher.joinable()) watcher.join();
}

// Work memory of one batch (runtime::BatchPlan): the engine's arena, the packed ids/offsets, hidden
// states and pooled vectors this file keeps for it, and oneDNN's buffers inside its largest product.
std::size_t Embedder::Impl::batch_work_bytes(const runtime::Engine& engine, int64_t sequences, int64_t tokens,
                                             int64_t longest) const {
  return engine.batch_plan(sequences, tokens, longest, dense.empty() ? dims : hidden).total();
}

// The cache's scope is everything but the text that decides a vector: the model file's and the
// tokenizer's bytes, dtype, pooling, normalisation, max length, dims.
void Embedder::Impl::open_cache() {
  if (options.embedding_cache_dir.empty() && options.cache_memory_bytes == 0) return;
  CacheScope scope;
  scope.model = fingerprint;  // what the model computes with, whichever files hold it (model_fingerprint.h)
  scope.dtype = options.location.model_file.empty() ? dtype_name(options.location.dtype) : "file";
  if (folder.quantize_at_load) scope.dtype += " quantized at load (leanembed quantizer v1)";
  scope.pooling = pooling_name(pooling);
  scope.normalize = normalize;
  scope.max_length = max_length;
  scope.dims = dims;
  for (const std::string& file : tokenizer_files(folder)) {
    struct stat st {};
    if (!file.empty() && ::stat(file.c_str(), &st) == 0) scope.extra += fingerprint_hex(fingerprint_file(file));
  }
  // safetensors: the architecture (layer_norm_eps, hidden_act ...) is config.json's.
  if (folder.format == ModelFormat::safetensors) scope.extra += " config:" + fingerprint_hex(fingerprint_file(folder.config_json));
  // Dense modules change every vector: their config and weights are part of the scope.
  for (const DenseLayer& layer : dense) {
    scope.extra += " dense:" + fingerprint_hex(fingerprint_file(layer.info.weights_file)) + ":" + layer.info.activation_name +
                   ":" + std::to_string(layer.info.in_features) + "x" + std::to_string(layer.info.out_features) +
                   (layer.info.bias ? "+bias" : "");
  }
  cache_keys = std::make_unique<CacheKeyMaker>(scope);
  CacheOptions co;
  co.memory_bytes = options.cache_memory_bytes;
  co.directory = options.embedding_cache_dir;
  auto warn = options.on_warning;
  co.on_warning = [warn](const CacheWarning& w) {
    if (warn) warn(w.message);
    else std::fprintf(stderr, "leanembed: cache: %s\n", w.message.c_str());
  };
  cache = std::make_unique<Cache>(co);
}

Embedder::Embedder(const EmbedderOptions& options) : impl_(std::make_unique<Impl>(options)) {
  check_options(options);
  Impl& m = *impl_;
  kernels::threads_set(thread_count(options));
  m.folder = resolve_model_folder(options.location);
  if (m.folder.quantize_at_load) {
    const std::string notice = "'" + dtype_file(options.location.dtype) + "' is not in '" + m.folder.folder +
                               "': quantizing onnx/model.onnx to " + dtype_name(options.location.dtype) +
                               " in memory at each load (write the file once with `leanembed quantize`)";
    if (options.on_warning) options.on_warning(notice);
    else std::fprintf(stderr, "leanembed: %s\n", notice.c_str());
  }
  struct stat st {};
  if (::stat(m.folder.model_path().c_str(), &st) == 0) m.model_file_bytes = static_cast<std::size_t>(st.st_size);
  m.loaded = m.load(/*first=*/true);
  const Loaded& l = *m.loaded;
  const runtime::EngineDescription& d = l.engine->description();

  m.max_length = options.max_length > 0 ? options.max_length : m.folder.max_length;
  // Capped by the model's positions on both paths: the fast path knows them from the weights, the
  // interpreter path from the graph's position table when it finds one, and config.json's
  // max_position_embeddings caps an explicit max_length as it caps the folder's.
  if (d.max_positions > 0) m.max_length = std::min(m.max_length, d.max_positions);
  if (m.folder.max_position_embeddings > 0) m.max_length = std::min(m.max_length, m.folder.max_position_embeddings);
  if (m.max_length < static_cast<int64_t>(l.tokenizer.num_special_tokens()) + 1) {
    const std::string need = "leaves no room for a token beside the " + std::to_string(l.tokenizer.num_special_tokens()) +
                             " special tokens; expected at least " + std::to_string(l.tokenizer.num_special_tokens() + 1);
    // From the model folder's metadata it is the folder's fault (exit 1 in the CLI), not the caller's.
    if (options.max_length > 0) throw Error(ErrorCode::invalid_argument, "max_length " + std::to_string(m.max_length) + " " + need);
    throw Error(ErrorCode::model_format, "model folder '" + m.folder.folder + "': maximum length " +
                                             std::to_string(m.max_length) + " (from " + m.folder.max_length_source + ") " + need);
  }
  m.pooling = options.pooling.value_or(m.folder.pooling);
  m.normalize = options.normalize.value_or(m.folder.normalize);
  // The fast path knows the hidden size from the weights; the interpreter path takes config.json's
  // (a run checks the output against it).
  m.hidden = d.hidden;
  if (m.hidden <= 0) {
    throw Error(ErrorCode::model_format, "cannot tell the hidden size of '" + m.folder.model_path() +
                                             "': it is not a recognised encoder and config.json has no hidden_size");
  }
  // Dense modules after pooling: each one's input is the previous width.
  m.pooled_width = m.hidden;
  for (const DenseModuleInfo& info : m.folder.dense) {
    if (info.in_features != m.pooled_width) {
      throw Error(ErrorCode::model_format, "the Dense module '" + info.folder + "' takes " + std::to_string(info.in_features) +
                                               " features, but what comes before it has " + std::to_string(m.pooled_width));
    }
    m.dense.push_back(load_dense_layer(info));
    m.pooled_width = info.out_features;
  }
  if (options.dims > m.pooled_width) {
    throw Error(ErrorCode::invalid_argument, "dims " + std::to_string(options.dims) + " is more than the model's " +
                                                 std::to_string(m.pooled_width) + " dimensions");
  }
  m.dims = options.dims > 0 ? options.dims : m.pooled_width;

  // Memory budget (runtime/memory_budget.h): the model's resident charge at load; what is left is
  // the work memory of one batch, which the longest single text must fit.
  if (options.max_memory_bytes > 0) {
    std::size_t dense_bytes = 0;  // Dense modules' weights, held as floats
    for (const DenseLayer& layer : m.dense) dense_bytes += (layer.weight.size() + layer.bias.size()) * sizeof(float);
    const runtime::CallerCharge caller{l.tokenizer.memory_bytes(), dense_bytes, m.dense.empty() ? m.dims : m.hidden};
    m.work_budget = runtime::plan_memory_budget(*l.engine, options.max_memory_bytes, m.folder.model_path(), m.model_file_bytes,
                                                caller, m.max_length, kernels::threads_get())
                        .work_bytes;
  }

  // What info() reports without waking the model.
  EmbedderInfo& i = m.description;
  i.folder = m.folder.folder;
  i.model_path = m.folder.model_path();
  i.model_format = model_format_name(m.folder.format);
  i.model_format_reason = m.folder.format_reason;
  i.ignored_tensors = d.ignored_tensors;
  i.tokenizer_path = l.tokenizer.source();
  i.model_type = m.folder.model_type;
  i.hidden_size = m.hidden;
  i.layers = d.layers;
  i.heads = d.heads;
  i.max_length = m.max_length;
  i.vocab_size = static_cast<int64_t>(l.tokenizer.vocab_size());
  i.max_length_source = options.max_length > 0 ? "option" : m.folder.max_length_source;
  i.dims = m.dims;
  i.pooling = m.pooling;
  i.normalize = m.normalize;
  i.dtype = options.location.model_file.empty() ? dtype_name(options.location.dtype) : "as the given model file";
  if (m.folder.quantize_at_load) i.dtype += ", quantized in memory from model.onnx";
  i.path = d.path;
  i.path_reason = d.reason;
  i.kernels = d.kernels;  // what runs on this path (runtime::EngineDescription::kernels)
  i.threads = kernels::threads_get();
  i.parallel_min_tokens = d.parallel_min_tokens;
  i.model_file_bytes = m.model_file_bytes;
  const int64_t tokens = options.batch_size > options.batch_tokens / m.max_length ? options.batch_tokens
                                                                                : options.batch_size * m.max_length;
  const int64_t seqs = std::min<int64_t>(options.batch_size, tokens);
  i.planned_arena_bytes = l.engine->planned_bytes(seqs, tokens, std::min(m.max_length, tokens));
  i.memory_budget_bytes = options.max_memory_bytes;

  m.open_cache();
  m.touch();
  if (options.idle_unload_seconds > 0) m.idle_thread = std::thread([&m] { m.watch_idle(); });
}

Embedder::~Embedder() {
  if (impl_) impl_->stop_idle_watcher();
}

int64_t Embedder::dims() const { return impl_->dims; }

void Embedder::embed(std::span<const std::string_view> texts, std::span<float> out) {
  if (out.size() != texts.size() * static_cast<std::size_t>(impl_->dims)) {
    throw Error(ErrorCode::invalid_argument, "embed: out holds " + std::to_string(out.size()) + " floats, " +
                                                 std::to_string(texts.size()) + " texts need " +
                                                 std::to_string(texts.size() * impl_->dims));
  }
  Impl& m = *impl_;
  m.with_loaded([&](Loaded& l) {
    if (m.cache) {
      m.embed_through_cache(l, texts, out);
    } else {
      m.embed_sorted_batches(l, texts, out);
    }
  });
}

// Looks every text up; embeds the misses only (in one sorted, batched pass) and stores them.
void Embedder::Impl::embed_through_cache(Loaded& l, std::span<const std::string_view> texts, std::span<float> out) {
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
  embed_sorted_batches(l, missing, vectors);
  for (std::size_t k = 0; k < where.size(); ++k)
    std::copy_n(vectors.begin() + k * dims, dims, out.begin() + where[k] * dims);
  cache->put_many(missing_keys, vectors);
}

// Memory per call: the texts' token ids (8 bytes per token + ~56 bytes per text, all texts of the
// call: proportional to the call, like its texts and output, so outside the budget), then per batch
// the packed ids/offsets, hidden states and pooled vectors (batch_work_bytes), bounded by
// batch_size / batch_tokens and, with a budget, by work_budget — reused across batches. With a
// budget, buffers (and a kept arena) larger than the batch at hand are released first, so what is
// held never exceeds the batch's charge.
void Embedder::Impl::embed_sorted_batches(Loaded& l, std::span<const std::string_view> texts, std::span<float> out) {
  const std::size_t n = texts.size();
  std::vector<std::vector<int64_t>> ids(n);
  {
    Encoding e;
    for (std::size_t i = 0; i < n; ++i) {
      l.tokenizer.encode_into(texts[i], static_cast<std::size_t>(max_length), e);
      ids[i] = e.ids;
    }
  }
  std::vector<std::span<const int64_t>> views(ids.begin(), ids.end());
  embed_id_batches(l, views, out);
}

// The encoder part of embed(): sequences of ids (each non-empty, at most max_length) sorted by
// length, cut into batches, run, pooled and written back in input order.
void Embedder::Impl::embed_id_batches(Loaded& l, std::span<const std::span<const int64_t>> ids, std::span<float> out) {
  const std::size_t n = ids.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Longest first: the first batch needs the largest arena and buffers, so a kept arena is made once
  // per call instead of growing (a new allocation, its pages faulted in afresh) with every batch.
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ids[a].size() > ids[b].size(); });

  std::vector<int64_t> packed, offsets;
  std::vector<float> hidden_states, pooled;
  std::size_t next = 0;
  while (next < n) {
    // One batch: at least one text, then as many as fit batch_size, batch_tokens and the budget.
    // Texts come longest first, so the batch's first text is its longest.
    const int64_t longest = static_cast<int64_t>(ids[order[next]].size());
    std::size_t end = next;
    int64_t tokens = 0;
    while (end < n && static_cast<int64_t>(end - next) < options.batch_size) {
      const int64_t len = static_cast<int64_t>(ids[order[end]].size());
      if (end > next) {
        if (tokens + len > options.batch_tokens) break;
        if (work_budget > 0 &&
            batch_work_bytes(*l.engine, static_cast<int64_t>(end - next) + 1, tokens + len, longest) > work_budget) {
          break;
        }
      }
      tokens += len;
      ++end;
    }
    const std::size_t count = end - next;
    if (work_budget > 0) {
      // A kept arena or buffer from an earlier, differently shaped batch may be larger than this
      // batch's plan: release it rather than hold both.
      const std::size_t planned = l.engine->planned_bytes(static_cast<int64_t>(count), tokens, longest);
      if (l.arena_held > planned &&
          batch_work_bytes(*l.engine, static_cast<int64_t>(count), tokens, longest) - planned + l.arena_held > work_budget) {
        l.engine->release_work_memory();
        l.arena_held = 0;
      }
      if (options.keep_arena) l.arena_held = std::max(l.arena_held, planned);
      // Exactly n elements of capacity (released first, never copied: growth would hold old and new).
      auto fit = [](auto& v, std::size_t n) {
        if (v.capacity() == n) return;
        std::remove_reference_t<decltype(v)>().swap(v);
        v.reserve(n);
      };
      fit(packed, static_cast<std::size_t>(tokens));
      fit(offsets, count + 1);
      fit(hidden_states, static_cast<std::size_t>(tokens) * static_cast<std::size_t>(hidden));
      fit(pooled, count * static_cast<std::size_t>(dense.empty() ? dims : hidden));
    }
    packed.clear();
    offsets.assign(1, 0);
    for (std::size_t k = next; k < end; ++k) {
      const auto& v = ids[order[k]];
      packed.insert(packed.end(), v.begin(), v.end());
      offsets.push_back(static_cast<int64_t>(packed.size()));
    }
    hidden_states.resize(packed.size() * static_cast<std::size_t>(hidden));
    // The weights are (partly) views of the mapped files: a file changed before or during the run
    // makes its result not the model's. Checked before and after; a failed read (pread past a
    // truncated end) is reported as the change it is.
    check_files(l, "while it was in use");
    try {
      l.engine->run(packed, {}, offsets, hidden_states);
    } catch (const Error&) {
      check_files(l, "while it was in use");
      throw;
    }
    check_files(l, "while it was in use");
    if (dense.empty()) {
      pooled.resize(count * static_cast<std::size_t>(dims));
      pool_sequences(pooling, hidden_states, hidden, offsets, dims, pooled);
    } else {
      // Pool the whole hidden width, run the Dense modules, then keep the first `dims` (Matryoshka).
      pooled.resize(count * static_cast<std::size_t>(hidden));
      pool_sequences(pooling, hidden_states, hidden, offsets, hidden, pooled);
      std::vector<float> a, b;
      for (std::size_t k = 0; k < count; ++k) {
        a.assign(pooled.begin() + k * hidden, pooled.begin() + (k + 1) * hidden);
        for (const DenseLayer& layer : dense) {
          b.resize(static_cast<std::size_t>(layer.info.out_features));
          apply_dense(layer, a, b);
          a.swap(b);
        }
        std::copy_n(a.begin(), dims, pooled.begin() + k * dims);
      }
      pooled.resize(count * static_cast<std::size_t>(dims));
    }
    for (std::size_t k = 0; k < count; ++k) {
      std::span<float> v(pooled.data() + k * dims, static_cast<std::size_t>(dims));
      if (normalize) l2_normalize(v);
      std::copy(v.begin(), v.end(), out.begin() + order[next + k] * dims);
    }
    next = end;
  }
  if (!options.keep_arena) {
    l.engine->release_work_memory();
    l.arena_held = 0;
  }
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

bool Embedder::shorten_partial_text(std::string& kept) const {
  return impl_->with_loaded(
      [&](Loaded& l) { return l.tokenizer.shorten_partial_text(kept, static_cast<std::size_t>(impl_->max_length)); });
}

void Embedder::embed_tokens(std::span<const std::span<const int64_t>> ids, std::span<float> out) {
  Impl& m = *impl_;
  if (out.size() != ids.size() * static_cast<std::size_t>(m.dims)) {
    throw Error(ErrorCode::invalid_argument, "embed_tokens: out holds " + std::to_string(out.size()) + " floats, " +
                                                 std::to_string(ids.size()) + " sequences need " +
                                                 std::to_string(ids.size() * m.dims));
  }
  m.with_loaded([&](Loaded& l) {
    const auto vocab = static_cast<int64_t>(l.tokenizer.vocab_size());
    for (std::size_t s = 0; s < ids.size(); ++s) {
      const std::string which = "embed_tokens: sequence " + std::to_string(s);
      if (ids[s].empty()) throw Error(ErrorCode::invalid_argument, which + " is empty");
      if (static_cast<int64_t>(ids[s].size()) > m.max_length) {
        throw Error(ErrorCode::invalid_argument, which + " has " + std::to_string(ids[s].size()) +
                                                     " tokens, more than max_length " + std::to_string(m.max_length));
      }
      for (std::size_t t = 0; t < ids[s].size(); ++t) {
        if (ids[s][t] < 0 || ids[s][t] >= vocab) {
          throw Error(ErrorCode::invalid_argument, which + ": token id " + std::to_string(ids[s][t]) + " at position " +
                                                       std::to_string(t) + " is outside the vocabulary [0, " +
                                                       std::to_string(vocab) + ")");
        }
      }
    }
    m.embed_id_batches(l, ids, out);
  });
}

// Left truncation keeps the post-processor's leading and trailing special tokens: they are found by
// comparing the untruncated encoding with the empty text's (the special tokens alone).
Encoding Embedder::Impl::encode(const Loaded& l, std::string_view text, Truncation truncation, bool with_tokens) const {
  if (truncation == Truncation::right) return l.tokenizer.encode(text, static_cast<std::size_t>(max_length), with_tokens);
  Encoding e = l.tokenizer.encode(text, no_truncation, with_tokens);
  const auto limit = static_cast<std::size_t>(max_length);
  if (truncation == Truncation::none || e.ids.size() <= limit) return e;
  const Encoding specials = l.tokenizer.encode("", no_truncation);
  const std::size_t s = specials.ids.size(), n = e.ids.size();
  // lead special tokens open the sequence, the other s - lead close it (a text that starts with a
  // special token's text must not count as one: the closing ones must match too).
  std::size_t lead = 0;
  while (lead < s && e.ids[lead] == specials.ids[lead]) ++lead;
  auto closes = [&](std::size_t k) { return std::equal(specials.ids.begin() + k, specials.ids.end(), e.ids.end() - (s - k)); };
  while (lead > 0 && !closes(lead)) --lead;
  const std::size_t cut = n - limit;  // tokens dropped right after the leading special tokens
  auto drop = [&](auto& v) {
    if (v.size() == n) v.erase(v.begin() + static_cast<std::ptrdiff_t>(lead), v.begin() + static_cast<std::ptrdiff_t>(lead + cut));
  };
  drop(e.ids);
  drop(e.attention_mask);
  drop(e.token_type_ids);
  drop(e.tokens);
  return e;
}

Tokenized Embedder::tokenize(std::string_view text) const { return tokenize(text, Truncation::right, true); }

Tokenized Embedder::tokenize(std::string_view text, Truncation truncation, bool with_tokens) const {
  return impl_->with_loaded([&](Loaded& l) {
    Encoding e = impl_->encode(l, text, truncation, with_tokens);
    return Tokenized{std::move(e.ids), std::move(e.tokens)};
  });
}

void Embedder::unload() {
  std::lock_guard pass(impl_->gate);
  std::unique_lock lock(impl_->lifecycle);
  impl_->unload_locked();
}

void Embedder::dispose() {
  impl_->stop_idle_watcher();
  std::lock_guard pass(impl_->gate);
  std::unique_lock lock(impl_->lifecycle);
  impl_->unload_locked();
  impl_->disposed = true;
  impl_->cache.reset();
}

EmbedderInfo Embedder::info() const {
  const Impl& m = *impl_;
  EmbedderInfo i = m.description;
  {
    std::shared_lock lock(impl_->lifecycle);
    i.loaded = m.loaded != nullptr;
    i.disposed = m.disposed;
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
  }
  i.loads = m.loads;
  i.unloads = m.unloads;
  i.last_load_seconds = m.last_load_seconds;
  return i;
}

}  // namespace leanembed
