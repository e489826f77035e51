#include "runtime/engine.h"

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/dispatch.h"
#include "kernels/kernels.h"
#include "kernels/threads.h"
#include "leanembed/error.h"
#include "runtime/encoder/fast_encoder.h"
#include "runtime/encoder/recognize_encoder.h"
#include "runtime/interpreter/interpreter.h"

namespace leanembed::runtime {

struct Engine::Fast {
  encoder::FastEncoder encoder;
  Fast(encoder::EncoderWeights w, encoder::FastEncoderOptions o) : encoder(std::move(w), o) {}
};

struct Engine::Interpreted {
  interp::Interpreter interpreter;
  std::string ids_name, mask_name, types_name, output_name;
  std::string path;  // the model file, for messages
  explicit Interpreted(const onnx::Model& m) : interpreter(m) {}
};

namespace {

// Finds the graph input whose name is one of `names` (exporters' spellings), or "".
std::string input_named(const std::vector<onnx::ValueInfo>& inputs, std::initializer_list<const char*> names) {
  for (const char* n : names)
    for (const auto& v : inputs)
      if (v.name == n) return v.name;
  return "";
}

// EngineDescription::kernels of the fast path: "matmul" in FastEncoder::linear_kernels() is oneDNN's.
std::string fast_path_kernels(const std::string& linear_kernels) {
  const kernels::KernelConfig& config = kernels::kernel_config();
  std::string linear;
  for (std::size_t at = 0; at <= linear_kernels.size();) {
    std::size_t end = linear_kernels.find(", ", at);
    if (end == std::string::npos) end = linear_kernels.size();
    const std::string name = linear_kernels.substr(at, end - at);
    linear += (linear.empty() ? "" : ", ") + (name == "matmul" ? std::string("oneDNN matmul") : name);
    at = end + 2;
  }
  return std::string(config.rows->isa) + " row kernels, " + config.attention->isa + " attention, linear layers: " + linear;
}

}  // namespace

Engine::Engine(onnx::Model model, const EngineOptions& options, int64_t hidden_hint) {
  std::string not_fast;
  if (options.path != ExecutionPath::interpreter) {
    encoder::RecognizeOptions ro;
    ro.table_rows_by_pread = options.table_rows_by_pread;
    encoder::RecognizeResult r = encoder::recognize_encoder(model, ro);
    if (r.weights) {
      encoder::FastEncoderOptions fo;
      fo.keep_arena = options.keep_arena;
      fo.parallel_min_tokens = options.parallel_min_tokens;
      try {
        fast_ = std::make_unique<Fast>(std::move(*r.weights), fo);
      } catch (const Error& e) {
        // Recognised, but a kernel refuses the weights (e.g. an encoding variant it does not take):
        // the interpreter runs it unless the fast path was demanded.
        if (options.path == ExecutionPath::fast || e.code() == ErrorCode::out_of_memory) throw;
        r.reason = std::string("the fast path could not be set up: ") + e.what();
      }
    }
    if (fast_) {
      describe_fast(options.path == ExecutionPath::fast ? "forced, and the graph is a recognised BERT-family encoder"
                                                     : "the graph is a recognised BERT-family encoder");
      return;
    }
    if (options.path == ExecutionPath::fast) {
      throw Error(ErrorCode::unsupported, "the fast path was asked for, but '" + model.path +
                                              "' is not a recognised encoder: " + r.reason);
    }
    not_fast = r.reason;
  }
  interpreted_ = std::make_unique<Interpreted>(model);
  interpreted_->path = model.path;
  const auto& inputs = interpreted_->interpreter.inputs();
  interpreted_->ids_name = input_named(inputs, {"input_ids"});
  interpreted_->mask_name = input_named(inputs, {"attention_mask"});
  interpreted_->types_name = input_named(inputs, {"token_type_ids"});
  if (interpreted_->ids_name.empty()) {
    throw Error(ErrorCode::unsupported, "'" + model.path + "' has no graph input named input_ids");
  }
  for (const auto& v : inputs) {
    if (v.name != interpreted_->ids_name && v.name != interpreted_->mask_name && v.name != interpreted_->types_name) {
      throw Error(ErrorCode::unsupported, "'" + model.path + "' takes an input '" + v.name +
                                              "' that an encoder is not given (expected input_ids, attention_mask, token_type_ids)");
    }
  }
  const auto& outputs = interpreted_->interpreter.outputs();
  auto it = std::find_if(outputs.begin(), outputs.end(), [](const onnx::ValueInfo& v) { return v.name == "last_hidden_state"; });
  interpreted_->output_name = it != outputs.end() ? it->name : outputs.empty() ? "" : outputs.front().name;
  if (interpreted_->output_name.empty()) throw Error(ErrorCode::model_format, "'" + model.path + "' has no graph output");
  description_.path = "interpreter";
  description_.reason = options.path == ExecutionPath::interpreter ? "forced" : "not a recognised encoder: " + not_fast;
  description_.hidden = hidden_hint;
  description_.kernels = "interpreter ops (plain loops, no CPU-specific kernels)";
  // The positions a text may use: the rows of the graph's position table, when it has exactly one
  // (exporters name it "...position_embeddings.weight"); 0 = unknown.
  int64_t tables = 0;
  for (const auto& t : model.graph.initializers) {
    if (t.dims.size() == 2 && t.name.ends_with("position_embeddings.weight") && ++tables == 1)
      description_.max_positions = t.dims[0];
  }
  if (tables != 1) description_.max_positions = 0;
}

Engine::Engine(encoder::EncoderWeights weights, const EngineOptions& options, const std::string& what) {
  if (options.path == ExecutionPath::interpreter)
    throw Error(ErrorCode::unsupported, "the interpreter runs ONNX graphs, and " + what +
                                            " has none: it runs on the fast path only (choose path auto or fast, or load an ONNX file)");
  encoder::FastEncoderOptions fo;
  fo.keep_arena = options.keep_arena;
  fo.parallel_min_tokens = options.parallel_min_tokens;
  fast_ = std::make_unique<Fast>(std::move(weights), fo);
  describe_fast(what);
}

void Engine::describe_fast(const std::string& why) {
  const encoder::FastEncoder& e = fast_->encoder;
  const encoder::EncoderConfig& c = e.config();
  const std::string form = e.weights().weight_form;
  const encoder::EmbeddingTable& word = e.weights().word_embeddings;
  const std::size_t pread_bytes = word.row_source ? static_cast<std::size_t>(word.size) * word.element_bytes() : 0;
  description_ = {"fast",
                  why + "; " + form + " weights (linear layers: " + e.linear_kernels() + ")" +
                      (pread_bytes > 0 ? "; word table rows read with pread" : ""),
                  c.hidden, c.layers, c.heads, c.max_positions, c.ffn, form, e.linear_kernels(), e.owned_weight_bytes(),
                  pread_bytes, fast_path_kernels(e.linear_kernels()), {}, e.weights().released_file_bytes,
                  e.parallel_min_tokens()};
}

Engine::~Engine() = default;

std::size_t Engine::planned_bytes(int64_t sequences, int64_t total_tokens, int64_t max_len) const {
  if (fast_) return fast_->encoder.planned_bytes(sequences, total_tokens, max_len);
  const int64_t padded = sequences * max_len;
  return static_cast<std::size_t>(padded * 3 * sizeof(int64_t) + padded * std::max<int64_t>(description_.hidden, 0) * sizeof(float));
}

// oneDNN's packing buffers inside the largest product of a batch (kernels::
// onednn_gemm_internal_bytes_bound is monotone in the rows, so M = all tokens covers the chunked
// products too): the linear layers (T x H x H, T x F x H, T x H x F) and attention (L x L x d,
// L x d x L). The interpreter runs no oneDNN product.
BatchPlan Engine::batch_plan(int64_t sequences, int64_t tokens, int64_t longest, int64_t pooled_width) const {
  const auto T = static_cast<std::size_t>(tokens), S = static_cast<std::size_t>(sequences);
  const int64_t H = std::max<int64_t>(description_.hidden, 0);
  BatchPlan p;
  p.arena = planned_bytes(sequences, tokens, longest);
  p.buffers = T * (sizeof(int64_t) + static_cast<std::size_t>(H) * sizeof(float)) +
              S * (sizeof(int64_t) + static_cast<std::size_t>(std::max<int64_t>(pooled_width, 0)) * sizeof(float));
  if (fast_) {
    const int threads = kernels::threads_get();
    const int64_t F = description_.ffn, d = description_.heads > 0 ? H / description_.heads : 0;
    for (auto [n, k] : {std::pair{H, H}, std::pair{F, H}, std::pair{H, F}})
      p.gemm_internal = std::max(p.gemm_internal, kernels::onednn_gemm_internal_bytes_bound(tokens, n, k, threads));
    if (d > 0) {
      p.gemm_internal = std::max(p.gemm_internal, kernels::onednn_gemm_internal_bytes_bound(longest, longest, d, threads));
      p.gemm_internal = std::max(p.gemm_internal, kernels::onednn_gemm_internal_bytes_bound(longest, d, longest, threads));
    }
  }
  return p;
}

void Engine::run(std::span<const int64_t> ids, std::span<const int64_t> type_ids, std::span<const int64_t> offsets,
                 std::span<float> out) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fast_) {
    fast_->encoder.run(ids, type_ids, offsets, out);
  } else {
    run_interpreter(ids, type_ids, offsets, out);
  }
}

