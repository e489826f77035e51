// encoder_speed: tokens/s and sentences/s of the fast path on a model of the shared folder, for
// packed batches of the 64 reference sentences (their token ids from expected/<model>/model.json),
// at kernels::threads_get() threads (OMP_NUM_THREADS). Not a test: prints figures.
//   encoder_speed [model folder name = minilm-l6-synthetic] [seconds per batch size = 3] [length]
// With a length, the sentences' ids are concatenated and cut into sequences of that many tokens
// (long-passage shapes; the ids are real, the texts are not). Environment: CHUNK and
// ATTENTION_GEMM_MIN_LEN override FastEncoderOptions; OMP_NUM_THREADS sets the threads.
#include <chrono>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include "encoder_test_data.h"
#include "kernels/threads.h"

using namespace leanembed::runtime::encoder;
using namespace leanembed::runtime::encoder::test_data;

int main(int argc, char** argv) {
  const std::string model = argc > 1 ? argv[1] : "minilm-l6-synthetic";
  const double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  Reference ref = load_reference(model, "model");
  if (argc > 3) {
    const std::size_t length = static_cast<std::size_t>(std::atoll(argv[3]));
    std::vector<int64_t> stream;
    for (const auto& ids : ref.ids) stream.insert(stream.end(), ids.begin(), ids.end());
    while (stream.size() < 64 * length) stream.insert(stream.end(), stream.begin(), stream.end());
    for (std::size_t s = 0; s < 64; ++s) {
      ref.ids[s].assign(stream.begin() + static_cast<std::ptrdiff_t>(s * length), stream.begin() + static_cast<std::ptrdiff_t>((s + 1) * length));
      ref.types[s].assign(length, 0);
    }
  }
  FastEncoderOptions options;
  if (const char* chunk = std::getenv("CHUNK")) options.chunk_tokens = std::atoll(chunk);
  if (const char* min_len = std::getenv("ATTENTION_GEMM_MIN_LEN")) options.attention_gemm_min_len = std::atoll(min_len);
  FastEncoder encoder(recognized(model, "model.onnx"), options);
  std::cout << model << ", " << leanembed::kernels::threads_get() << " threads, chunk " << options.chunk_tokens << "\n";
  for (std::size_t batch : {std::size_t{1}, std::size_t{8}, std::size_t{32}}) {
    std::vector<Packed> batches;
    for (std::size_t first = 0; first + batch <= ref.ids.size(); first += batch) batches.push_back(pack(ref, first, batch));
    std::vector<float> out;
    auto run_all = [&] {
      int64_t tokens = 0;
      for (const Packed& p : batches) {
        out.resize(p.ids.size() * static_cast<std::size_t>(encoder.config().hidden));
        encoder.run(p.ids, p.types, p.offsets, out);
        tokens += static_cast<int64_t>(p.ids.size());
      }
      return tokens;
    };
    run_all();  // warm-up
    int64_t tokens = 0, sentences = 0;
    auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    while (elapsed < seconds) {
      tokens += run_all();
      sentences += static_cast<int64_t>(batches.size() * batch);
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    std::size_t arena = 0;
    for (const Packed& p : batches)
      arena = std::max(arena, encoder.planned_bytes(static_cast<int64_t>(batch), static_cast<int64_t>(p.ids.size()), p.max_len));
    std::cout << "batch " << std::setw(2) << batch << ": " << std::fixed << std::setprecision(0) << tokens / elapsed
              << " tokens/s, " << sentences / elapsed << " sentences/s, largest arena " << arena << " bytes\n";
  }
  return 0;
}
