// The fused padding-free encoder against ONNX Runtime's and torch's outputs on the shared models.
#include <gtest/gtest.h>

#include <cmath>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include "encoder_test_data.h"
#include "runtime/encoder/encoder.h"
#include "kernels/kernels.h"
#include "kernels/threads.h"
#include "leanembed/error.h"

namespace leanembed::runtime::encoder {
namespace {

using namespace test_data;

struct Variant {
  const char* model;
  const char* file;
  const char* expected;  // expected/<model>/<expected>.json
  bool zero_copy = false;  // read with copy_misaligned = false: misaligned weight views (test_data::recognized)
};

std::string variant_name(const ::testing::TestParamInfo<Variant>& info) {
  std::string s = std::string(info.param.model) + "_" + info.param.expected + (info.param.zero_copy ? "_zero_copy" : "");
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

class FastEncoderVsReference : public ::testing::TestWithParam<Variant> {};

// The first 4 sentences, packed into one batch and one at a time, within 1e-4 of ONNX Runtime.
TEST_P(FastEncoderVsReference, LastHiddenStateMatchesOnnxRuntime) {
  const Variant& v = GetParam();
  Reference ref = load_reference(v.model, v.expected);
  FastEncoder encoder(recognized(v.model, v.file, v.zero_copy));
  const int64_t H = encoder.config().hidden;
  Packed batch = pack(ref, 0, 4);
  std::vector<float> out = run(encoder, batch);
  double worst_packed = 0, worst_single = 0, packed_vs_single = 0;
  for (std::size_t s = 0; s < 4; ++s) {
    const std::vector<float>& expected = ref.last_hidden_state[s];
    ASSERT_EQ(expected.size(), ref.ids[s].size() * static_cast<std::size_t>(H));
    const float* got = out.data() + batch.offsets[s] * H;
    worst_packed = std::max(worst_packed, max_abs_diff(got, expected.data(), expected.size()));
    std::vector<float> single = run(encoder, pack(ref, s, 1));
    worst_single = std::max(worst_single, max_abs_diff(single.data(), expected.data(), expected.size()));
    packed_vs_single = std::max(packed_vs_single, max_abs_diff(single.data(), got, expected.size()));
  }
  std::cout << v.model << "/" << v.file << (v.zero_copy ? " (zero-copy)" : "") << ": max |fast - ORT| packed " << worst_packed << ", one at a time "
            << worst_single << "; packed vs one at a time " << packed_vs_single << "\n";
  EXPECT_LE(worst_packed, 1e-4);
  EXPECT_LE(worst_single, 1e-4);
  EXPECT_LE(packed_vs_single, 1e-4);
}

// All 64 sentences in one batch, mean-pooled and normalised, against torch fp32.
TEST_P(FastEncoderVsReference, PooledEmbeddingsMatchTorch) {
  const Variant& v = GetParam();
  Reference torch = load_reference(v.model, "torch_fp32");
  FastEncoder encoder(recognized(v.model, v.file, v.zero_copy));
  const int64_t H = encoder.config().hidden;
  ASSERT_EQ(torch.ids.size(), 64u);
  Packed batch = pack(torch, 0, 64);
  std::vector<float> out = run(encoder, batch);
  double worst = 1.0;
  for (std::size_t s = 0; s < 64; ++s) {
    std::vector<double> e = pooled(out, batch.offsets[s], batch.offsets[s + 1] - batch.offsets[s], H);
    worst = std::min(worst, cosine(e, torch.embeddings[s]));
  }
  std::cout << v.model << "/" << v.file << (v.zero_copy ? " (zero-copy)" : "") << ": min cosine vs torch fp32 over 64 sentences " << std::setprecision(15) << worst
            << "\n";
  EXPECT_GE(worst, 0.99999);
}

// Reference row kernels and the plain-loop matmul give the same within 1e-4 (MiniLM: in
// test_encoder_reference_minilm, labelled heavy: it takes 40 s under the sanitizers).
TEST(FastEncoderReferenceKernels, TinyOpset14) { expect_reference_kernels_match_ort("tiny-bert-synthetic", "model.onnx", "model"); }
// Misaligned weight views through the plain-loop matmul (memcpy loads) and the embedding rows.
TEST(FastEncoderReferenceKernels, TinyOpset14ZeroCopy) {
  expect_reference_kernels_match_ort("tiny-bert-synthetic", "model.onnx", "model", true);
}
TEST(FastEncoderReferenceKernels, TinyOpset17) {
  expect_reference_kernels_match_ort("tiny-bert-synthetic", "model_opset17.onnx", "model_opset17");
}

INSTANTIATE_TEST_SUITE_P(SharedModels, FastEncoderVsReference,
                         ::testing::Values(Variant{"tiny-bert-synthetic", "model.onnx", "model"},
                                           Variant{"tiny-bert-synthetic", "model_opset17.onnx", "model_opset17"},
                                           Variant{"minilm-l6-synthetic", "model.onnx", "model"},
                                           Variant{"tiny-bert-synthetic", "model.onnx", "model", true},
                                           Variant{"minilm-l6-synthetic", "model.onnx", "model", true}),
                         variant_name);

// ---- behaviour on the tiny model ----------------------------------------------------------------

class TinyEncoder : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ref_ = new Reference(load_reference("tiny-bert-synthetic", "model"));
    weights_ = new EncoderWeights(recognized("tiny-bert-synthetic", "model.onnx"));
  }
  static void TearDownTestSuite() {
    delete ref_;
    delete weights_;
  }
  static Reference* ref_;
  static EncoderWeights* weights_;
};
Reference* TinyEncoder::ref_ = nullptr;
EncoderWeights* TinyEncoder::weights_ = nullptr;

TEST_F(TinyEncoder, ChunkSizeAndThreadCountDoNotChangeTheResult) {
  Packed batch = pack(*ref_, 0, 16);
  FastEncoderOptions whole;
  whole.chunk_tokens = 0;
  FastEncoder a(*weights_, whole);
  std::vector<float> expected = run(a, batch);
  FastEncoderOptions small;
  small.chunk_tokens = 7;  // chunks that end mid-sequence, and a short last chunk
  FastEncoder b(*weights_, small);
  EXPECT_LE(max_abs_diff(run(b, batch).data(), expected.data(), expected.size()), 1e-5);
  const int threads = kernels::threads_get();
  kernels::threads_set(1);
  std::vector<float> one_thread = run(b, batch);
  kernels::threads_set(threads);
  EXPECT_LE(max_abs_diff(one_thread.data(), expected.data(), expected.size()), 1e-5);
}

// Attention through the Matmul (long sequences) and through the blocked loops (short ones) agree,
// and both match ONNX Runtime; the 4 sentences have 33, 20, 16 and 47 tokens.
TEST_F(TinyEncoder, BothAttentionPathsMatchOnnxRuntime) {
  Packed batch = pack(*ref_, 0, 4);
  FastEncoderOptions gemm, loops;
  gemm.attention_gemm_min_len = 0;
  loops.attention_gemm_min_len = 1 << 30;
  FastEncoder a(*weights_, gemm), b(*weights_, loops);
  std::vector<float> by_gemm = run(a, batch), by_loops = run(b, batch);
  EXPECT_LE(max_abs_diff(by_gemm.data(), by_loops.data(), by_gemm.size()), 1e-5);
  const int64_t H = a.config().hidden;
  for (std::size_t s = 0; s < 4; ++s) {
    const auto& expected = ref_->last_hidden_state[s];
    EXPECT_LE(max_abs_diff(by_gemm.data() + batch.offsets[s] * H, expected.data(), expected.size()), 1e-4);
    EXPECT_LE(max_abs_diff(by_loops.data() + batch.offsets[s] * H, expected.data(), expected.size()), 1e-4);
  }
}

// Long sequences (beyond the reference sentences): the two attention paths agree, the output is
// finite, and each sequence alone gives the rows it has in the batch.
TEST_F(TinyEncoder, BothAttentionPathsAgreeOnLongSequences) {
  std::vector<int64_t> stream;
  for (const auto& ids : ref_->ids) stream.insert(stream.end(), ids.begin(), ids.end());
  Packed batch;
  std::size_t at = 0;
  for (int64_t len : {100, 300, 512, 49}) {
    batch.ids.insert(batch.ids.end(), stream.begin() + static_cast<std::ptrdiff_t>(at),
                     stream.begin() + static_cast<std::ptrdiff_t>(at + static_cast<std::size_t>(len)));
    at += static_cast<std::size_t>(len);
    batch.offsets.push_back(static_cast<int64_t>(batch.ids.size()));
    batch.max_len = std::max(batch.max_len, len);
  }
  batch.types.assign(batch.ids.size(), 0);
  FastEncoderOptions gemm, loops;
  gemm.attention_gemm_min_len = 0;
  loops.attention_gemm_min_len = 1 << 30;
  FastEncoder a(*weights_, gemm), b(*weights_, loops);
  std::vector<float> by_gemm = run(a, batch), by_loops = run(b, batch);
  double diff = max_abs_diff(by_gemm.data(), by_loops.data(), by_gemm.size());
  std::cout << "long sequences: max |gemm attention - loop attention| " << diff << "\n";
  EXPECT_LE(diff, 1e-4);
  for (float v : by_gemm) ASSERT_TRUE(std::isfinite(v));
  // Each sequence alone gives the same rows as in the batch.
  for (std::size_t s = 0; s + 1 < batch.offsets.size(); ++s) {
    Packed one;
    one.ids.assign(batch.ids.begin() + batch.offsets[s], batch.ids.begin() + batch.offsets[s + 1]);
    one.types.assign(one.ids.size(), 0);
    one.offsets = {0, static_cast<int64_t>(one.ids.size())};
    std::vector<float> alone = run(a, one);
    EXPECT_LE(max_abs_diff(alone.data(), by_gemm.data() + batch.offsets[s] * a.config().hidden, alone.size()), 1e-5);
  }
}

TEST_F(TinyEncoder, EmptySequencesAndEmptyBatches) {
  FastEncoder e(*weights_);
  Packed one = pack(*ref_, 1, 1);
  std::vector<float> expected = run(e, one);
  // The same sentence between two empty sequences.
  Packed padded = one;
  padded.offsets = {0, 0, static_cast<int64_t>(one.ids.size()), static_cast<int64_t>(one.ids.size())};
  std::vector<float> got = run(e, padded);
  EXPECT_LE(max_abs_diff(got.data(), expected.data(), expected.size()), 1e-6);
  // No tokens at all.
  std::vector<int64_t> none, offsets{0, 0};
  std::vector<float> out;
  EXPECT_NO_THROW(e.run(none, none, offsets, out));
  // Types left out = all zero (the reference sentences have all-zero types).
  Packed no_types = one;
  no_types.types.clear();
  std::vector<float> zero_types = run(e, no_types);
  EXPECT_EQ(zero_types, expected);
}

TEST_F(TinyEncoder, PlannedBytesAreWhatTheRunHolds) {
  FastEncoder e(*weights_);
  Packed batch = pack(*ref_, 0, 64);
  const int64_t S = 64, T = static_cast<int64_t>(batch.ids.size());
  run(e, batch);
  EXPECT_EQ(e.arena_bytes(), e.planned_bytes(S, T, batch.max_len));
  MemoryPlan plan = e.plan(S, T, batch.max_len);
  // The greedy placement reaches the lower bound (the most bytes live at one step).
  EXPECT_EQ(plan.arena_bytes, plan.live_peak_bytes);
  // The documented bound (memory_plan.h).
  const EncoderConfig& c = e.config();
  const std::size_t C = static_cast<std::size_t>(std::min<int64_t>(T, 1024)), L = batch.max_len,
                    H = c.hidden, F = c.ffn, d = c.head_size, Tz = T, L16 = (L + 15) / 16 * 16;
  auto scratch = [&](Buffer b) { return (plan.bytes[static_cast<int>(b)] + 63) / 64 * 64; };
  const std::size_t bound = std::max({4 * 3 * Tz * H + plan.threads * (4 * (L + d) * L16 + 64),
                                      4 * (3 * Tz * H + C * H) + scratch(Buffer::scratch_attention_output),
                                      4 * C * (F + H) + scratch(Buffer::scratch_ffn_in) + scratch(Buffer::scratch_ffn_out)});
  EXPECT_LE(plan.arena_bytes, bound + 64 * kBufferCount);
  std::cout << "tiny, 64 sentences (" << T << " tokens, Lmax " << L << "), " << plan.threads
            << " threads: arena " << plan.arena_bytes << " bytes\n";
  // A smaller batch afterwards reuses the arena (kept at the larger size).
  run(e, pack(*ref_, 0, 2));
  EXPECT_EQ(e.arena_bytes(), plan.arena_bytes);
  e.release_arena();
  EXPECT_EQ(e.arena_bytes(), 0u);
}

TEST_F(TinyEncoder, ArenaOffReleasesAfterEachRun) {
  FastEncoderOptions options;
  options.keep_arena = false;
  FastEncoder e(*weights_, options);
  run(e, pack(*ref_, 0, 8));
  EXPECT_EQ(e.arena_bytes(), 0u);
}

void expect_invalid(FastEncoder& e, const Packed& p, std::size_t out_size, const std::string& words) {
  std::vector<float> out(out_size);
  try {
    e.run(p.ids, p.types, p.offsets, out);
    ADD_FAILURE() << "no error; expected one mentioning '" << words << "'";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(err.what()).find(words), std::string::npos) << err.what();
  }
}

