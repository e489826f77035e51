// leanembed — the command-line tool. Uses only the public API (include/leanembed/).
//
//   leanembed embed    [options] [TEXT...]   vectors for the texts (else one text per stdin line)
//   leanembed tokenize [options] [TEXT...]   {"ids":[…],"tokens":[…]} per text
//   leanembed info     [options]             files, architecture, execution path, planned memory
//   leanembed bench    [options]             sentences/s, tokens/s, load time, peak RSS
//   leanembed quantize --dtype D [options]   writes onnx/model_<D>.onnx (or into --out DIR)
//   leanembed serve    [options]             HTTP server: TEI and OpenAI embedding routes (tools/server)
//
// Every option can also come from an environment variable LEANEMBED_<OPTION> (e.g. LEANEMBED_MODEL).
// Exit codes: 0 ok, 1 runtime error (model, file, input), 2 usage error.
#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "leanembed/embedder.h"
#include "leanembed/error.h"
#include "leanembed/quantize.h"
#include "leanembed/tokenizer.h"
#include "line_reader.h"
#include "output_file.h"
#include "server/serve_command.h"

namespace {

using leanembed::Embedder;
using leanembed::EmbedderOptions;

struct CommonFlags {
  std::string model = "Xenova/all-MiniLM-L6-v2";
  std::string model_cache_dir;   // where hub ids are looked up (transformers.js layout)
  std::string dtype = "fp32";
  std::string model_file;
  std::string revision = "main";  // hub revision for a hub id fetched into the cache
  bool offline = false;           // never download a hub id's missing files
  std::string model_format = "auto";
  int threads = 0;
  bool force_threads = false;     // more threads than cores (else capped at the cores, with a warning)
  int64_t parallel_min_tokens = -1;  // encoder runs of fewer tokens use one thread; -1 = automatic
  int64_t max_length = 0;
  std::string path = "auto";
  std::string embedding_cache;    // persistent embedding cache (LMDB folder)
  std::size_t cache_memory = 0;   // in-memory embedding cache level, bytes
  std::size_t max_memory = 0;     // memory budget, bytes
  double idle_unload = 300;       // seconds without work before the model is unloaded; 0 = never
};

void add_model_flags(CLI::App* cmd, CommonFlags& f) {
  cmd->add_option("-m,--model", f.model,
                  "Model folder, or Hugging Face id looked up in the cache folder (fetched from the hub when missing)")
      ->envname("LEANEMBED_MODEL")->capture_default_str();
  cmd->add_option("--model-cache-dir,--cache-dir", f.model_cache_dir,
                  "Model cache folder for hub ids (transformers.js layout; default ./models; --cache-dir is the older name)")
      ->envname("LEANEMBED_MODEL_CACHE_DIR");
  cmd->add_option("--dtype", f.dtype, "fp32, fp16, q8, int8, uint8, q4 (selects onnx/model<suffix>.onnx)")
      ->envname("LEANEMBED_DTYPE")->capture_default_str();
  cmd->add_option("--model-file", f.model_file, "ONNX file to load instead (relative to the model folder, or absolute)")
      ->envname("LEANEMBED_MODEL_FILE");
  cmd->add_option("--revision", f.revision, "Hub revision (branch, tag or commit) to fetch a hub id at")
      ->envname("LEANEMBED_REVISION")->capture_default_str();
  cmd->add_flag("--offline", f.offline,
                "Never download: a hub id must already be in the model cache folder (also HF_HUB_OFFLINE=1)")
      ->envname("LEANEMBED_OFFLINE");
  cmd->add_option("--model-format", f.model_format,
                  "Weights file: auto (the dtype's ONNX file, else model.safetensors), onnx, safetensors")
      ->envname("LEANEMBED_MODEL_FORMAT")->check(CLI::IsMember({"auto", "onnx", "safetensors"}))->capture_default_str();
  cmd->add_option("--max-length", f.max_length, "Truncate texts to N tokens (default: the model folder's)")
      ->envname("LEANEMBED_MAX_LENGTH")->check(CLI::NonNegativeNumber);
}

void add_cache_flags(CLI::App* cmd, CommonFlags& f) {
  cmd->add_option("--embedding-cache,--cache", f.embedding_cache,
                  "Embedding cache store (LMDB folder, shared by processes; --cache is the older name)")
      ->envname("LEANEMBED_EMBEDDING_CACHE");
  cmd->add_option("--cache-memory", f.cache_memory, "In-memory cache level, bytes (0 = none)")
      ->envname("LEANEMBED_CACHE_MEMORY")->check(CLI::NonNegativeNumber);
}

void add_run_flags(CLI::App* cmd, CommonFlags& f) {
  cmd->add_option("-t,--threads", f.threads, "Intra-op threads (0 = all cores; more than the cores: capped, with a warning)")
      ->envname("LEANEMBED_THREADS")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--force-threads", f.force_threads,
                "Use --threads even above the number of cores (at most " + std::to_string(leanembed::kMaxThreads) + ")")
      ->envname("LEANEMBED_FORCE_THREADS");
  cmd->add_option("--parallel-min-tokens", f.parallel_min_tokens,
                  "Encoder runs of fewer tokens use one thread (-1 = automatic: a measured figure when OpenMP threads "
                  "sleep between regions, else 0; 0 = never)")
      ->envname("LEANEMBED_PARALLEL_MIN_TOKENS")->check(CLI::Range(int64_t{-1}, std::numeric_limits<int64_t>::max()))
      ->capture_default_str();
  cmd->add_option("--max-memory", f.max_memory, "Memory budget for weights + work memory, bytes (0 = none)")
      ->envname("LEANEMBED_MAX_MEMORY")->check(CLI::NonNegativeNumber);
  cmd->add_option("--idle-unload", f.idle_unload,
                  "Unload the model after this many seconds without work (a slow stdin); 0 = never")
      ->envname("LEANEMBED_IDLE_UNLOAD")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--path", f.path, "Execution path: auto, fast, interpreter")
      ->envname("LEANEMBED_PATH")->check(CLI::IsMember({"auto", "fast", "interpreter"}));
}

