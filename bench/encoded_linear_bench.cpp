// encoded_linear_bench: speed of the linear layers with encoded weights (encoded_linear.h) beside
// the fp32 oneDNN product, for MiniLM's weight shapes. Prints figures; asserts nothing.
//
//   encoded_linear_bench [--threads 1,2] [--m 1,25,128,512,2048] [--ref-max-m 128] [--cpu-clock]
//
// Rows: fp32 (matmul_create_onednn, bias fused), int8 fast, q4 fast (the factory's choice) / AVX2
// (when fast is AVX-512) / reference, the same for f16; K x N in {384x384, 384x1536, 1536x384}. The references run only up to --ref-max-m
// rows (they are plain loops: seconds per call at M = 2048). Times are the best of 5 trials of
// enough calls to last ~20 ms each; GFLOP/s = 2 * M * N * K / time. The machine is shared: the
// load average is printed first. --cpu-clock times with the calling thread's CPU clock instead of
// the wall clock: on a loaded machine that leaves out the time the thread was not running, so
// single-thread figures compare kernels fairly (meaningless with more than one thread).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/encoded_linear.h"
#include "kernels/encoded_linear_decoding.h"
#include "kernels/kernels.h"
#include "kernels/threads.h"

using namespace leanembed::kernels;

namespace {

bool g_cpu_clock = false;

double now_seconds() {
  if (g_cpu_clock) {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best time per call of fn over `trials` trials of enough calls to last ~min_seconds each.
double best_time(const std::function<void()>& fn, double min_seconds = 0.02, int trials = 5) {
  fn();  // warm up
  int reps = 1;
  for (;;) {
    const double t0 = now_seconds();
    for (int i = 0; i < reps; ++i) fn();
    if (now_seconds() - t0 >= min_seconds || reps >= (1 << 20)) break;
    reps *= 2;
  }
  double best = 1e30;
  for (int trial = 0; trial < trials; ++trial) {
    const double t0 = now_seconds();
    for (int i = 0; i < reps; ++i) fn();
    best = std::min(best, (now_seconds() - t0) / reps);
  }
  return best;
}

std::vector<int64_t> parse_list(const char* text) {
  std::vector<int64_t> values;
  for (const char* p = text; *p;) {
    char* end = nullptr;
    values.push_back(std::strtoll(p, &end, 10));
    p = (*end == ',') ? end + 1 : end;
    if (end == p && *p) break;
  }
  return values;
}

// 64-byte aligned scratch for EncodedLinear::run (exactly scratch_bytes bytes).
struct Scratch {
  void* data = nullptr;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  explicit Scratch(std::size_t bytes) {
    if (bytes) data = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  }
  ~Scratch() { std::free(data); }
};

// Random weights of one K x N shape in every encoding, plus x, y, bias for up to max_m rows.
struct Problem {
  int64_t k, n;
  std::vector<float> w_f32, x, y, bias;
  std::vector<int8_t> w_i8;
  std::vector<float> i8_scales;
  std::vector<uint8_t> q4_packed;
  std::vector<float> q4_scales;
  std::vector<uint16_t> w_f16;

  Problem(int64_t k_, int64_t n_, int64_t max_m) : k(k_), n(n_) {
    std::mt19937 gen(static_cast<uint32_t>(k * 131 + n));
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::uniform_int_distribution<int> byte(0, 255), mantissa(0, 1023), exponent(8, 15);
    auto fill = [&](std::vector<float>& v, std::size_t count) {
      v.resize(count);
      for (float& f : v) f = dist(gen);
    };
    fill(w_f32, k * n);
    fill(x, max_m * k);
    fill(bias, n);
    y.assign(max_m * n, 0.0f);
    w_i8.resize(k * n);
    for (int8_t& v : w_i8) v = static_cast<int8_t>(byte(gen) - 128);
    fill(i8_scales, n);
    const int64_t blocks = (k + 31) / 32;
    q4_packed.resize(n * blocks * 16);
    for (uint8_t& v : q4_packed) v = static_cast<uint8_t>(byte(gen));
    fill(q4_scales, n * blocks);
    w_f16.resize(k * n);
    for (uint16_t& h : w_f16) h = static_cast<uint16_t>(((byte(gen) & 1) << 15) | (exponent(gen) << 10) | mantissa(gen));
  }
};

struct Row {
  std::string label;
  std::function<void(int64_t m)> call;
  bool is_reference;
};

double load_average() {
  std::ifstream in("/proc/loadavg");
  double one = -1;
  in >> one;
  return one;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> thread_counts{1, 2}, ms{1, 25, 128, 512, 2048};
  int64_t ref_max_m = 128;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) thread_counts = parse_list(argv[++i]);
    else if (arg == "--m" && i + 1 < argc) ms = parse_list(argv[++i]);
    else if (arg == "--ref-max-m" && i + 1 < argc) ref_max_m = std::atoll(argv[++i]);
    else if (arg == "--cpu-clock") g_cpu_clock = true;
    else {
      std::fprintf(stderr, "usage: encoded_linear_bench [--threads 1,2] [--m 1,25,...] [--ref-max-m 128] [--cpu-clock]\n");
      return 2;
    }
  }
  const int64_t max_m = *std::max_element(ms.begin(), ms.end());
  const std::pair<int64_t, int64_t> shapes[] = {{384, 384}, {384, 1536}, {1536, 384}};  // K x N

  std::printf("encoded_linear_bench: ms per call / GFLOP/s (2*M*N*K per call), %s clock; load average %.2f\n",
              g_cpu_clock ? "thread CPU" : "wall", load_average());
  for (const auto& [k, n] : shapes) {
    Problem p(k, n, max_m);
    auto onednn = matmul_create_onednn();
    auto int8 = encoded_linear_int8({.data = p.w_i8.data(), .is_signed = true, .k = k, .n = n,
                                     .scales = p.i8_scales.data(), .scale_count = n},
                                    Implementation::fast);
    const BlockQ4WeightsView q4_view{.packed = p.q4_packed.data(), .scales = p.q4_scales.data(), .k = k, .n = n,
                                     .block_size = 32};
    auto q4_fast = encoded_linear_q4(q4_view, Implementation::fast);
    auto q4_ref = encoded_linear_q4(q4_view, Implementation::reference);
    auto q4_avx2 = encoded_linear_q4_kernel(q4_view, "avx2");
    auto f16_fast = encoded_linear_f16({.data = p.w_f16.data(), .k = k, .n = n}, Implementation::fast);
    auto f16_ref = encoded_linear_f16({.data = p.w_f16.data(), .k = k, .n = n}, Implementation::reference);
    auto f16_avx2 = encoded_linear_f16_kernel({.data = p.w_f16.data(), .k = k, .n = n}, "avx2");

    // Scratch for the largest M, allocated once (run() needs at least scratch_bytes(m)).
    std::vector<std::shared_ptr<Scratch>> scratches;
    auto encoded = [&](EncodedLinear& layer) {
      auto scratch = std::make_shared<Scratch>(layer.scratch_bytes(max_m));
      scratches.push_back(scratch);
      return [&p, &layer, scratch](int64_t m) {
        layer.run(m, p.x.data(), p.k, p.y.data(), p.n, p.bias.data(), scratch->data);
      };
    };
    auto onednn_scratch = std::make_shared<Scratch>(onednn->scratch_bytes(max_m, n, k, false, false));
    std::vector<Row> rows;
    rows.push_back({"fp32 onednn", [&](int64_t m) {
                      GemmArgs g{.m = m, .n = n, .k = k, .a = p.x.data(), .lda = k, .b = p.w_f32.data(), .ldb = n,
                                 .c = p.y.data(), .ldc = n, .bias = p.bias.data()};
                      onednn->gemm(g, onednn_scratch->data);
                    }, false});
    rows.push_back({std::string("int8 ") + int8->name(), encoded(*int8), false});
    rows.push_back({std::string("q4 ") + q4_fast->name(), encoded(*q4_fast), false});
    if (std::string(q4_fast->name()) != q4_avx2->name())
      rows.push_back({std::string("q4 ") + q4_avx2->name(), encoded(*q4_avx2), false});
    rows.push_back({std::string("q4 ") + q4_ref->name(), encoded(*q4_ref), true});
    rows.push_back({std::string("f16 ") + f16_fast->name(), encoded(*f16_fast), false});
    if (std::string(f16_fast->name()) != f16_avx2->name())
      rows.push_back({std::string("f16 ") + f16_avx2->name(), encoded(*f16_avx2), false});
    rows.push_back({std::string("f16 ") + f16_ref->name(), encoded(*f16_ref), true});

    for (int64_t threads : thread_counts) {
      threads_set(static_cast<int>(threads));
      std::printf("\nK x N = %lld x %lld, %lld thread(s)\n%-22s", static_cast<long long>(k),
                  static_cast<long long>(n), static_cast<long long>(threads), "M");
      for (int64_t m : ms) std::printf(" | %17lld", static_cast<long long>(m));
      std::printf("\n");
      for (const Row& row : rows) {
        std::printf("%-22s", row.label.c_str());
        for (int64_t m : ms) {
          if (row.is_reference && m > ref_max_m) {
            std::printf(" | %17s", "-");
            continue;
          }
          const double t = best_time([&] { row.call(m); }, row.is_reference ? 0.005 : 0.02, row.is_reference ? 2 : 5);
          std::printf(" | %8.3f %8.1f", t * 1e3, 2.0 * m * n * k / t * 1e-9);
        }
        std::printf("\n");
        std::fflush(stdout);
      }
    }
  }
  std::printf("\nload average at the end %.2f\n", load_average());
  return 0;
}