TEST_F(TinyEncoder, RejectsBadInputsBeforeComputing) {
  FastEncoder e(*weights_);
  const std::size_t H = static_cast<std::size_t>(e.config().hidden);
  Packed good = pack(*ref_, 0, 2);
  Packed p = good;
  p.ids[3] = 30522;
  expect_invalid(e, p, p.ids.size() * H, "vocabulary");
  p = good;
  p.ids[0] = -1;
  expect_invalid(e, p, p.ids.size() * H, "vocabulary");
  p = good;
  p.types[1] = 2;
  expect_invalid(e, p, p.ids.size() * H, "type id");
  p = good;
  p.offsets.back() -= 1;
  expect_invalid(e, p, p.ids.size() * H, "token count");
  p = good;
  p.offsets[1] = p.offsets[2] + 1;
  expect_invalid(e, p, p.ids.size() * H, "decrease");
  p = good;
  expect_invalid(e, p, p.ids.size() * H - 1, "out has");
  p = good;
  p.types.pop_back();
  expect_invalid(e, p, p.ids.size() * H, "type_ids");
  // Longer than the 512 positions.
  Packed long_one;
  long_one.ids.assign(513, 1000);
  long_one.types.assign(513, 0);
  long_one.offsets = {0, 513};
  expect_invalid(e, long_one, 513 * H, "positions");
  // Exactly 512 is fine.
  long_one.ids.resize(512);
  long_one.types.resize(512);
  long_one.offsets = {0, 512};
  std::vector<float> out(512 * H);
  EXPECT_NO_THROW(e.run(long_one.ids, long_one.types, long_one.offsets, out));
}

}  // namespace
}  // namespace leanembed::runtime::encoder
