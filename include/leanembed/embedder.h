// leanembed/embedder.h — text in, vectors out.
//
// Usage:
//   leanembed::EmbedderOptions options;
//   options.location.model = "models/all-MiniLM-L6-v2";   // a folder, or a hub id in the cache folder
//   leanembed::Embedder embedder(options);                 // loads; throws leanembed::Error
//   std::vector<float> v = embedder.embed_one("A sentence."); // embedder.dims() floats
//
// What it does: tokenizes (see tokenizer.h for the input policy: invalid UTF-8 becomes U+FFFD,
// an empty text is [CLS] [SEP], texts longer than max_length tokens are truncated), sorts the texts
// of a call by length into batches bounded by batch_size texts and batch_tokens tokens, runs the
// encoder (the fused fast path when the graph is a recognised encoder, else the interpreter), pools
// and normalises as the model folder's sentence-transformers metadata says, and returns vectors in
// input order.
//
// With an embedding cache (embedding_cache_dir / cache_memory_bytes), texts whose vectors are cached skip the encoder.
//
// Life cycle: after idle_unload_seconds without calls the model is unloaded by a watcher thread and
// the next call reloads it; unload() and dispose() do it on demand; info() never wakes the model.
//
// Threads: every member function may be called from many threads at once; encoder runs are
// serialised inside (each one uses `threads` cores). Memory: weights are a read-only mapping of the
// model file; the work arena is planned per batch and bounded by batch_tokens (see info()).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "leanembed/model_options.h"

namespace leanembed {

// The most intra-op threads an Embedder accepts even with force_threads (OpenMP threads are real
// threads with their own stacks; thousands of them only slow every call down, or fail to start).
inline constexpr int kMaxThreads = 256;

struct EmbedderOptions {
  ModelLocation location;               // which model, which dtype/file
  int threads = 0;                      // intra-op threads; 0 = number of cores. Process-wide (the
                                        // OpenMP pool is): the last Embedder built sets it. More
                                        // than the cores this process may run on is capped at that
                                        // count, with a warning (on_warning), unless force_threads;
  bool force_threads = false;           // forced, up to kMaxThreads (more: Error(invalid_argument))
  // Fast path: encoder runs of fewer real tokens than this use one thread whatever `threads` says.
  // When OpenMP's threads sleep between parallel regions (OMP_WAIT_POLICY=passive, as `leanembed
  // serve` and the Node package run), every region must wake them, and on a small batch that costs
  // more than the second core gives. -1 = automatic: under the passive policy a figure measured for
  // the model's weights (fp32 32 tokens, q8/int8/uint8 129, q4 64, fp16 0; src/kernels/README.md
  // "Small runs on one thread"), else 0; 0 = never. Vectors do not depend on it.
  int64_t parallel_min_tokens = -1;
  std::optional<Pooling> pooling;       // default: the model folder's (mean without metadata)
  std::optional<bool> normalize;        // default: the model folder's (true without metadata)
  int64_t max_length = 0;               // tokens incl. [CLS]/[SEP]; 0 = the model folder's
  int64_t dims = 0;                     // keep the first `dims` components (Matryoshka); 0 = all
  int64_t batch_size = 32;              // texts per encoder run at most
  int64_t batch_tokens = 512;           // real tokens per encoder run at most (a text longer than
                                        // this still runs, alone); bounds the work arena (speed /
                                        // memory trade-off measured: docs/BENCHMARKS.md)
  bool keep_arena = true;               // keep the work arena between calls (off: free after each)
  ExecutionPath path = ExecutionPath::automatic;  // force a path (fast fails if not recognised)

  // Memory budget, bytes; 0 = none. Fast path only (Error(unsupported) on the interpreter). What
  // the process holds beyond its bare state (the libraries loaded, nothing run) stays within it:
  // charged at load are the model file (all of it, as if every page were resident, less the word
  // table when the fast path reads its rows with pread: EngineDescription::word_table_pread_bytes),
  // the tokenizer (Tokenizer::memory_bytes()), a fixed 12 MiB for the runtime (library code paged
  // in by running, oneDNN's JIT kernels, small heap blocks) and 256 KiB of stack per thread; each
  // batch is cut so its work memory (planned arena + batch buffers + a bound on oneDNN's internal
  // packing buffers, kernels::onednn_gemm_internal_bytes_bound) fits what is left. Loading refuses
  // (Error(out_of_memory)) naming the figures: the file, its charged part and the budget when that
  // part alone does not fit, every charge and the total when one text of max_length tokens would
  // not (what MiniLM needs: docs/BENCHMARKS.md). Not
  // charged (they scale with the caller's input): the texts and vectors of a call, its token ids
  // (8 bytes per token + ~56 per text), the tokenizer's per-thread scratch (~4 bytes per byte of
  // the longest text), the embedding cache (cache_memory_bytes is its own bound). Peaks measured
  // against budgets: docs/BENCHMARKS.md.
  std::size_t max_memory_bytes = 0;
  // Unload the model (unmap weights, free arenas, drop the tokenizer) after this many seconds
  // without a call; the next call reloads it transparently. 0 = never.
  double idle_unload_seconds = 300;

