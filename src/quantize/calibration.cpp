#include "quantize/calibration.h"

#include <algorithm>
#include <cmath>

#include "leanembed/error.h"
#include "runtime/interpreter/interpreter.h"

namespace leanembed::quantize {

std::map<std::string, ChannelStats> activation_stats(const onnx::Model& model, const std::vector<std::string>& values,
                                                     std::span<const std::vector<int64_t>> sequences,
                                                     bool keep_rows) {
  if (sequences.empty()) throw Error(ErrorCode::invalid_argument, "calibration: no token sequences");
  // The same graph with the wanted values as extra outputs.
  onnx::Model probe = model;
  for (const std::string& v : values) {
    onnx::ValueInfo vi;
    vi.name = v;
    vi.elem_type = onnx::DataType::float32;
    probe.graph.outputs.push_back(vi);
  }
  const interp::Interpreter interpreter(probe);
  std::map<std::string, ChannelStats> stats;
  std::map<std::string, double> rows;
  constexpr std::size_t kBatch = 8;
  for (std::size_t first = 0; first < sequences.size(); first += kBatch) {
    const std::size_t count = std::min(kBatch, sequences.size() - first);
    std::size_t length = 1;
    for (std::size_t s = first; s < first + count; ++s) length = std::max(length, sequences[s].size());
    std::vector<int64_t> ids(count * length, 0), mask(count * length, 0);
    for (std::size_t b = 0; b < count; ++b)
      for (std::size_t t = 0; t < sequences[first + b].size(); ++t) {
        ids[b * length + t] = sequences[first + b][t];
        mask[b * length + t] = 1;
      }
    const std::vector<int64_t> shape{static_cast<int64_t>(count), static_cast<int64_t>(length)};
    interp::Interpreter::TensorMap feed;
    for (const onnx::ValueInfo& in : interpreter.inputs()) {
      if (in.name == "attention_mask") feed[in.name] = interp::Tensor::from_int64s(shape, mask);
      else if (in.name == "token_type_ids") feed[in.name] = interp::Tensor::from_int64s(shape, std::vector<int64_t>(ids.size(), 0));
      else feed[in.name] = interp::Tensor::from_int64s(shape, ids);
    }
    const interp::Interpreter::TensorMap out = interpreter.run(feed);
    for (const std::string& v : values) {
      const interp::Tensor& t = out.at(v);
      if (t.dtype() != onnx::DataType::float32 || t.shape().empty()) {
        throw Error(ErrorCode::invalid_argument, "calibration: value '" + v + "' is not a float32 tensor");
      }
      const int64_t channels = t.shape().back();
      const auto x = t.data<float>();
      const bool per_token = t.shape().size() == 3 && t.shape()[0] == static_cast<int64_t>(count) &&
                             t.shape()[1] == static_cast<int64_t>(length);
      ChannelStats& s = stats[v];
      s.mean_square.resize(static_cast<std::size_t>(channels), 0.0f);
      s.max_abs.resize(static_cast<std::size_t>(channels), 0.0f);
      const int64_t n_rows = channels > 0 ? t.numel() / channels : 0;
      for (int64_t r = 0; r < n_rows; ++r) {
        if (per_token && mask[static_cast<std::size_t>(r)] == 0) continue;
        rows[v] += 1;
        if (keep_rows) s.rows.insert(s.rows.end(), x.begin() + r * channels, x.begin() + (r + 1) * channels);
        for (int64_t c = 0; c < channels; ++c) {
          const float a = x[static_cast<std::size_t>(r * channels + c)];
          s.mean_square[c] += a * a;  // a sum until the end
          s.max_abs[c] = std::max(s.max_abs[c], std::fabs(a));
        }
      }
    }
  }
  for (auto& [name, s] : stats)
    for (float& m : s.mean_square) m = static_cast<float>(m / std::max(rows[name], 1.0));
  return stats;
}

namespace {
constexpr std::string_view kSentences[] = {
    "The committee will meet on Tuesday to review the budget for the next fiscal year.",
    "She poured the coffee, opened the window and listened to the rain on the roof.",
    "How do I reset my password if I no longer have access to the old email address?",
    "Install the package with the default options, then restart the service.",
    "The river flooded the lower fields twice last spring, ruining most of the crop.",
    "Error: the file could not be opened because it is locked by another process.",
    "A small dog ran across the street and barked at the passing bicycles.",
    "In 1969, two astronauts walked on the Moon while millions watched on television.",
    "Preheat the oven to 200 degrees, mix the flour with the butter and add two eggs.",
    "The function returns the number of bytes written, or -1 if an error occurred.",
    "Thanks!",
    "Our quarterly revenue grew by 12% compared with the same period last year.",
    "He could not remember where he had left his keys, so he searched every pocket.",
    "Symptoms include fever, headache, and a persistent dry cough lasting several days.",
    "Please find attached the invoice for the services provided in March.",
    "The algorithm sorts the list in O(n log n) time and uses constant extra memory.",
    "Why is the sky blue during the day but red and orange at sunset?",
    "The old library was converted into a museum of local history in 2004.",
    "Click Save to keep your changes, or Cancel to discard them.",
    "Wind turbines convert the kinetic energy of moving air into electricity.",
    "I think the second option is cheaper, but the first one is more reliable.",
    "Configuration files are read from /etc/app/config.yaml at start-up.",
    "The team won the championship after a dramatic penalty shoot-out.",
    "Mix well, cover, and let the dough rest for an hour at room temperature.",
};
}  // namespace

std::span<const std::string_view> calibration_sentences() { return kSentences; }

std::vector<std::vector<int64_t>> calibration_ids(const Tokenizer& tokenizer, std::size_t max_length) {
  std::vector<std::vector<int64_t>> ids;
  for (std::string_view s : calibration_sentences()) ids.push_back(tokenizer.encode(s, max_length).ids);
  return ids;
}

}  // namespace leanembed::quantize
