// Loading the shared reference outputs and packing sentences for the encoder tests.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "onnx/reader.h"
#include "runtime/encoder/fast_encoder.h"
#include "runtime/encoder/recognize_encoder.h"
#include "test_support.h"

namespace leanembed::runtime::encoder::test_data {

struct Reference {
  std::vector<std::vector<int64_t>> ids, types;      // per sentence, unpadded
  std::vector<std::vector<float>> last_hidden_state; // first sentences: [len * hidden]
  std::vector<std::vector<double>> embeddings;       // pooled, L2-normalised
};

inline Reference load_reference(const std::string& model, const std::string& variant) {
  auto j = nlohmann::json::parse(test::read_file(test::shared_dir() + "/models/expected/" + model + "/" + variant + ".json"));
  Reference r;
  r.ids = j.at("input_ids").get<std::vector<std::vector<int64_t>>>();
  r.types = j.at("token_type_ids").get<std::vector<std::vector<int64_t>>>();
  for (const auto& sentence : j.at("last_hidden_state")) {
    std::vector<float> flat;
    for (const auto& token : sentence)
      for (const auto& v : token) flat.push_back(v.get<float>());
    r.last_hidden_state.push_back(std::move(flat));
  }
  r.embeddings = j.at("embeddings").get<std::vector<std::vector<double>>>();
  return r;
}

struct Packed {
  std::vector<int64_t> ids, types, offsets{0};
  int64_t max_len = 0;
};

inline Packed pack(const Reference& r, std::size_t first, std::size_t count) {
  Packed p;
  for (std::size_t s = first; s < first + count; ++s) {
    p.ids.insert(p.ids.end(), r.ids[s].begin(), r.ids[s].end());
    p.types.insert(p.types.end(), r.types[s].begin(), r.types[s].end());
    p.offsets.push_back(static_cast<int64_t>(p.ids.size()));
    p.max_len = std::max<int64_t>(p.max_len, static_cast<int64_t>(r.ids[s].size()));
  }
  return p;
}

// zero_copy: read with ReadOptions::copy_misaligned = false, as the Embedder does (weights stay
// views of the mapped file at whatever alignment the exporter left them).
inline EncoderWeights recognized(const std::string& model, const std::string& file, bool zero_copy = false) {
  onnx::ReadOptions options;
  options.copy_misaligned = !zero_copy;
  RecognizeResult r =
      recognize_encoder(onnx::read_model(test::shared_dir() + "/models/" + model + "/onnx/" + file, options));
  if (!r.weights) throw std::runtime_error("test: " + model + "/" + file + " not recognised: " + r.reason);
  return std::move(*r.weights);
}

// Runs a packed batch; returns out [T * hidden].
inline std::vector<float> run(FastEncoder& e, const Packed& p) {
  std::vector<float> out(p.ids.size() * static_cast<std::size_t>(e.config().hidden));
  e.run(p.ids, p.types, p.offsets, out);
  return out;
}

// Mean over the rows [first, first + len) of out, L2-normalised.
inline std::vector<double> pooled(const std::vector<float>& out, int64_t first, int64_t len, int64_t hidden) {
  std::vector<double> v(static_cast<std::size_t>(hidden), 0.0);
  for (int64_t t = first; t < first + len; ++t)
    for (int64_t c = 0; c < hidden; ++c) v[c] += out[t * hidden + c];
  double norm = 0;
  for (double& x : v) {
    x /= static_cast<double>(len);
    norm += x * x;
  }
  norm = std::sqrt(norm);
  for (double& x : v) x /= norm;
  return v;
}

inline double cosine(const std::vector<double>& a, const std::vector<double>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
  return ab / std::sqrt(aa * bb);
}

inline double max_abs_diff(const float* a, const float* b, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

// Runs the first 4 sentences with the reference row kernels and the plain-loop matmul and expects
// them within 1e-4 of ONNX Runtime's last_hidden_state (gtest assertions; restores the ISA).
inline void expect_reference_kernels_match_ort(const std::string& model, const std::string& file,
                                               const std::string& expected, bool zero_copy = false) {
  Reference ref = load_reference(model, expected);
  ASSERT_TRUE(kernels::kernels_force_isa("ref"));
  FastEncoderOptions options;
  options.matmul = MatmulBackend::reference;
  FastEncoder encoder(recognized(model, file, zero_copy), options);
  Packed batch = pack(ref, 0, 4);
  std::vector<float> out;
  try {
    out = run(encoder, batch);
  } catch (...) {
    kernels::kernels_force_isa("auto");
    throw;
  }
  kernels::kernels_force_isa("auto");
  const int64_t H = encoder.config().hidden;
  double worst = 0;
  for (std::size_t s = 0; s < 4; ++s)
    worst = std::max(worst, max_abs_diff(out.data() + batch.offsets[s] * H, ref.last_hidden_state[s].data(),
                                         ref.last_hidden_state[s].size()));
  std::cout << model << "/" << file << (zero_copy ? " (zero-copy)" : "") << ": reference kernels, max |fast - ORT| "
            << worst << "\n";
  EXPECT_LE(worst, 1e-4);
}

}  // namespace leanembed::runtime::encoder::test_data