void Engine::run_interpreter(std::span<const int64_t> ids, std::span<const int64_t> type_ids,
                             std::span<const int64_t> offsets, std::span<float> out) {
  if (offsets.empty() || offsets.front() != 0 || offsets.back() != static_cast<int64_t>(ids.size()) ||
      (!type_ids.empty() && type_ids.size() != ids.size())) {
    throw Error(ErrorCode::invalid_argument, "engine: ids, type ids and offsets disagree");
  }
  const int64_t S = static_cast<int64_t>(offsets.size()) - 1;
  if (interpreted_->mask_name.empty() && S > 1) {
    // Without an attention mask, padding would be attended to: run each sequence alone.
    for (int64_t s = 0; s < S; ++s) {
      const int64_t b = offsets[s], e = offsets[s + 1];
      const int64_t one[2] = {0, e - b};
      const int64_t H = static_cast<int64_t>(out.size()) / std::max<int64_t>(offsets.back(), 1);
      run_interpreter(ids.subspan(b, e - b), type_ids.empty() ? type_ids : type_ids.subspan(b, e - b), one,
                      out.subspan(b * H, (e - b) * H));
    }
    return;
  }
  int64_t L = 0;
  for (int64_t s = 0; s < S; ++s) {
    if (offsets[s + 1] < offsets[s]) throw Error(ErrorCode::invalid_argument, "engine: offsets decrease");
    L = std::max(L, offsets[s + 1] - offsets[s]);
  }
  if (S == 0 || L == 0) return;
  std::vector<int64_t> pids(S * L, 0), pmask(S * L, 0), ptypes(S * L, 0);
  for (int64_t s = 0; s < S; ++s) {
    for (int64_t t = offsets[s]; t < offsets[s + 1]; ++t) {
      const int64_t at = s * L + (t - offsets[s]);
      pids[at] = ids[t];
      pmask[at] = 1;
      ptypes[at] = type_ids.empty() ? 0 : type_ids[t];
    }
  }
  interp::Interpreter::TensorMap feeds;
  feeds[interpreted_->ids_name] = interp::Tensor::from_int64s({S, L}, pids);
  if (!interpreted_->mask_name.empty()) feeds[interpreted_->mask_name] = interp::Tensor::from_int64s({S, L}, pmask);
  if (!interpreted_->types_name.empty()) feeds[interpreted_->types_name] = interp::Tensor::from_int64s({S, L}, ptypes);
  interp::Interpreter::TensorMap result = interpreted_->interpreter.run(feeds);
  const interp::Tensor& h = result.at(interpreted_->output_name);
  if (h.rank() != 3 || h.dim(0) != S || h.dim(1) != L || h.dtype() != onnx::DataType::float32) {
    throw Error(ErrorCode::unsupported, "engine: output '" + interpreted_->output_name + "' is " +
                                            interp::shape_string(h.shape()) + " " + interp::dtype_name(h.dtype()) +
                                            ", expected float32 [batch, sequence, hidden]");
  }
  const int64_t H = h.dim(2);
  if (description_.hidden > 0 && H != description_.hidden) {
    throw Error(ErrorCode::model_format, "'" + interpreted_->path + "' produces vectors of " + std::to_string(H) +
                                             " dimensions, but config.json says hidden_size " +
                                             std::to_string(description_.hidden));
  }
  if (static_cast<int64_t>(out.size()) != offsets.back() * H) {
    throw Error(ErrorCode::invalid_argument, "engine: output buffer holds " + std::to_string(out.size()) +
                                                 " floats, the batch needs " + std::to_string(offsets.back() * H));
  }
  std::span<const float> data = h.data<float>();
  for (int64_t s = 0; s < S; ++s) {
    const int64_t n = offsets[s + 1] - offsets[s];
    std::copy_n(data.data() + s * L * H, n * H, out.data() + offsets[s] * H);
  }
}

void Engine::release_work_memory() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fast_) fast_->encoder.release_arena();
}

}  // namespace leanembed::runtime
