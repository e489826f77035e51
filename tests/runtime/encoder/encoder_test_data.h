// Loading the shared reference outputs and packing sentences for the encoder tests.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
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

// The same for a model file anywhere (e.g. the MiniLM variants of test::minilm_variants_dir()).
inline EncoderWeights recognized_file(const std::string& path, bool zero_copy = true) {
  onnx::ReadOptions options;
  options.copy_misaligned = !zero_copy;
  RecognizeResult r = recognize_encoder(onnx::read_model(path, options));
  if (!r.weights) throw std::runtime_error("test: " + path + " not recognised: " + r.reason);
  return std::move(*r.weights);
}

// Where a model file of the shared fixtures lives: the tiny ones and MiniLM's model.onnx /
// model_quantized.onnx in shared/models, MiniLM's int8 / fp16 / q4 in test::minilm_variants_dir().
inline std::string model_file(const std::string& model, const std::string& file) {
  if (model == "minilm-l6-synthetic" && file != "model.onnx" && file != "model_quantized.onnx")
    return test::minilm_variants_dir() + "/onnx/" + file;
  return test::shared_dir() + "/models/" + model + "/onnx/" + file;
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

// Pooled (mean, L2) vectors of every sequence of a packed run.
inline std::vector<std::vector<double>> pooled_all(const std::vector<float>& out, const Packed& p, int64_t hidden) {
  std::vector<std::vector<double>> v;
  for (std::size_t s = 0; s + 1 < p.offsets.size(); ++s)
    v.push_back(pooled(out, p.offsets[s], p.offsets[s + 1] - p.offsets[s], hidden));
  return v;
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
  options.implementation = kernels::Implementation::reference;
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

// Runs the 64 reference sentences of `variant` through `file` of `model` (model_file()) with the fast
// kernels (default options) and with the reference kernels (kernels::Implementation::reference: plain-loop
// matmul, reference EncodedLinear) and expects every pooled cosine >= min_cosine and their mean
// >= 0.999999.
inline void expect_fast_kernels_match_reference(const std::string& model, const std::string& file,
                                                const std::string& variant, double min_cosine = 0.99999) {
  Reference ref = load_reference(model, variant);
  // Attention through the same loops in both (no gemms), so that only the linear layers' kernels
  // differ: with quantized activations a last-bit difference of the fp32 attention gemms (oneDNN vs
  // plain loops, sentences of >= 48 tokens) can cross a quantization step and is amplified layer
  // after layer (MiniLM q8: one sentence at 0.99998).
  FastEncoderOptions fast_options, reference_options;
  fast_options.attention_gemm_min_len = reference_options.attention_gemm_min_len = int64_t{1} << 40;
  reference_options.implementation = kernels::Implementation::reference;
  FastEncoder fast(recognized_file(model_file(model, file)), fast_options);
  FastEncoder slow(recognized_file(model_file(model, file)), reference_options);
  Packed batch = pack(ref, 0, ref.ids.size());
  std::vector<std::vector<double>> a = pooled_all(run(fast, batch), batch, fast.config().hidden);
  std::vector<std::vector<double>> b = pooled_all(run(slow, batch), batch, slow.config().hidden);
  double worst = 1.0, mean = 0.0;
  int below = 0;  // sentences under 0.99999
  for (std::size_t s = 0; s < a.size(); ++s) {
    const double c = cosine(a[s], b[s]);
    worst = std::min(worst, c);
    mean += c / static_cast<double>(a.size());
    below += c < 0.99999;
    EXPECT_GE(c, min_cosine) << model << "/" << file << " sentence " << s;
  }
  EXPECT_GE(mean, 0.999999) << model << "/" << file;
  std::printf("%s/%s: fast (%s) vs reference (%s) kernels, pooled cosine min %.9f mean %.9f, %d of %zu under 0.99999\n",
              model.c_str(), file.c_str(), fast.linear_kernels().c_str(), slow.linear_kernels().c_str(), worst, mean,
              below, a.size());
}

}  // namespace leanembed::runtime::encoder::test_data
