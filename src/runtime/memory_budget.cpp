#include "runtime/memory_budget.h"

#include <algorithm>
#include <cstdio>

#include "leanembed/error.h"

namespace leanembed::runtime {

std::string megabytes_text(std::size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1048576.0);
  return buf;
}

MemoryBudget plan_memory_budget(const Engine& engine, std::size_t max_memory_bytes, const std::string& model_path,
                                std::size_t model_file_bytes, const CallerCharge& caller, int64_t max_length, int threads) {
  const EngineDescription& d = engine.description();
  if (d.path != "fast") {
    throw Error(ErrorCode::unsupported, "a memory budget (max_memory) needs the fast path, whose work memory is planned; '" +
                                            model_path + "' runs on the interpreter (" + d.reason + ")");
  }
  const std::size_t stacks = static_cast<std::size_t>(threads + 1) * kStackAllowanceBytes;
  // The file's pages the process keeps: all of it but a word table read with pread (its rows pass
  // through a stack buffer; the page cache holds them, outside the process), and but the parts the
  // engine copied out and dropped (released_file_bytes: charged as its own copies instead).
  const std::size_t file_charge =
      model_file_bytes - std::min(model_file_bytes, d.word_table_pread_bytes + d.released_file_bytes);
  const std::string file_text =
      d.word_table_pread_bytes > 0
          ? "the model file (" + megabytes_text(model_file_bytes) + ", of which the word table's " +
                megabytes_text(d.word_table_pread_bytes) + " are read with pread and not kept) needs " + megabytes_text(file_charge)
          : "the model file needs " + megabytes_text(model_file_bytes);
  if (file_charge >= max_memory_bytes) {
    throw Error(ErrorCode::out_of_memory, "the memory budget of " + megabytes_text(max_memory_bytes) +
                                              " (max_memory) is too small: " + file_text + " for '" + model_path +
                                              "' alone; raise the budget or choose a smaller dtype");
  }
  // Weight bytes the fast path holds beyond the file's mapping (packed / widened / transposed copies).
  const std::size_t owned = d.owned_weight_bytes;
  MemoryBudget b;
  b.max_memory_bytes = max_memory_bytes;
  b.resident_bytes = file_charge + owned + caller.tokenizer_bytes + caller.other_bytes + kRuntimeAllowanceBytes + stacks;
  const std::size_t one_text = engine.batch_plan(1, max_length, max_length, caller.pooled_width).total();
  if (b.resident_bytes + one_text > max_memory_bytes) {
    throw Error(ErrorCode::out_of_memory,
                "the memory budget of " + megabytes_text(max_memory_bytes) + " is too small: " + file_text +
                    (owned >= (std::size_t{64} << 10) ? ", the fast path's weight copies " + megabytes_text(owned) : std::string()) +
                    ", the tokenizer " + megabytes_text(caller.tokenizer_bytes) +
                    (caller.other_bytes > 0 ? ", the Dense modules " + megabytes_text(caller.other_bytes) : std::string()) +
                    ", the runtime (code, JIT kernels, thread stacks) " + megabytes_text(kRuntimeAllowanceBytes + stacks) +
                    " and one text of " + std::to_string(max_length) + " tokens " + megabytes_text(one_text) +
                    " of work memory: " + megabytes_text(b.resident_bytes + one_text) +
                    " in all; raise max_memory or lower max_length");
  }
  b.work_bytes = max_memory_bytes - b.resident_bytes;
  return b;
}

}  // namespace leanembed::runtime
