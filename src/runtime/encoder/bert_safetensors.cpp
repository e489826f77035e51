#include "runtime/encoder/bert_safetensors.h"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/float16.h"
#include "core/mapped_file.h"
#include "kernels/threads.h"
#include "kernels/transpose.h"
#include "leanembed/error.h"
#include "runtime/encoder/row_source.h"

namespace leanembed::runtime::encoder {
namespace {

using nlohmann::json;
using safetensors::Dtype;
using safetensors::Tensor;

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// An integer field of config.json: absent → fallback (or an error when there is none).
int64_t int_field(const json& j, const char* field, const std::string& file, int64_t minimum, const int64_t* fallback) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (fallback) return *fallback;
    throw Error(ErrorCode::model_format, "'" + file + "' has no \"" + field + "\"; a BERT encoder's config.json needs it");
  }
  if (!it->is_number_integer() || it->get<int64_t>() < minimum || it->get<int64_t>() > (int64_t{1} << 31))
    throw Error(ErrorCode::model_format, "'" + file + "': \"" + field + "\" should be an integer from " +
                                             std::to_string(minimum) + " to 2^31, found " + it->dump());
  return it->get<int64_t>();
}

std::string string_field(const json& j, const char* field, const std::string& file, const char* fallback) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (fallback) return fallback;
    throw Error(ErrorCode::model_format, "'" + file + "' has no \"" + field + "\"");
  }
  if (!it->is_string()) throw Error(ErrorCode::model_format, "'" + file + "': \"" + field + "\" should be a string, found " + it->dump());
  return it->get<std::string>();
}

// Reads the file's tensors by name and builds the weights; one object per load.
class Builder {
 public:
  Builder(std::shared_ptr<const safetensors::File> file, const BertConfig& config)
      : file_(std::move(file)), c_(config) {}

  BertSafetensors run(bool table_rows_by_pread);

 private:
  const Tensor& tensor(const std::string& name, const std::vector<int64_t>& shape);
  std::string layer_norm_name(const std::string& base, const char* modern, const char* tf);
  LayerNormWeights layer_norm(const std::string& base);
  AlignedFloatView vector(const std::string& name, int64_t size);
  LinearWeights linear(const std::string& base, int64_t in, int64_t out);
  EmbeddingTable table(const std::string& name, int64_t rows);
  void* owned(std::size_t bytes);
  void transpose_linear_weights();
  void note_form(const char* form);

  std::shared_ptr<const safetensors::File> file_;
  BertConfig c_;
  std::string prefix_;
  EncoderWeights w_;
  std::set<std::string> used_;
  std::vector<std::string> forms_;
};

void* Builder::owned(std::size_t bytes) {
  const std::size_t rounded = std::max<std::size_t>((bytes + 63) / 64 * 64, 64);
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw Error(ErrorCode::out_of_memory, "cannot allocate " + std::to_string(bytes) + " bytes for the weights of '" + file_->path() + "'");
  w_.owners.push_back(std::shared_ptr<const void>(p, [](const void* q) { std::free(const_cast<void*>(q)); }));
  w_.bytes_copied += bytes;
  return p;
}

void Builder::note_form(const char* form) {
  if (std::find(forms_.begin(), forms_.end(), form) == forms_.end()) forms_.push_back(form);
}

// The tensor prefix + name, checked to be a weight dtype and `shape`.
const Tensor& Builder::tensor(const std::string& name, const std::vector<int64_t>& shape) {
  const std::string full = prefix_ + name;
  const Tensor* t = file_->find(full);
  if (!t)
    throw Error(ErrorCode::model_format, "'" + file_->path() + "' has no tensor '" + full + "', which a BERT encoder with " +
                                             std::to_string(c_.layers) + " layers needs (Hugging Face BertModel naming)");
  if (t->dtype != Dtype::F32 && t->dtype != Dtype::F16 && t->dtype != Dtype::BF16)
    throw Error(ErrorCode::model_format, "'" + file_->path() + "': tensor '" + full + "' is " +
                                             safetensors::dtype_name(t->dtype) + "; weights should be F32, F16 or BF16");
  if (t->shape != shape)
    throw Error(ErrorCode::model_format, "'" + file_->path() + "': tensor '" + full + "' has shape " + shape_text(t->shape) +
                                             ", expected " + shape_text(shape) + " from config.json");
  used_.insert(full);
  note_form(t->dtype == Dtype::F16 ? "fp16" : t->dtype == Dtype::BF16 ? "bf16 (linear layers widened to fp32 at load)" : "fp32");
  w_.weight_bytes += t->bytes.size();
  return *t;
}