EmbedderOptions options_from(const CommonFlags& f) {
  EmbedderOptions o;
  o.location.model = f.model;
  o.location.model_cache_dir = f.model_cache_dir;
  o.location.dtype = leanembed::dtype_from_name(f.dtype);
  o.location.model_file = f.model_file;
  o.location.revision = f.revision;
  o.location.local_files_only = f.offline;
  o.location.format = leanembed::model_format_from_name(f.model_format);
  o.threads = f.threads;
  o.force_threads = f.force_threads;
  o.parallel_min_tokens = f.parallel_min_tokens;
  o.max_length = f.max_length;
  o.embedding_cache_dir = f.embedding_cache;
  if (o.embedding_cache_dir.empty()) {  // LEANEMBED_CACHE: the older name of LEANEMBED_EMBEDDING_CACHE
    const char* older = std::getenv("LEANEMBED_CACHE");
    if (older) o.embedding_cache_dir = older;
  }
  o.cache_memory_bytes = f.cache_memory;
  o.max_memory_bytes = f.max_memory;
  o.idle_unload_seconds = f.idle_unload;
  o.path = f.path == "fast" ? leanembed::ExecutionPath::fast
           : f.path == "interpreter" ? leanembed::ExecutionPath::interpreter
                                     : leanembed::ExecutionPath::automatic;
  return o;
}

using leanembed::cli::LineReader;

// How long streamed input may pause before the texts already read are embedded and written
// (bulk input never pauses, so it keeps its large chunks).
constexpr int kPauseMs = 20;

// Bytes one streamed line may keep after Embedder::shorten_partial_text (line_reader.h): 128 per
// token of the maximum length. Real text needs ~4-10 bytes per token; only bytes that give very
// few tokens in ways the shortener does not compress reach it (a warning names the line).
std::size_t line_bytes_cap(const Embedder& e) { return static_cast<std::size_t>(e.info().max_length) * 128; }

// Texts from --input FILE, else stdin; the file is opened (and checked) before the model loads.
struct TextInput {
  int fd = 0;
  std::string name = "stdin";
  explicit TextInput(const std::string& path) {
    if (path.empty()) return;
    name = "--input '" + path + "'";
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw leanembed::Error(leanembed::ErrorCode::io, "cannot read " + name + ": " + std::strerror(errno));
  }
  ~TextInput() {
    if (fd > 0) ::close(fd);
  }
  TextInput(const TextInput&) = delete;
  TextInput& operator=(const TextInput&) = delete;
};

