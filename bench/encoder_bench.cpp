// The encoder alone, on the corpus' real token sequences: tokens/s and peak RSS of this process.
// bench/encoder_compare runs it beside onnxruntime-node on the same token batches.
//
//   encoder_bench --model DIR [--model-file onnx/model.onnx] --input FILE [--limit N] [--batch B]
//                 [--threads T] [--max-length L] [--repeats R] [--path auto|fast|interpreter]
//                 [--arena on|off] [--tokens-out FILE.json] [--parallel-min-tokens N]
//                 [--row-min-elements N] [--gemm-min-macs N]
// The last three replace the library's thresholds for one thread (FastEncoderOptions::
// parallel_min_tokens, kernels::kRowParallelMinElements, kernels::kGemmParallelMinMacs; -1 = theirs).
// Batches are consecutive texts of the input (corpus order), as the peer script forms them.
// Prints one JSON line.
#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "embed/model_folder.h"
#include "kernels/threads.h"
#include "leanembed/error.h"
#include "leanembed/tokenizer.h"
#include "onnx/reader.h"
#include "runtime/engine.h"

using namespace leanembed;

namespace {

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

const char* arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

}  // namespace

int main(int argc, char** argv) try {
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);  // as the leanembed CLI does (tools/cli/main.cpp)
  const std::string model = arg(argc, argv, "--model", "");
  const std::string input = arg(argc, argv, "--input", "");
  if (model.empty() || input.empty()) {
    std::fprintf(stderr, "usage: encoder_bench --model DIR --input FILE [--model-file F] [--limit N] [--batch B] "
                         "[--threads T] [--max-length L] [--repeats R] [--path P] [--arena on|off] [--tokens-out F] "
                         "[--parallel-min-tokens N] [--row-min-elements N] [--gemm-min-macs N]\n");
    return 2;
  }
  const long limit = std::atol(arg(argc, argv, "--limit", "0"));
  const int64_t batch = std::atol(arg(argc, argv, "--batch", "8"));
  const int threads = std::atoi(arg(argc, argv, "--threads", "2"));
  const int repeats = std::atoi(arg(argc, argv, "--repeats", "1"));
  const std::string path = arg(argc, argv, "--path", "auto");
  const bool arena = std::string(arg(argc, argv, "--arena", "on")) == "on";
  const std::string tokens_out = arg(argc, argv, "--tokens-out", "");
  const int64_t parallel_min_tokens = std::atol(arg(argc, argv, "--parallel-min-tokens", "-1"));
  kernels::row_parallel_set_min_elements(std::atol(arg(argc, argv, "--row-min-elements", "-1")));
  kernels::gemm_parallel_set_min_macs(std::atol(arg(argc, argv, "--gemm-min-macs", "-1")));

  ModelLocation where;
  where.model = model;
  where.model_file = arg(argc, argv, "--model-file", "");
  ModelFolder folder = resolve_model_folder(where);
  const long max_length = std::atol(arg(argc, argv, "--max-length", "0"));
  const size_t max_len = max_length > 0 ? static_cast<size_t>(max_length) : static_cast<size_t>(folder.max_length);

  // Token sequences of the input, tokenized once (not timed).
  Tokenizer tokenizer = Tokenizer::load(folder.folder);
  std::vector<std::vector<int64_t>> seqs;
  {
    std::ifstream in(input);
    std::string line;
    while ((limit <= 0 || static_cast<long>(seqs.size()) < limit) && std::getline(in, line))
      seqs.push_back(tokenizer.encode(line, max_len).ids);
  }
  if (!tokens_out.empty()) {
    std::ofstream(tokens_out) << nlohmann::json{{"sequences", seqs}}.dump();
  }

  kernels::threads_set(threads);
  const auto t0 = std::chrono::steady_clock::now();
  runtime::EngineOptions eo;
  eo.path = path == "fast" ? ExecutionPath::fast
            : path == "interpreter" ? ExecutionPath::interpreter : ExecutionPath::automatic;
  eo.keep_arena = arena;
  eo.parallel_min_tokens = parallel_min_tokens;
  runtime::Engine engine(onnx::read_model(folder.onnx_path, onnx::ReadOptions{.copy_misaligned = false}), eo, folder.hidden_size);
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const int64_t hidden = engine.description().hidden;

  std::vector<int64_t> ids, offsets;
  std::vector<float> out;
  int64_t tokens = 0;
  size_t planned_max = 0;
  const auto t1 = std::chrono::steady_clock::now();
  for (int r = 0; r < repeats; ++r) {
    for (size_t i = 0; i < seqs.size(); i += static_cast<size_t>(batch)) {
      ids.clear();
      offsets.assign(1, 0);
      int64_t longest = 0;
      for (size_t k = i; k < std::min(seqs.size(), i + static_cast<size_t>(batch)); ++k) {
        ids.insert(ids.end(), seqs[k].begin(), seqs[k].end());
        offsets.push_back(static_cast<int64_t>(ids.size()));
        longest = std::max<int64_t>(longest, static_cast<int64_t>(seqs[k].size()));
      }
      planned_max = std::max(planned_max, engine.planned_bytes(static_cast<int64_t>(offsets.size()) - 1,
                                                               static_cast<int64_t>(ids.size()), longest));
      out.resize(ids.size() * static_cast<size_t>(hidden));
      engine.run(ids, {}, offsets, out);
      tokens += static_cast<int64_t>(ids.size());
    }
  }
  const double run_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  struct stat st {};
  ::stat(folder.onnx_path.c_str(), &st);
  nlohmann::json j = {{"engine", "leanembed (" + engine.description().path + (arena ? ")" : ", arena off)")},
                      {"batch", batch},
                      {"threads", threads},
                      {"sequences", seqs.size() * static_cast<size_t>(repeats)},
                      {"tokens", tokens},
                      {"load_ms", load_ms},
                      {"run_s", run_s},
                      {"tokens_per_s", tokens / run_s},
                      {"sequences_per_s", seqs.size() * repeats / run_s},
                      {"peak_rss_mb", peak_rss_mb()},
                      {"model_file_mb", st.st_size / 1048576.0},
                      {"planned_arena_mb", planned_max / 1048576.0}};
  std::puts(j.dump().c_str());
  return 0;
} catch (const leanembed::Error& e) {
  std::fprintf(stderr, "encoder_bench: %s\n", e.what());
  return 1;
}