// "LayerNorm.weight" or the older "LayerNorm.gamma" (bias / beta), not both.
std::string Builder::layer_norm_name(const std::string& base, const char* modern, const char* tf) {
  const bool has_modern = file_->find(prefix_ + base + "." + modern) != nullptr;
  const bool has_tf = file_->find(prefix_ + base + "." + tf) != nullptr;
  if (has_modern && has_tf)
    throw Error(ErrorCode::model_format, "'" + file_->path() + "' has both '" + prefix_ + base + "." + modern + "' and '" +
                                             prefix_ + base + "." + tf + "'; expected one of them");
  return base + "." + (has_tf ? tf : modern);
}

LayerNormWeights Builder::layer_norm(const std::string& base) {
  LayerNormWeights n;
  n.gamma = vector(layer_norm_name(base, "weight", "gamma"), c_.hidden);
  n.beta = vector(layer_norm_name(base, "bias", "beta"), c_.hidden);
  n.eps = c_.layer_norm_eps;
  return n;
}

// A vector the row kernels read as float*: a view when F32 and float-aligned, else an aligned fp32 copy.
AlignedFloatView Builder::vector(const std::string& name, int64_t size) {
  const Tensor& t = tensor(name, {size});
  AlignedFloatView v;
  v.size = size;
  if (t.dtype == Dtype::F32 && reinterpret_cast<std::uintptr_t>(t.bytes.data()) % alignof(float) == 0) {
    v.data = reinterpret_cast<const float*>(t.bytes.data());
    return v;
  }
  float* p = static_cast<float*>(owned(static_cast<std::size_t>(size) * sizeof(float)));
  for (int64_t i = 0; i < size; ++i) {
    uint16_t bits;
    if (t.dtype == Dtype::F32) {
      std::memcpy(p + i, t.bytes.data() + 4 * i, sizeof(float));
      continue;
    }
    std::memcpy(&bits, t.bytes.data() + 2 * i, sizeof bits);
    p[i] = t.dtype == Dtype::F16 ? half_to_float(bits) : bfloat16_to_float(bits);
  }
  v.data = p;
  return v;
}

// nn.Linear(in, out): weight [out, in], bias [out]. The weight is noted for transposition into the
// owned block (transpose_linear_weights); its view is filled in there.
LinearWeights Builder::linear(const std::string& base, int64_t in, int64_t out) {
  const Tensor& t = tensor(base + ".weight", {out, in});
  LinearWeights l;
  l.in = in;
  l.out = out;
  l.encoding = t.dtype == Dtype::F16 ? LinearEncoding::fp16 : LinearEncoding::fp32;
  l.bias = vector(base + ".bias", out);
  return l;
}