// ---- Output formats ------------------------------------------------------------------------------

class VectorWriter {
 public:
  // `name` is the output as the user named it ("stdout" or a path), for error messages.
  VectorWriter(std::string format, FILE* out, std::string name, int64_t dims)
      : format_(std::move(format)), out_(out), name_(std::move(name)), dims_(dims) {}

  // known_count: the number of vectors when it is known up front (texts as arguments), else -1;
  // npy then writes a provisional header that end() rewrites in place (a seekable output).
  void begin(int64_t known_count) {
    known_count_ = known_count;
    if (format_ == "json") std::fputs("[", out_);
    if (format_ == "npy") {
      npy_header_at_ = std::ftell(out_);
      write_npy_header(known_count >= 0 ? known_count : 0);
    }
  }

  void write(const float* v) {
    if (format_ == "f32" || format_ == "npy") {
      std::fwrite(v, sizeof(float), static_cast<size_t>(dims_), out_);
    } else {
      std::string line = format_ == "json" ? (count_ ? ",\n[" : "\n[") : "[";
      char buf[32];
      for (int64_t d = 0; d < dims_; ++d) {
        if (d) line += ',';
        auto r = std::to_chars(buf, buf + sizeof buf, v[d]);
        line.append(buf, r.ptr);
      }
      line += format_ == "json" ? "]" : "]\n";
      std::fwrite(line.data(), 1, line.size(), out_);
    }
    ++count_;
  }

  // Finishes the output; throws Error(io) if anything could not be written (a full disk, a closed
  // pipe). For npy with an unknown count the header is rewritten with the count, which needs a
  // seekable output that is not in append mode (the caller checks that up front).
  void end() {
    if (format_ == "json") std::fputs(count_ ? "\n]\n" : "]\n", out_);
    if (format_ == "npy" && known_count_ < 0) {
      if (std::fseek(out_, npy_header_at_, SEEK_SET) != 0) fail("cannot seek back to the npy header");
      write_npy_header(count_);
      if (std::fseek(out_, 0, SEEK_END) != 0) fail("cannot seek to the end");
    }
    if (std::fflush(out_) != 0 || std::ferror(out_)) fail("write failed");
  }

 private:
  void write_npy_header(int64_t rows) {
    // NPY 1.0: magic, version, header length, a dict padded with spaces to a multiple of 64 bytes.
    // The header is always 128 bytes, so it can be rewritten in place with the final count.
    char shape[64];
    std::snprintf(shape, sizeof shape, "(%lld, %lld)", static_cast<long long>(rows), static_cast<long long>(dims_));
    std::string dict = std::string("{'descr': '<f4', 'fortran_order': False, 'shape': ") + shape + ", }";
    std::string header = "\x93NUMPY";
    header += '\x01';
    header += '\x00';
    const size_t total = 128;  // fixed: fits any shape, 64-byte aligned
    dict.append(total - 10 - dict.size() - 1, ' ');
    dict += '\n';
    uint16_t len = static_cast<uint16_t>(dict.size());
    header += static_cast<char>(len & 0xff);
    header += static_cast<char>(len >> 8);
    header += dict;
    std::fwrite(header.data(), 1, header.size(), out_);
  }

  [[noreturn]] void fail(const std::string& what) {
    throw leanembed::Error(leanembed::ErrorCode::io, "cannot write the vectors to " + name_ + ": " + what);
  }

  std::string format_;
  FILE* out_;
  std::string name_;
  int64_t dims_;
  int64_t known_count_ = -1;
  int64_t count_ = 0;
  long npy_header_at_ = 0;
};

// Set once a command has built its Embedder: an invalid_argument after that comes from running (a
// model problem, exit 1), not from the command line (exit 2).
bool g_options_accepted = false;

bool is_terminal(FILE* f) { return isatty(fileno(f)) != 0; }

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// ---- Commands ------------------------------------------------------------------------------------

