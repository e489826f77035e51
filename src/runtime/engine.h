// The runtime's front: one object that runs an encoder graph on a packed batch of token sequences,
// on the fused fast path when the graph is a recognised encoder and on the interpreter otherwise
// (or as forced). It says which path runs and why.
//
// Packed batch (as the fast path takes it): S sequences laid end to end, T tokens in all;
// offsets has S + 1 entries (offsets[0] = 0, offsets[S] = T). The interpreter path pads the batch
// to [S, Lmax] with attention_mask 0 on padding, runs the graph, and copies the real tokens' rows
// back, so both paths fill the same packed output [T, hidden].
//
// Threading: run() may be called from several threads; runs are serialised inside.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "leanembed/model_options.h"  // ExecutionPath
#include "onnx/model.h"
#include "runtime/encoder/encoder_weights.h"

namespace leanembed::runtime {

struct EngineOptions {
  ExecutionPath path = ExecutionPath::automatic;
  bool keep_arena = true;  // fast path: keep the work arena between runs
  // Fast path: read the word table's rows with pread from the model file instead of through its
  // mapping, so the table costs no resident memory (encoder::RecognizeOptions::table_rows_by_pread).
  bool table_rows_by_pread = true;
  // Fast path: runs of fewer real tokens use one thread (encoder::FastEncoderOptions::
  // parallel_min_tokens; -1 = automatic, 0 = never).
  int64_t parallel_min_tokens = -1;
};

struct EngineDescription {
  std::string path;         // "fast" or "interpreter"
  std::string reason;       // why this path runs
  int64_t hidden = 0;       // 0 when the interpreter path cannot tell before a run
  int64_t layers = 0, heads = 0;
  int64_t max_positions = 0;  // 0 when unknown
  int64_t ffn = 0;            // the feed-forward width (fast path; 0 on the interpreter path)
  // Fast path: the weights' form as the file stores them (EncoderWeights::weight_form, e.g. "fp32",
  // "int8 (uint8 weights, per-tensor scales)", "q4 (block 32)", "fp16"), the kernels the linear
  // layers run on, and the weight bytes held beyond the file's mapping (FastEncoder::owned_weight_bytes).
  // Interpreter: weight_form "" (the interpreter runs whatever the graph holds).
  std::string weight_form;
  std::string linear_kernels;
  std::size_t owned_weight_bytes = 0;
  // Fast path: the word table's bytes in the model file when its rows are read with pread (they then
  // take no resident memory); 0 when they are read through the mapping or owned memory.
  std::size_t word_table_pread_bytes = 0;
  bool word_table_by_pread() const { return word_table_pread_bytes > 0; }
  // The kernels runs use, as `leanembed info` shows them. Fast path: the ISA table of the row
  // kernels and of attention (kernels/dispatch.h, at load time) and the linear layers' kernels, e.g.
  // "avx2 row kernels, avx512 attention, linear layers: oneDNN matmul". Interpreter: its own
  // plain loops (it uses no CPU-specific kernel and no oneDNN).
  std::string kernels;
  // Weights without a graph (a safetensors file): the tensors of the file the encoder does not use
  // (pooler.*, embeddings.position_ids ...), for `info`. Empty for ONNX files.
  std::vector<std::string> ignored_tensors;
  // Bytes of the model file the weights were copied out of and that are not kept resident
  // (EncoderWeights::released_file_bytes; safetensors' linear weights): a budget charges the copy
  // (owned_weight_bytes), not the file's pages too.
  std::size_t released_file_bytes = 0;
  // Fast path: runs of fewer real tokens than this use one thread (FastEncoder::parallel_min_tokens(),
  // the automatic value resolved); 0 = never, and on the interpreter path.
  int64_t parallel_min_tokens = 0;
};

// The whole work memory of one run of a batch shape: the engine's arena (Engine::planned_bytes), the
// batch buffers its caller keeps for the run (packed ids and offsets, hidden states [tokens, hidden],
// pooled vectors [sequences, pooled_width]) and oneDNN's packing buffers malloc'd inside the largest
// product (fast path only: kernels::onednn_gemm_internal_bytes_bound).
struct BatchPlan {
  std::size_t arena = 0, buffers = 0, gemm_internal = 0;
  std::size_t total() const { return arena + buffers + gemm_internal; }
};

class Engine {
 public:
  // Prepares `model` for running. ExecutionPath::fast throws Error(unsupported) with the recognizer's
  // reason when the graph is not a recognised encoder; the interpreter path throws
  // Error(unsupported) for ops it lacks. `hidden_hint` (config.json's hidden_size, 0 if unknown)
  // is used by the interpreter path for planning figures only.
  Engine(onnx::Model model, const EngineOptions& options, int64_t hidden_hint = 0);
  // Runs `weights` read without a graph (load_engine.h: a safetensors file) on the fast path; `what`
  // says what was read, for the description's reason. ExecutionPath::interpreter is refused
  // (Error(unsupported): the interpreter runs ONNX graphs); kernels refusing the weights throw.
  Engine(encoder::EncoderWeights weights, const EngineOptions& options, const std::string& what);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const EngineDescription& description() const { return description_; }
  // The loader (load_engine.h) notes the file's tensors the encoder does not use.
  void set_ignored_tensors(std::vector<std::string> names) { description_.ignored_tensors = std::move(names); }

  // Work memory a run of this batch shape needs beyond the weights: exact for the fast path (its
  // arena), an estimate for the interpreter (inputs + output; its intermediates come on top).
  std::size_t planned_bytes(int64_t sequences, int64_t total_tokens, int64_t max_len) const;
  // The batch's whole work memory (BatchPlan), `longest` its longest sequence, `pooled_width` the
  // floats per sequence of the caller's pooled buffer. Uses the current intra-op thread count.
  BatchPlan batch_plan(int64_t sequences, int64_t tokens, int64_t longest, int64_t pooled_width) const;

  // ids, type_ids: size T (type_ids may be empty = all 0); offsets: size S + 1; out: size T * hidden.
  // Throws Error(invalid_argument) for inconsistent sizes or out-of-range ids.
  void run(std::span<const int64_t> ids, std::span<const int64_t> type_ids, std::span<const int64_t> offsets,
           std::span<float> out);

  // Frees work memory held between runs (the fast path's arena).
  void release_work_memory();

 private:
  struct Fast;
  struct Interpreted;
  void describe_fast(const std::string& why);
  void run_interpreter(std::span<const int64_t> ids, std::span<const int64_t> type_ids,
                       std::span<const int64_t> offsets, std::span<float> out);

  EngineDescription description_;
  std::unique_ptr<Fast> fast_;
  std::unique_ptr<Interpreted> interpreted_;
  std::mutex mutex_;
};

}  // namespace leanembed::runtime
