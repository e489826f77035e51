// The q4 / f16 layers' shared part (encoded_linear_decoding.h): argument checks, the reference
// table, the table a test names, and the driver that splits the output columns over the threads
// and sends each range down the few-rows or the panel path. Baseline x86-64: the ISA-specific code
// is behind the function pointers.
#include "kernels/encoded_linear_decoding.h"

#include <omp.h>

#include <string>

#include "leanembed/error.h"

namespace leanembed::kernels {

namespace {

// Dimensions up to 2^31 keep every byte count (k * n * 4 at most 2^64 / 2) inside int64_t.
constexpr int64_t kMaxDim = int64_t{1} << 31;

[[noreturn]] void fail(const std::string& message) { throw Error(ErrorCode::invalid_argument, message); }

int64_t smaller(int64_t a, int64_t b) { return a < b ? a : b; }

}  // namespace

void decoding_check_dim(const char* what, const char* field, int64_t value) {
  if (value <= 0 || value > kMaxDim)
    fail(std::string(what) + ": field " + field + " must be in [1, 2^31], found " + std::to_string(value));
}

void decoding_check_run(const char* name, int64_t k, int64_t n, int64_t m, const float* x, int64_t ldx,
                        const float* y, int64_t ldy) {
  const std::string who = std::string(name) + " run()";
  if (m < 0) fail(who + ": m must be >= 0, found " + std::to_string(m));
  if (m == 0) return;
  if (!x) fail(who + ": x is null");
  if (!y) fail(who + ": y is null");
  if (ldx < k) fail(who + ": ldx must be >= k = " + std::to_string(k) + ", found " + std::to_string(ldx));
  if (ldy < n) fail(who + ": ldy must be >= n = " + std::to_string(n) + ", found " + std::to_string(ldy));
}

const DecodingKernels& decoding_kernels_reference() {
  static constexpr DecodingKernels table{"ref", 0, nullptr};
  return table;
}

const DecodingKernels& decoding_kernels_named(const std::string& name) {
  if (name == "ref") return decoding_kernels_reference();
  if (name == "avx2" && cpu_has_avx2_fma_f16c()) return decoding_kernels_avx2();
  if (name == "avx512" && cpu_has_avx512f()) return decoding_kernels_avx512();
  fail("encoded linear kernel: expected ref, avx2 or avx512 runnable on this CPU, found \"" + name + "\"");
}

void decoding_run(const DecodedColumns& columns, const DecodingKernels& kernels, int64_t k, int64_t n, int64_t m,
                  const float* x, int64_t ldx, float* y, int64_t ldy, const float* bias, int threads) {
  auto range = [&](int64_t j0, int64_t j1) {
    if (m < kPanelMinRows)
      columns.few_rows(columns.layout, j0, j1, m, x, ldx, y, ldy, bias);
    else
      kernels.panel_range(columns, k, j0, j1, m, x, ldx, y, ldy, bias);
  };
  // Contiguous column ranges whose starts are multiples of the panel width, one per thread.
  const int64_t unit = kernels.panel_width;
  const int64_t units = (n + unit - 1) / unit;
  const int team = static_cast<int>(smaller(threads < 1 ? 1 : threads, units));
  if (team <= 1) {
    range(0, n);
    return;
  }
#pragma omp parallel num_threads(team)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t j0 = smaller(n, units * t / nt * unit);
    const int64_t j1 = smaller(n, units * (t + 1) / nt * unit);
    if (j0 < j1) range(j0, j1);
  }
}

}  // namespace leanembed::kernels