struct EmbedFlags {
  CommonFlags common;
  int64_t batch_size = leanembed::EmbedderOptions{}.batch_size;
  int64_t batch_tokens = leanembed::EmbedderOptions{}.batch_tokens;
  std::string pooling;
  bool no_normalize = false;
  int64_t dims = 0;
  std::string format = "jsonl";
  std::string output;
  std::string input;  // a file of texts, one per line, instead of stdin
  std::vector<std::string> texts;
};

// Embeds the texts of `f` and writes them; returns what the embedder knows afterwards (cache figures).
leanembed::EmbedderInfo embed_and_write(EmbedFlags& f) {
  EmbedderOptions o = options_from(f.common);
  o.batch_size = f.batch_size;
  o.batch_tokens = f.batch_tokens;
  if (!f.pooling.empty()) o.pooling = leanembed::pooling_from_name(f.pooling);
  if (f.no_normalize) o.normalize = false;
  o.dims = f.dims;

  const bool streamed = f.texts.empty();
  if (!streamed && !f.input.empty()) {
    throw leanembed::Error(leanembed::ErrorCode::invalid_argument, "give texts as arguments or --input, not both");
  }
  std::optional<TextInput> input;
  std::optional<LineReader> reader;
  if (streamed) {
    input.emplace(f.input);
    reader.emplace(input->fd, input->name);
  }
  // -o FILE: written to a temporary beside it and renamed at the end, so a failing run leaves FILE as it was.
  std::optional<leanembed::cli::OutputFile> file_out;
  FILE* out = stdout;
  if (!f.output.empty() && f.output != "-") {
    file_out.emplace(f.output);
    out = file_out->stream();
  }
  if (f.format == "npy" && streamed &&
      (std::fseek(out, 0, SEEK_CUR) != 0 || (::fcntl(fileno(out), F_GETFL) & O_APPEND) != 0)) {
    throw leanembed::Error(leanembed::ErrorCode::invalid_argument,
                           "--format npy with texts from stdin or --input needs a seekable --output FILE, not a pipe or "
                           "an appended file (the header holds the count)");
  }
  Embedder embedder(o);
  g_options_accepted = true;
  const int64_t dims = embedder.dims();
  VectorWriter writer(f.format, out, out == stdout ? "stdout" : "'" + f.output + "'", dims);
  writer.begin(streamed ? -1 : static_cast<int64_t>(f.texts.size()));

  // Texts go through in chunks, so memory does not grow with the input's length.
  const size_t chunk = static_cast<size_t>(std::max<int64_t>(f.batch_size, 1) * 16);
  std::vector<std::string> texts;
  std::vector<float> vectors;
  const bool progress = streamed && is_terminal(stderr);
  int64_t done = 0;
  auto flush = [&]() {
    std::vector<std::string_view> views(texts.begin(), texts.end());
    vectors.resize(texts.size() * static_cast<size_t>(dims));
    embedder.embed(views, vectors);
    for (size_t i = 0; i < texts.size(); ++i) writer.write(vectors.data() + i * dims);
    std::fflush(out);  // a client waiting for these vectors gets them now
    done += static_cast<int64_t>(texts.size());
    if (progress) std::fprintf(stderr, "\rleanembed: %lld texts embedded", static_cast<long long>(done));
    texts.clear();
  };
  if (!streamed) {
    texts = f.texts;
    flush();
  } else {
    reader->set_shortener([&embedder](std::string& kept) { return embedder.shorten_partial_text(kept); },
                          line_bytes_cap(embedder));
    std::string line;
    for (;;) {
      // Texts waiting and the input paused: embed and write them now instead of waiting for a full chunk.
      const LineReader::Next got = reader->next(line, texts.empty() ? -1 : kPauseMs);
      if (got == LineReader::Next::end) break;
      if (got == LineReader::Next::paused) {
        flush();
        continue;
      }
      texts.push_back(std::move(line));
      line = std::string();
      if (texts.size() >= chunk) flush();
    }
    if (!texts.empty()) flush();
    if (progress) std::fputc('\n', stderr);
  }
  writer.end();
  if (file_out) file_out->commit();
  return embedder.info();
}

int run_embed(EmbedFlags& f) {
  embed_and_write(f);
  return 0;
}