  // Embedding cache (cache.h): vectors already computed for the same model file, dtype, pooling,
  // normalisation, max length, dims, tokenizer and text are returned instead of recomputed.
  std::string embedding_cache_dir;      // persistent LMDB store shared by processes; "" = none
  std::size_t cache_memory_bytes = 0;   // in-memory LRU level, bounded in bytes; 0 = none
  // Cache warnings (a corrupt store set aside, a full store) go here; default: stderr. Called with
  // the embedder's locks held: it must not call back into the Embedder.
  std::function<void(const std::string&)> on_warning;
};

struct EmbedderInfo {
  // model_path: the model file loaded — the ONNX file, or the .safetensors file when model_format
  // is "safetensors".
  std::string folder, model_path, tokenizer_path;
  std::string model_format;                  // "onnx" or "safetensors"
  std::string model_format_reason;           // why that file (ModelLocation::format and what the folder has)
  std::vector<std::string> ignored_tensors;  // safetensors: tensors of the file the encoder does not use
  std::string model_type;
  int64_t hidden_size = 0, layers = 0, heads = 0, max_length = 0, dims = 0;
  int64_t vocab_size = 0;               // token ids embed_tokens() accepts: [0, vocab_size)
  std::string max_length_source;
  Pooling pooling = Pooling::mean;
  bool normalize = true;
  std::string dtype;
  std::string path;           // "fast" or "interpreter"
  std::string path_reason;    // why that path runs
  std::string kernels;        // what runs, e.g. "avx2 row kernels, avx2 attention, linear layers: oneDNN matmul"
  int threads = 0;
  int64_t parallel_min_tokens = 0;      // runs of fewer real tokens use one thread (0 = none; the
                                        // automatic value resolved)
  std::size_t model_file_bytes = 0;
  std::size_t planned_arena_bytes = 0;  // for a batch of batch_size texts of max_length tokens
                                        // bounded by batch_tokens
  std::size_t memory_budget_bytes = 0;  // max_memory_bytes (0 = none)
  // Life cycle.
  bool loaded = false;                  // the model is in memory now
  bool disposed = false;
  uint64_t loads = 0, unloads = 0;      // how often the model was loaded / unloaded
  double last_load_seconds = 0;         // how long the last (re)load took
  // Cache (all zero when there is none).
  bool cache_enabled = false;
  std::string cache_problem;            // why the disk level is off, when it was asked for
  uint64_t cache_hits = 0, cache_misses = 0, cache_entries_memory = 0, cache_entries_disk = 0;
  uint64_t cache_bytes_memory = 0, cache_bytes_disk = 0;
  double cache_hit_rate = 0;
};

struct Tokenized {
  std::vector<int64_t> ids;
  std::vector<std::string> tokens;
};

// Which end of a text longer than max_length is cut. Either way the special tokens stay:
// right keeps [CLS] + the first max_length-2 tokens + [SEP] (what embed() does), left keeps [CLS] +
// the last max_length-2 tokens + [SEP] (Hugging Face's truncation_side "left"); none keeps every
// token (the result may be longer than max_length: a caller that refuses long texts counts them).
enum class Truncation { right, left, none };

// v /= max(||v||_2, 1e-12): the normalisation embed() applies (sentence-transformers' Normalize),
// for callers that keep the first dims of an unnormalised vector and normalise it themselves.
void l2_normalize(std::span<float> v);

class Embedder {
 public:
  // Loads the model. Throws Error: io (missing folder/file, with what to fetch), model_format,
  // unsupported (an op or tokenizer component we lack), invalid_argument (bad options).
  explicit Embedder(const EmbedderOptions& options);
  ~Embedder();
  Embedder(const Embedder&) = delete;
  Embedder& operator=(const Embedder&) = delete;

  // Length of each vector (dims option, else the model's hidden size).
  int64_t dims() const;

  // Embeds texts; out has texts.size() * dims() floats, row i for texts[i]. Texts are bytes
  // (UTF-8 expected; invalid sequences are replaced, never rejected).
  void embed(std::span<const std::string_view> texts, std::span<float> out);
  std::vector<std::vector<float>> embed(const std::vector<std::string>& texts);
  std::vector<float> embed_one(std::string_view text);

  // For reading a long text in pieces without holding all of it (the CLI's stdin lines):
  // rewrites `kept`, the bytes of one text read so far, into a string with the same tokens (at
  // this embedder's max_length) whatever bytes follow, and returns true when no following byte can
  // change them (skip the rest of the text). Exact: Tokenizer::shorten_partial_text (tokenizer.h).
  bool shorten_partial_text(std::string& kept) const;

  // Embeds sequences of token ids given as the encoder sees them (special tokens included, as
  // tokenize() returns them); out has ids.size() * dims() floats. The vector of a sequence is the
  // one embed() gives for a text with those ids. The embedding cache is not used (it is keyed by
  // text). Throws Error(invalid_argument) naming the sequence for an empty one, one longer than
  // max_length, or an id outside [0, vocabulary size).
  void embed_tokens(std::span<const std::span<const int64_t>> ids, std::span<float> out);

  // Token ids and token strings as the encoder sees them (after truncation).
  Tokenized tokenize(std::string_view text) const;
  // The same with a choice of truncation (tokens filled only when asked for).
  Tokenized tokenize(std::string_view text, Truncation truncation, bool with_tokens = true) const;

  // Status: never loads the model (reports loaded = false when it is unloaded).
  EmbedderInfo info() const;

  // Frees the model now (weights unmapped, arenas freed, tokenizer dropped); the next call that
  // needs it reloads it. Waits for calls in flight. Safe to call at any time, from any thread.
  void unload();
  // Unloads for good: later calls throw Error(invalid_argument). The idle watcher stops.
  void dispose();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace leanembed
