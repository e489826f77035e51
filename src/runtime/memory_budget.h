// The memory budget (EmbedderOptions::max_memory_bytes, `--max-memory`): what a loaded engine keeps
// resident, charged once at load, and the work memory left for one batch, which the engine's batch
// plan (Engine::batch_plan) must fit. The refusals are worded here, naming every charge.
//
// Charged at load (src/embed/README.md, "Memory budget", has the measured figures):
//   the model file's pages the process keeps (the file less the word table read with pread and less
//   the parts the engine copied out and released), the fast path's own weight copies, what the
//   caller holds for the model (the tokenizer's tables, Dense modules' weights), and the runtime:
//   kRuntimeAllowanceBytes for code paged in, oneDNN's JIT kernels and primitives, plus
//   kStackAllowanceBytes per thread (the intra-op threads, the caller and the idle watcher).
// The rest is the work budget: one batch's plan at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/engine.h"

namespace leanembed::runtime {

// Memory the running engine adds that is neither the model file, the caller's tables, nor planned
// work memory, charged as a fixed allowance. Measured on MiniLM, 2 threads, against `leanembed
// --version` (the bare process), on the AVX-512 development box: library code paged in on first
// use (libdnnl.so +4.0 MB, leanembed +0.8 MB, libstdc++/libgomp +0.3 MB), oneDNN's JIT-generated
// kernels (3.4 MB; 1.4 MB with AVX2), oneDNN's primitives and the small heap blocks of a call
// (~2.9 MB of heap); 11.4 MB in all.
inline constexpr std::size_t kRuntimeAllowanceBytes = std::size_t{12} << 20;
// Per thread (intra-op workers, the caller, the idle watcher): stack pages touched (measured ~30 KB
// per worker; allowed 256 KiB).
inline constexpr std::size_t kStackAllowanceBytes = std::size_t{256} << 10;

// What the caller holds for the model besides the engine.
struct CallerCharge {
  std::size_t tokenizer_bytes = 0;  // Tokenizer::memory_bytes()
  std::size_t other_bytes = 0;      // e.g. Dense modules' weights
  int64_t pooled_width = 0;         // floats per sequence of the caller's pooled buffer (Engine::batch_plan)
};

struct MemoryBudget {
  std::size_t max_memory_bytes = 0;
  std::size_t resident_bytes = 0;  // charged at load
  std::size_t work_bytes = 0;      // left for one batch: max_memory_bytes - resident_bytes
};

// The budget for `engine` (the first load's; a reload loads the same files, so the same charges).
// Throws Error(unsupported) when the engine runs the interpreter (its work memory is not planned),
// Error(out_of_memory) when the resident charge alone, or with the plan of one text of max_length
// tokens, exceeds max_memory_bytes (> 0): naming the file, every charge and the total.
// `threads`: the intra-op threads; model_file_bytes: the size of model_path.
MemoryBudget plan_memory_budget(const Engine& engine, std::size_t max_memory_bytes, const std::string& model_path,
                                std::size_t model_file_bytes, const CallerCharge& caller, int64_t max_length, int threads);

// "61.0 MB" (MiB, one decimal, as the budget messages have always printed them).
std::string megabytes_text(std::size_t bytes);

}  // namespace leanembed::runtime