// Fills the cache with the vectors of every line of `input` (the seed's pre-computed embeddings,
// made with the real model and keyed by it, so they are never reused across models).
int run_precompute(EmbedFlags& f) {
  if (f.common.embedding_cache.empty()) {
    throw leanembed::Error(leanembed::ErrorCode::invalid_argument, "precompute needs --embedding-cache DIR");
  }
  f.format = "f32";
  f.output = "/dev/null";
  leanembed::EmbedderInfo i = embed_and_write(f);
  std::fprintf(stderr, "leanembed: cache '%s' holds %llu vectors (%.1f MB); %llu were there already, %llu computed\n",
               f.common.embedding_cache.c_str(), static_cast<unsigned long long>(i.cache_entries_disk), i.cache_bytes_disk / 1e6,
               static_cast<unsigned long long>(i.cache_hits), static_cast<unsigned long long>(i.cache_misses));
  if (!i.cache_problem.empty()) {
    throw leanembed::Error(leanembed::ErrorCode::io, "the cache could not be written: " + i.cache_problem);
  }
  return 0;
}

int run_tokenize(CommonFlags& f, std::vector<std::string>& texts) {
  Embedder embedder(options_from(f));
  g_options_accepted = true;
  auto one = [&](const std::string& text) {
    leanembed::Tokenized t = embedder.tokenize(text);
    nlohmann::json j = {{"ids", t.ids}, {"tokens", t.tokens}};
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
  };
  if (!texts.empty()) {
    for (const auto& t : texts) one(t);
  } else {
    LineReader reader(0, "stdin");
    reader.set_shortener([&embedder](std::string& kept) { return embedder.shorten_partial_text(kept); },
                         line_bytes_cap(embedder));
    std::string line;
    bool unflushed = false;
    for (;;) {
      const LineReader::Next got = reader.next(line, unflushed ? kPauseMs : -1);
      if (got == LineReader::Next::end) break;
      if (got == LineReader::Next::paused) {
        std::fflush(stdout);
        unflushed = false;
        continue;
      }
      one(line);
      unflushed = true;
    }
  }
  return 0;
}

int run_info(CommonFlags& f) {
  Embedder embedder(options_from(f));
  leanembed::EmbedderInfo i = embedder.info();
  std::printf("model folder   %s\n", i.folder.c_str());
  std::printf("model file     %s (%s, %.1f MB, dtype %s): %s\n", i.model_path.c_str(), i.model_format.c_str(),
              i.model_file_bytes / 1e6, i.dtype.c_str(), i.model_format_reason.c_str());
  if (!i.ignored_tensors.empty()) {
    std::string names;
    for (const auto& n : i.ignored_tensors) names += (names.empty() ? "" : ", ") + n;
    std::printf("ignored        %zu tensors the encoder does not use: %s\n", i.ignored_tensors.size(), names.c_str());
  }
  std::printf("tokenizer      %s\n", i.tokenizer_path.c_str());
  std::printf("architecture   %s: %lld layers, hidden %lld, %lld heads\n", i.model_type.c_str(),
              static_cast<long long>(i.layers), static_cast<long long>(i.hidden_size), static_cast<long long>(i.heads));
  std::printf("vector         %lld dims, pooling %s, %s\n", static_cast<long long>(i.dims),
              leanembed::pooling_name(i.pooling), i.normalize ? "L2-normalized" : "not normalized");
  std::printf("max length     %lld tokens (%s)\n", static_cast<long long>(i.max_length), i.max_length_source.c_str());
  std::printf("execution      %s path: %s\n", i.path.c_str(), i.path_reason.c_str());
  std::printf("kernels        %s, %d threads", i.kernels.c_str(), i.threads);
  if (i.parallel_min_tokens > 0 && i.threads > 1)
    std::printf(" (runs under %lld tokens: 1)", static_cast<long long>(i.parallel_min_tokens));
  std::printf("\n");
  std::printf("planned arena  %.2f MB for a default batch\n", i.planned_arena_bytes / 1e6);
  if (i.memory_budget_bytes) std::printf("memory budget  %.1f MB\n", i.memory_budget_bytes / 1e6);
  std::printf("load time      %.3f s\n", i.last_load_seconds);
  if (i.cache_enabled) {
    std::printf("cache          %llu entries on disk (%.1f MB), %llu in memory; this process: %llu hits, %llu misses\n",
                static_cast<unsigned long long>(i.cache_entries_disk), i.cache_bytes_disk / 1e6,
                static_cast<unsigned long long>(i.cache_entries_memory), static_cast<unsigned long long>(i.cache_hits),
                static_cast<unsigned long long>(i.cache_misses));
    if (!i.cache_problem.empty()) std::printf("cache problem  %s\n", i.cache_problem.c_str());
  }
  return 0;
}

