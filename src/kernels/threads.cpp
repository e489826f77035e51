#include "kernels/threads.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <string>

#include "kernels/row_parallel.h"

namespace leanembed::kernels {
namespace {

std::atomic<int> g_threads{0};  // 0 = never set: the start-up default applies
std::atomic<int64_t> g_gemm_parallel_min{kGemmParallelMinMacs};
std::atomic<int64_t> g_row_parallel_min{kRowParallelMinElements};
thread_local int t_limit = 0;  // the calling thread's ThreadLimit; 0 = none

int cores() {
  int n = omp_get_num_procs();
  return n > 0 ? n : 1;
}

// OMP_NUM_THREADS if it is a positive number, else the number of cores; read once.
int startup_default() {
  static const int value = [] {
    if (const char* env = std::getenv("OMP_NUM_THREADS")) {
      char* end = nullptr;
      long n = std::strtol(env, &end, 10);
      if (end != env && n > 0 && n <= 4096) return static_cast<int>(n);
    }
    return cores();
  }();
  return value;
}

}  // namespace

void threads_set(int n) { g_threads.store(n > 0 ? n : cores(), std::memory_order_relaxed); }

int threads_get() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n <= 0) n = startup_default();
  return t_limit > 0 ? std::min(n, t_limit) : n;
}

ThreadLimit::ThreadLimit(int n) : previous_(t_limit) { t_limit = n > 0 ? n : 0; }

ThreadLimit::~ThreadLimit() { t_limit = previous_; }

bool pool_threads_sleep() {
  static const bool value = [] {
    // libgomp: OMP_WAIT_POLICY=passive sets the spin count to 0; GOMP_SPINCOUNT, when set, replaces
    // the count (a number, possibly with a k/M/G/T suffix, or "infinite" / "infinity").
    bool sleeps = false;
    if (const char* policy = std::getenv("OMP_WAIT_POLICY")) {
      std::string p(policy);
      for (char& ch : p) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      sleeps = p == "passive";
    }
    if (const char* spin = std::getenv("GOMP_SPINCOUNT")) {
      char* end = nullptr;
      const double count = std::strtod(spin, &end);
      if (end != spin) sleeps = count == 0;
    }
    return sleeps;
  }();
  return value;
}

void threads_apply_to_caller() { threads_apply_to_caller(threads_get()); }

void threads_apply_to_caller(int n) {
  if (n < 1) n = 1;
  if (omp_get_max_threads() != n) omp_set_num_threads(n);
}

void gemm_parallel_set_min_macs(int64_t n) {
  g_gemm_parallel_min.store(n < 0 ? kGemmParallelMinMacs : n, std::memory_order_relaxed);
}

int gemm_threads(int64_t m, int64_t n, int64_t k) {
  // In double so that no product of the three sizes can overflow.
  const double macs = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  return macs < static_cast<double>(g_gemm_parallel_min.load(std::memory_order_relaxed)) ? 1 : threads_get();
}

void row_parallel_set_min_elements(int64_t n) {
  g_row_parallel_min.store(n < 0 ? kRowParallelMinElements : n, std::memory_order_relaxed);
}

int row_threads(int64_t rows, int64_t cols) {
  if (rows < 2 || rows * cols < g_row_parallel_min.load(std::memory_order_relaxed)) return 1;
  return static_cast<int>(std::min<int64_t>(threads_get(), rows));
}

}  // namespace leanembed::kernels
