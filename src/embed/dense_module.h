// sentence-transformers' Dense module (a linear layer and an activation after pooling, as in
// modules.json "sentence_transformers.models.Dense"): its weights and its forward pass.
// The folder's metadata (in/out features, bias, activation, which weights file) is read by
// model_folder.cpp; this file reads the weights (model.safetensors, F32 / F16 / BF16) and applies
// the layer. PyTorch pickles (pytorch_model.bin) are refused by model_folder with what to do.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace leanembed {

enum class DenseActivation { identity, tanh, relu, sigmoid, gelu };

struct DenseModuleInfo {
  std::string folder;        // the module's folder (e.g. <model>/2_Dense)
  std::string weights_file;  // its model.safetensors
  int64_t in_features = 0, out_features = 0;
  bool bias = true;
  DenseActivation activation = DenseActivation::tanh;
  std::string activation_name;  // as config.json writes it, for messages
};

struct DenseLayer {
  DenseModuleInfo info;
  std::vector<float> weight;  // out_features x in_features, row-major (torch's Linear.weight)
  std::vector<float> bias;    // out_features, or empty
};

// Reads the layer's weights ("linear.weight" [out, in], "linear.bias" [out]) from
// info.weights_file. Throws Error(io) if it cannot be read, Error(model_format) naming the file and
// tensor for anything malformed (header, shapes, offsets), Error(unsupported) for other dtypes.
DenseLayer load_dense_layer(const DenseModuleInfo& info);

// y = activation(W x + b); x has in_features values, y out_features. Sums in double.
void apply_dense(const DenseLayer& layer, std::span<const float> x, std::span<float> y);

}  // namespace leanembed