int run_bench(CommonFlags& f, int64_t batch_size, int64_t batch_tokens, const std::string& input, int64_t limit) {
  std::vector<std::string> texts;
  {
    TextInput in(input);
    LineReader reader(in.fd, in.name);
    std::string line;
    while ((limit <= 0 || static_cast<int64_t>(texts.size()) < limit) && reader.next(line) == LineReader::Next::line) {
      texts.push_back(line);
    }
  }
  auto t0 = std::chrono::steady_clock::now();
  EmbedderOptions o = options_from(f);
  o.batch_size = batch_size;
  o.batch_tokens = batch_tokens;
  Embedder embedder(o);
  g_options_accepted = true;
  auto t1 = std::chrono::steady_clock::now();
  int64_t tokens = 0;
  for (const auto& t : texts) tokens += static_cast<int64_t>(embedder.tokenize(t).ids.size());
  auto t2 = std::chrono::steady_clock::now();
  std::vector<std::string_view> views(texts.begin(), texts.end());
  std::vector<float> out(texts.size() * static_cast<size_t>(embedder.dims()));
  embedder.embed(views, out);
  auto t3 = std::chrono::steady_clock::now();
  const double load_s = std::chrono::duration<double>(t1 - t0).count();
  const double run_s = std::chrono::duration<double>(t3 - t2).count();
  leanembed::EmbedderInfo i = embedder.info();
  std::printf("input          %s: %zu texts, %lld tokens\n", input.c_str(), texts.size(), static_cast<long long>(tokens));
  std::printf("model          %s (%s, %s path, %d threads)\n", i.model_path.c_str(), i.dtype.c_str(), i.path.c_str(), i.threads);
  std::printf("load time      %.3f s\n", load_s);
  std::printf("embed time     %.3f s (tokenization included)\n", run_s);
  std::printf("sentences/s    %.1f\n", texts.size() / run_s);
  std::printf("tokens/s       %.0f\n", tokens / run_s);
  std::printf("peak RSS       %.1f MB\n", peak_rss_mb());
  return 0;
}

// Writes the folder's fp32 model quantized to `dtype` under transformers.js' file name.
int run_quantize(CommonFlags& f, const std::string& out, bool force, bool no_smooth, bool no_mixed) {
  leanembed::QuantizeRequest request;
  request.model = {f.model, f.model_cache_dir, leanembed::Dtype::fp32, f.model_file};
  request.dtype = leanembed::dtype_from_name(f.dtype);
  request.out_folder = out;
  request.force = force;
  request.smooth = !no_smooth;
  request.mixed_precision = !no_mixed;
  g_options_accepted = true;
  const leanembed::QuantizeReport r = leanembed::quantize_model_files(request);
  std::printf("wrote %s: %.1f MB (from %.1f MB fp32 '%s') in %.2f s\n", r.written.c_str(), r.written_bytes / 1e6,
              r.source_bytes / 1e6, r.source.c_str(), r.seconds);
  std::printf("scheme: %s; %d MatMuls and %d embedding tables rewritten (%.1f MB -> %.1f MB)\n", r.scheme.c_str(),
              r.matmuls, r.tables, r.weight_bytes_before / 1e6, r.weight_bytes_after / 1e6);
  if (r.clamped_to_fp16) std::printf("note: %zu values beyond the float16 range were clamped to +-65504\n", r.clamped_to_fp16);
  if (!r.copied.empty()) std::printf("copied %zu metadata files into '%s'\n", r.copied.size(), out.c_str());
  return 0;
}

}  // namespace