// Every linear weight transposed once from torch's [out, in] into the [in, out] the kernels read
// (oneDNN's sgemm reading [out, in] transposed in every product runs ~20% slower), F32 copied, F16
// kept fp16 (values unchanged), BF16 widened exactly to fp32, into one owned block (transparent huge
// pages asked for: a few page faults instead of one per 4 KiB); the file's pages of each weight are
// then unmapped (they leave the resident set, stay in the page cache), so the process holds the
// weights once. The transposition is a kernel family of its own (kernels/transpose.h: 8 x 8
// in-register blocks with AVX2, the plain loops under LEANEMBED_ISA=ref; bits only, so every table
// gives the same bytes); the matrices are spread over the OpenMP threads, one matrix per thread at
// a time. MiniLM-L6 (42.5 MB of linear weights): docs/BENCHMARKS.md, "model.safetensors vs onnx".
void Builder::transpose_linear_weights() {
  struct Job {
    LinearWeights* l;
    const Tensor* t;
    std::size_t at;
  };
  std::vector<Job> jobs;
  std::size_t total = 0;
  for (std::size_t i = 0; i < w_.layers.size(); ++i) {
    EncoderLayerWeights& layer = w_.layers[i];
    const std::string p = prefix_ + "encoder.layer." + std::to_string(i) + ".";
    const std::pair<LinearWeights*, const char*> all[] = {
        {&layer.query, "attention.self.query"}, {&layer.key, "attention.self.key"},
        {&layer.value, "attention.self.value"}, {&layer.attention_output, "attention.output.dense"},
        {&layer.ffn_in, "intermediate.dense"},  {&layer.ffn_out, "output.dense"}};
    for (auto [l, name] : all) {
      jobs.push_back({l, file_->find(p + name + ".weight"), total});
      total += static_cast<std::size_t>(l->in * l->out) * (l->encoding == LinearEncoding::fp16 ? 2 : 4);
      total = (total + 63) / 64 * 64;
    }
  }
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  const std::size_t rounded = std::max<std::size_t>((total + kHuge - 1) / kHuge * kHuge, kHuge);
  void* block = std::aligned_alloc(kHuge, rounded);
  if (!block) throw Error(ErrorCode::out_of_memory, "cannot allocate " + std::to_string(total) + " bytes for the linear weights of '" + file_->path() + "'");
  w_.owners.push_back(std::shared_ptr<const void>(block, [](const void* q) { std::free(const_cast<void*>(q)); }));
  w_.bytes_copied += total;
  madvise(block, rounded, MADV_HUGEPAGE);  // best effort
  auto* base = static_cast<std::byte*>(block);
  const kernels::TransposeKernels& transposer = kernels::transpose_kernels();  // the dispatch's table
#pragma omp parallel for schedule(dynamic, 1) num_threads(std::max(1, kernels::threads_get()))
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const Job& job = jobs[j];
    LinearWeights& l = *job.l;
    const std::byte* src = job.t->bytes.data();
    if (job.t->dtype == Dtype::F16) {
      auto* dst = reinterpret_cast<uint16_t*>(base + job.at);
      transposer.copy16(src, l.out, l.in, dst);
      l.f16 = {dst, l.in, l.out};
    } else {
      auto* dst = reinterpret_cast<uint32_t*>(base + job.at);  // fp32 bits
      if (job.t->dtype == Dtype::F32) transposer.copy32(src, l.out, l.in, dst);
      else transposer.bf16_to_f32(src, l.out, l.in, dst);
      l.weight = {reinterpret_cast<const std::byte*>(dst), l.in * l.out};
    }
    if (file_->mapped()) unmap_file_pages(src, job.t->bytes.size());  // the page cache keeps them for the next load
  }
  if (file_->mapped())
    for (const Job& job : jobs) w_.released_file_bytes += job.t->bytes.size();
}

EmbeddingTable Builder::table(const std::string& name, int64_t rows) {
  const Tensor& t = tensor(name, {rows, c_.hidden});
  EmbeddingTable e;
  e.encoding = t.dtype == Dtype::F32 ? TableEncoding::fp32 : t.dtype == Dtype::F16 ? TableEncoding::fp16 : TableEncoding::bf16;
  e.bytes = t.bytes.data();
  e.size = rows * c_.hidden;
  return e;
}

BertSafetensors Builder::run(bool table_rows_by_pread) {
  const bool plain = file_->find("embeddings.word_embeddings.weight") != nullptr;
  const bool prefixed = file_->find("bert.embeddings.word_embeddings.weight") != nullptr;
  if (plain && prefixed)
    throw Error(ErrorCode::model_format, "'" + file_->path() + "' holds two encoders' tensors, with and without the 'bert.' prefix");
  prefix_ = prefixed ? "bert." : "";
  const int64_t H = c_.hidden;
  EncoderConfig& k = w_.config;
  k.hidden = H;
  k.layers = c_.layers;
  k.heads = c_.heads;
  k.head_size = H / c_.heads;
  k.ffn = c_.intermediate;
  k.vocab = c_.vocab;
  k.max_positions = c_.max_positions;
  k.type_vocab = c_.type_vocab;
  // BertSelfAttention divides the scores by math.sqrt(head size), a constant the ONNX export stores
  // as a float; the same divisor here, so both paths scale alike.
  k.attention_scale_divisor = static_cast<float>(std::sqrt(static_cast<double>(k.head_size)));
  k.attention_scale = 1.0f / k.attention_scale_divisor;
  k.position_ids = PositionIdsForm::sliced_buffer;

  w_.word_embeddings = table("embeddings.word_embeddings.weight", c_.vocab);
  w_.position_embeddings = table("embeddings.position_embeddings.weight", c_.max_positions);
  if (c_.type_vocab > 0) w_.token_type_embeddings = table("embeddings.token_type_embeddings.weight", c_.type_vocab);
  w_.embedding_norm = layer_norm("embeddings.LayerNorm");
  w_.layers.resize(static_cast<std::size_t>(c_.layers));
  for (int64_t i = 0; i < c_.layers; ++i) {
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    EncoderLayerWeights& l = w_.layers[static_cast<std::size_t>(i)];
    l.query = linear(p + "attention.self.query", H, H);
    l.key = linear(p + "attention.self.key", H, H);
    l.value = linear(p + "attention.self.value", H, H);
    l.attention_output = linear(p + "attention.output.dense", H, H);
    l.attention_norm = layer_norm(p + "attention.output.LayerNorm");
    l.ffn_in = linear(p + "intermediate.dense", H, c_.intermediate);
    l.ffn_out = linear(p + "output.dense", c_.intermediate, H);
    l.output_norm = layer_norm(p + "output.LayerNorm");
  }
  transpose_linear_weights();
  // A layer past num_hidden_layers means config.json and the file disagree.
  const std::string extra = prefix_ + "encoder.layer." + std::to_string(c_.layers) + ".";
  for (const Tensor& t : file_->tensors())
    if (t.name.rfind(extra, 0) == 0)
      throw Error(ErrorCode::model_format, "'" + file_->path() + "' has tensor '" + t.name + "', but config.json says " +
                                               std::to_string(c_.layers) + " layers (num_hidden_layers)");

  w_.weight_form.clear();
  for (const std::string& form : forms_) w_.weight_form += (w_.weight_form.empty() ? "" : " + ") + form;
  BertSafetensors out;
  out.prefix = prefix_;
  for (const Tensor& t : file_->tensors())
    if (!used_.count(t.name)) out.ignored.push_back(t.name);
  w_.owners.push_back(file_);
  if (table_rows_by_pread && file_->mapped()) {
    const EmbeddingTable& word = w_.word_embeddings;
    const std::size_t offset = static_cast<std::size_t>(word.bytes - file_->bytes().data());
    attach_row_source(w_.word_embeddings, H, std::shared_ptr<const FileReader>(file_, &file_->mapping().reader()),
                      file_->bytes().size(), offset);
  }
  out.weights = std::move(w_);
  return out;
}

}  // namespace

