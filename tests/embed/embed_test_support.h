// Shared by the embedder's tests: where the shared models are, default options, comparisons.
#pragma once

#include <cmath>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "leanembed/embedder.h"
#include "onnx/reader.h"
#include "test_support.h"

namespace leanembed::test {

inline std::string model_dir(const std::string& name) { return shared_dir() + "/models/" + name; }

// What a memory budget charges for a shared model's fp32 file: all of it but the word table, whose
// rows the fast path reads with pread (see embedder.h, max_memory_bytes).
inline std::size_t charged_model_bytes(const std::string& name) {
  const std::string path = model_dir(name) + "/onnx/model.onnx";
  const onnx::Model m = onnx::read_model(path);
  const onnx::TensorData* table = m.graph.initializer("embeddings.word_embeddings.weight");
  return std::filesystem::file_size(path) - (table ? table->bytes.size() : 0);
}

// Options for a shared model: 2 threads, no idle unload (tests unload on purpose).
inline EmbedderOptions options_for(const std::string& model, ExecutionPath path = ExecutionPath::automatic) {
  EmbedderOptions o;
  o.location.model = model_dir(model);
  o.path = path;
  o.threads = 2;
  o.idle_unload_seconds = 0;
  return o;
}

// Equal within 1e-6 per component (the same computation, possibly in another batch).
inline bool same(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::fabs(a[i] - b[i]) > 1e-6f) return false;
  return true;
}

inline double cosine(std::span<const float> a, std::span<const float> b) {
  double d = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) d += double(a[i]) * b[i], na += double(a[i]) * a[i], nb += double(b[i]) * b[i];
  return d / std::sqrt(na * nb);
}

}  // namespace leanembed::test
