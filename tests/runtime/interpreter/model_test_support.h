// Shared by the interpreter's end-to-end model tests: reading the reference outputs in
// ../shared/models/expected, padding sentences into a batch, pooling and cosine.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/interpreter/interpreter.h"
#include "test_support.h"

namespace leanembed::interp::model_test {

struct Reference {
  std::vector<std::vector<int64_t>> input_ids, attention_mask, token_type_ids;
  std::vector<std::vector<std::vector<double>>> hidden;  // [4][tokens][hidden]
  std::vector<std::vector<double>> embeddings;           // [64][hidden]
};

inline Reference load_reference(const std::string& path) {
  nlohmann::json j = nlohmann::json::parse(leanembed::test::read_file(path));
  Reference r;
  j.at("input_ids").get_to(r.input_ids);
  j.at("attention_mask").get_to(r.attention_mask);
  j.at("token_type_ids").get_to(r.token_type_ids);
  j.at("last_hidden_state").get_to(r.hidden);
  j.at("embeddings").get_to(r.embeddings);
  return r;
}

// A parameterised case's name for test listings: its file name with non-alphanumerics as '_'.
inline std::string file_case_name(std::string name) {
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

// Pads sentences [first, first + count) to the longest with id 0 / mask 0 / type 0.
inline Interpreter::TensorMap batch_feed(const Reference& r, std::size_t first, std::size_t count) {
  std::size_t length = 0;
  for (std::size_t s = first; s < first + count; ++s) length = std::max(length, r.input_ids[s].size());
  std::vector<int64_t> ids(count * length, 0), mask(count * length, 0), types(count * length, 0);
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t t = 0; t < r.input_ids[first + b].size(); ++t) {
      ids[b * length + t] = r.input_ids[first + b][t];
      mask[b * length + t] = r.attention_mask[first + b][t];
      types[b * length + t] = r.token_type_ids[first + b][t];
    }
  std::vector<int64_t> shape{static_cast<int64_t>(count), static_cast<int64_t>(length)};
  return {{"input_ids", Tensor::from_int64s(shape, ids)},
          {"attention_mask", Tensor::from_int64s(shape, mask)},
          {"token_type_ids", Tensor::from_int64s(shape, types)}};
}

// Mean over the tokens whose mask is 1, then L2 normalisation (sentence-transformers pooling).
// hidden: [length, dim] rows of one sentence.
inline std::vector<double> pool(const float* hidden, std::size_t length, std::size_t dim,
                                const std::vector<int64_t>& mask) {
  std::vector<double> v(dim, 0.0);
  double count = 0;
  for (std::size_t t = 0; t < length && t < mask.size(); ++t) {
    if (mask[t] == 0) continue;
    count += 1;
    for (std::size_t d = 0; d < dim; ++d) v[d] += hidden[t * dim + d];
  }
  double norm = 0;
  for (double& x : v) {
    x /= std::max(count, 1.0);
    norm += x * x;
  }
  norm = std::sqrt(norm);
  for (double& x : v) x /= std::max(norm, 1e-12);
  return v;
}

inline double cosine(const std::vector<double>& a, const std::vector<double>& b) {
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / std::sqrt(na * nb);
}

}  // namespace leanembed::interp::model_test