BertConfig read_bert_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::io, "cannot read '" + path + "' (a safetensors model needs its config.json beside it)");
  std::ostringstream s;
  s << in.rdbuf();
  json j = json::parse(s.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw Error(ErrorCode::model_format, "'" + path + "' is not valid JSON");
  if (!j.is_object()) throw Error(ErrorCode::model_format, "'" + path + "': expected a JSON object at the top");
  const std::string type = string_field(j, "model_type", path, nullptr);
  if (type != "bert")
    throw Error(ErrorCode::unsupported, "'" + path + "': model_type \"" + type +
                                            "\"; the safetensors loader knows BERT encoders (model_type \"bert\") only");
  const std::string act = string_field(j, "hidden_act", path, "gelu");
  if (act != "gelu")
    throw Error(ErrorCode::unsupported, "'" + path + "': hidden_act \"" + act +
                                            "\"; the fast path computes the erf GELU (\"gelu\") only");
  const std::string positions = string_field(j, "position_embedding_type", path, "absolute");
  if (positions != "absolute")
    throw Error(ErrorCode::unsupported, "'" + path + "': position_embedding_type \"" + positions + "\"; only \"absolute\" is supported");
  BertConfig c;
  c.hidden = int_field(j, "hidden_size", path, 1, nullptr);
  c.layers = int_field(j, "num_hidden_layers", path, 1, nullptr);
  c.heads = int_field(j, "num_attention_heads", path, 1, nullptr);
  c.intermediate = int_field(j, "intermediate_size", path, 1, nullptr);
  c.vocab = int_field(j, "vocab_size", path, 1, nullptr);
  c.max_positions = int_field(j, "max_position_embeddings", path, 1, nullptr);
  const int64_t two = 2;  // BertConfig's default
  c.type_vocab = int_field(j, "type_vocab_size", path, 0, &two);
  if (c.hidden % c.heads != 0)
    throw Error(ErrorCode::model_format, "'" + path + "': hidden_size " + std::to_string(c.hidden) +
                                             " is not a multiple of num_attention_heads " + std::to_string(c.heads));
  if (auto it = j.find("layer_norm_eps"); it != j.end() && !it->is_null()) {
    if (!it->is_number() || !(it->get<double>() >= 0) || !std::isfinite(it->get<double>()))
      throw Error(ErrorCode::model_format, "'" + path + "': \"layer_norm_eps\" should be a non-negative number, found " + it->dump());
    c.layer_norm_eps = static_cast<float>(it->get<double>());
  }
  return c;
}

BertSafetensors bert_weights_from_safetensors(std::shared_ptr<const safetensors::File> file, const BertConfig& config,
                                              bool table_rows_by_pread) {
  return Builder(std::move(file), config).run(table_rows_by_pread);
}

}  // namespace leanembed::runtime::encoder