// libgomp (the OpenMP runtime oneDNN and our kernels share) lets idle threads spin ~300k rounds
// after every parallel region: milliseconds of burnt CPU after each call, and a 2-10x slowdown when
// another process wants the cores. It reads its setting only once, when it loads, so unless the user
// chose one, the CLI restarts itself once with a short spin (GOMP_SPINCOUNT=10000): the same speed on
// an idle machine, ~0.07 ms of spinning after a call. On a machine shared with other busy processes
// OMP_WAIT_POLICY=passive is faster still (measured in src/kernels/README.md). `serve` restarts
// with OMP_WAIT_POLICY=passive instead: requests come after pauses, and on the development VM an
// encoder run after a pause took 10 ms (p50, at 25-50 requests/s) with the short spin against 6-7
// passive; the short spin gives ~20% more on 32-text requests (bench/load/README.md), for whoever
// sets GOMP_SPINCOUNT=10000.
void limit_openmp_spinning(int argc, char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (argc > 1 && std::strcmp(argv[1], "serve") == 0) ::setenv("OMP_WAIT_POLICY", "passive", 1);
  else ::setenv("GOMP_SPINCOUNT", "10000", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: then run as we are
}

// glibc raises its mmap threshold each time a large block is freed, after which blocks of that size
// come from the heap and stay there: batches of varying size then ratchet RSS up (measured: 152 MB
// peak instead of 120 MB on 2000 corpus sentences). A fixed threshold keeps large buffers in their
// own mappings, returned to the system when freed.
void keep_large_blocks_mapped() { mallopt(M_MMAP_THRESHOLD, 128 * 1024); }

int main(int argc, char** argv) {
  limit_openmp_spinning(argc, argv);
  keep_large_blocks_mapped();
  CLI::App app{"leanembed: sentence embeddings from Hugging Face ONNX model folders"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "leanembed 0.1.0");

  EmbedFlags ef;
  CLI::App* embed = app.add_subcommand("embed", "Embed texts (arguments, else one per line on stdin)");
  add_model_flags(embed, ef.common);
  add_run_flags(embed, ef.common);
  embed->add_option("--batch-size", ef.batch_size, "Texts per encoder run at most")
      ->envname("LEANEMBED_BATCH_SIZE")->check(CLI::PositiveNumber)->capture_default_str();
  embed->add_option("--batch-tokens", ef.batch_tokens, "Tokens per encoder run at most")
      ->envname("LEANEMBED_BATCH_TOKENS")->check(CLI::PositiveNumber)->capture_default_str();
  embed->add_option("--pooling", ef.pooling, "mean, cls, max, lasttoken (default: the model's)")
      ->envname("LEANEMBED_POOLING")->check(CLI::IsMember({"mean", "cls", "max", "lasttoken", "mean_sqrt_len"}));
  embed->add_flag("--no-normalize", ef.no_normalize, "Do not L2-normalize the vectors")->envname("LEANEMBED_NO_NORMALIZE");
  embed->add_option("--dims", ef.dims, "Keep the first N dimensions (Matryoshka; renormalized unless --no-normalize)")
      ->envname("LEANEMBED_DIMS")->check(CLI::NonNegativeNumber);
  embed->add_option("--format", ef.format, "jsonl, json, npy, f32")
      ->envname("LEANEMBED_FORMAT")->check(CLI::IsMember({"jsonl", "json", "npy", "f32"}))->capture_default_str();
  embed->add_option("-o,--output", ef.output, "Write here instead of stdout")->envname("LEANEMBED_OUTPUT");
  embed->add_option("-i,--input", ef.input, "Read texts from this file (one per line) instead of stdin")
      ->envname("LEANEMBED_INPUT");
  embed->add_option("texts", ef.texts, "Texts to embed");
  add_cache_flags(embed, ef.common);

  EmbedFlags pf;
  CLI::App* precompute = app.add_subcommand("precompute", "Fill an embedding cache with the vectors of a file's lines");
  add_model_flags(precompute, pf.common);
  add_run_flags(precompute, pf.common);
  add_cache_flags(precompute, pf.common);
  precompute->add_option("-i,--input", pf.input, "Texts, one per line")->required()->envname("LEANEMBED_INPUT");
  precompute->add_option("--batch-size", pf.batch_size, "Texts per encoder run at most")
      ->envname("LEANEMBED_BATCH_SIZE")->check(CLI::PositiveNumber);
  precompute->add_option("--batch-tokens", pf.batch_tokens, "Tokens per encoder run at most")
      ->envname("LEANEMBED_BATCH_TOKENS")->check(CLI::PositiveNumber);

  CommonFlags tf;
  std::vector<std::string> tokenize_texts;
  CLI::App* tokenize = app.add_subcommand("tokenize", "Token ids and tokens per text");
  add_model_flags(tokenize, tf);
  tokenize->add_option("texts", tokenize_texts, "Texts to tokenize");

  CommonFlags inf;
  CLI::App* info = app.add_subcommand("info", "Files, architecture, execution path, planned memory");
  add_model_flags(info, inf);
  add_run_flags(info, inf);
  add_cache_flags(info, inf);

  CommonFlags bf;
  int64_t bench_batch = leanembed::EmbedderOptions{}.batch_size, bench_tokens = leanembed::EmbedderOptions{}.batch_tokens;
  int64_t bench_limit = 0;
  std::string bench_input;
  CLI::App* bench = app.add_subcommand("bench", "Sentences/s, tokens/s, load time, peak RSS on a file of texts");
  add_model_flags(bench, bf);
  add_run_flags(bench, bf);
  bench->add_option("--input", bench_input, "Texts, one per line")->required()->envname("LEANEMBED_INPUT");
  bench->add_option("--limit", bench_limit, "Use the first N lines only")->check(CLI::NonNegativeNumber);
  bench->add_option("--batch-size", bench_batch, "Texts per encoder run")->check(CLI::PositiveNumber)->envname("LEANEMBED_BATCH_SIZE");
  bench->add_option("--batch-tokens", bench_tokens, "Tokens per encoder run")->check(CLI::PositiveNumber)->envname("LEANEMBED_BATCH_TOKENS");

  CommonFlags qf;
  std::string quantize_out;
  bool quantize_force = false, quantize_no_smooth = false, quantize_no_mixed = false;
  CLI::App* quantize = app.add_subcommand("quantize", "Write the model's quantized / fp16 ONNX file (leanembed's quantizer)");
  quantize->add_option("-m,--model", qf.model, "Model folder, or Hugging Face id looked up in the cache folder")
      ->envname("LEANEMBED_MODEL")->capture_default_str();
  quantize->add_option("--model-cache-dir,--cache-dir", qf.model_cache_dir, "Model cache folder for hub ids")
      ->envname("LEANEMBED_MODEL_CACHE_DIR");
  quantize->add_option("--model-file", qf.model_file, "fp32 ONNX file to quantize (default onnx/model.onnx)");
  quantize->add_option("--dtype", qf.dtype, "q8 (= uint8 weights), uint8, int8, q4, fp16")
      ->required()->check(CLI::IsMember({"q8", "uint8", "int8", "q4", "fp16"}));
  quantize->add_option("-o,--out", quantize_out, "Write into this folder (with the metadata files) instead of the model's");
  quantize->add_flag("--force", quantize_force, "Replace an existing output file");
  quantize->add_flag("--no-smooth", quantize_no_smooth,
                     "No per-channel activation scaling (no Mul before the quantized MatMuls; less accurate)");
  quantize->add_flag("--no-mixed", quantize_no_mixed,
                     "Quantize the word table and the first layer's attention too (default: fp16 weights there; "
                     "smaller file, less accurate)");

  leanembed::server::ServeCommand serve = leanembed::server::add_serve_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    if (embed->parsed()) return run_embed(ef);
    if (precompute->parsed()) return run_precompute(pf);
    if (tokenize->parsed()) return run_tokenize(tf, tokenize_texts);
    if (info->parsed()) return run_info(inf);
    if (bench->parsed()) return run_bench(bf, bench_batch, bench_tokens, bench_input, bench_limit);
    if (serve.command->parsed()) return serve.run();
    if (quantize->parsed()) return run_quantize(qf, quantize_out, quantize_force, quantize_no_smooth, quantize_no_mixed);
  } catch (const leanembed::Error& e) {
    std::fprintf(stderr, "leanembed: error (%s): %s\n", leanembed::error_code_name(e.code()), e.what());
    return e.code() == leanembed::ErrorCode::invalid_argument && !g_options_accepted ? 2 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "leanembed: error: %s\n", e.what());
    return 1;
  }
  return 2;
}
