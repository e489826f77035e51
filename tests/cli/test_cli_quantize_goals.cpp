// Issue 5's accuracy goals for leanembed's own quantizer, end to end through the CLI on the
// full-size MiniLM fixture: `leanembed quantize --dtype q8 | q4` from model.onnx, then `leanembed
// embed` of the first 2000 corpus sentences with the fp32 file and with each quantized file (the
// fast path, 2 threads). Per sentence, the cosine between the quantized and the fp32 vector:
//   q8: worst >= 0.995 (the goal), q4: worst >= 0.98 (the aim; ONNX Runtime-style file: 0.76);
// and q4's weight bytes (what the engine keeps: nothing is unpacked) <= q8's.
// --no-mixed is checked to be below the goal on the same sentences, so the test shows what the
// mixed precision (fp16 word table and first-layer attention) is there for.
// Heavy: ~25 s (quantize 2 + 7 s, four embeds of 2000 sentences).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "cli_test_support.h"

namespace fs = std::filesystem;
using leanembed::test::read_f32;
using leanembed::test::run_cli;

namespace {

const fs::path& work_dir() {
  static const fs::path p = fs::path(leanembed::test::binary_dir()) / "test_cli_quantize_goals";
  return p;
}

std::string minilm() { return leanembed::test::shared_dir() + "/models/minilm-l6-synthetic"; }

// A model folder of its own: the fixture's metadata files and folders and a link to its fp32 model.onnx (the
// quantized files are written next to it).
fs::path model_copy() {
  const fs::path dst = work_dir() / "model";
  fs::remove_all(dst);
  fs::create_directories(dst / "onnx");
  for (const auto& e : fs::directory_iterator(minilm()))
    if (e.path().filename() != "onnx") fs::copy(e.path(), dst / e.path().filename(), fs::copy_options::recursive);
  fs::create_symlink(fs::path(minilm()) / "onnx" / "model.onnx", dst / "onnx" / "model.onnx");
  return dst;
}

std::string first_sentences(std::size_t n) {
  std::ifstream in(leanembed::test::shared_dir() + "/corpus/sentences.txt");
  std::string line, text;
  for (std::size_t i = 0; i < n && std::getline(in, line); ++i) text += line + "\n";
  return text;
}

// Embeds `texts` with the folder's file for `dtype`; the vectors, row after row.
std::vector<float> embed(const fs::path& model, const std::string& dtype, const std::string& texts) {
  const fs::path out = work_dir() / ("vectors_" + dtype + ".f32");
  const auto r = run_cli(work_dir(), "embed --model " + model.string() + " --dtype " + dtype +
                                         " --threads 2 --format f32 --output " + out.string(), texts);
  EXPECT_EQ(r.code, 0) << r.err;
  return read_f32(out);
}

struct Cosines {
  double min = 1, mean = 0;
};

Cosines compare(const std::vector<float>& a, const std::vector<float>& b, std::size_t rows) {
  Cosines c;
  EXPECT_EQ(a.size(), b.size());
  if (rows == 0 || a.size() != b.size() || a.size() % rows != 0) return {0, 0};
  const std::size_t d = a.size() / rows;
  for (std::size_t r = 0; r < rows; ++r) {
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t k = 0; k < d; ++k) {
      ab += double(a[r * d + k]) * b[r * d + k];
      aa += double(a[r * d + k]) * a[r * d + k];
      bb += double(b[r * d + k]) * b[r * d + k];
    }
    const double cos = ab / std::sqrt(aa * bb);
    c.min = std::min(c.min, cos);
    c.mean += cos / double(rows);
  }
  return c;
}

// The "(X MB -> Y MB)" weight bytes the quantize command reports.
double weight_mb_after(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(\(([0-9.]+) MB -> ([0-9.]+) MB\))"))) {
    ADD_FAILURE() << "no weight bytes in: " << out;
    return 0;
  }
  return std::stod(m[2]);
}

TEST(CliQuantizeGoals, OwnQ8AndQ4FilesOnTwoThousandSentences) {
  constexpr std::size_t kSentences = 2000;
  const fs::path model = model_copy();
  const std::string texts = first_sentences(kSentences);
  const std::vector<float> fp32 = embed(model, "fp32", texts);
  ASSERT_EQ(fp32.size(), kSentences * 384);

  auto q8 = run_cli(work_dir(), "quantize --model " + model.string() + " --dtype q8");
  ASSERT_EQ(q8.code, 0) << q8.err;
  const Cosines c8 = compare(embed(model, "q8", texts), fp32, kSentences);
  auto q4 = run_cli(work_dir(), "quantize --model " + model.string() + " --dtype q4");
  ASSERT_EQ(q4.code, 0) << q4.err;
  const Cosines c4 = compare(embed(model, "q4", texts), fp32, kSentences);
  std::printf("vs fp32 on %zu sentences: q8 min %.5f mean %.6f, q4 min %.5f mean %.6f\n", kSentences, c8.min, c8.mean,
              c4.min, c4.mean);
  EXPECT_GE(c8.min, 0.995);
  EXPECT_GE(c4.min, 0.98);
  EXPECT_GT(c8.mean, 0.9995);
  EXPECT_GT(c4.mean, 0.9995);
  const double q8_mb = weight_mb_after(q8.out), q4_mb = weight_mb_after(q4.out);
  std::printf("weight bytes: q8 %.1f MB, q4 %.1f MB\n", q8_mb, q4_mb);
  EXPECT_GT(q4_mb, 0);
  EXPECT_LE(q4_mb, q8_mb);

  // Without mixed precision the same sentences miss the goal: what the fp16 parts are there for.
  auto plain = run_cli(work_dir(), "quantize --model " + model.string() + " --dtype q8 --no-mixed --force");
  ASSERT_EQ(plain.code, 0) << plain.err;
  const Cosines c8_plain = compare(embed(model, "q8", texts), fp32, kSentences);
  std::printf("q8 --no-mixed: min %.5f mean %.6f\n", c8_plain.min, c8_plain.mean);
  EXPECT_LT(c8_plain.min, c8.min);
  fs::remove_all(work_dir());
}

}  // namespace
