// The one intra-op thread setting of the library: how many threads a single kernel call (a row
// kernel or a matrix product) may use.
//
// Our row kernels and oneDNN both run on the same OpenMP (libgomp) thread pool — Debian's libdnnl
// is built with DNNL_CPU_THREADING_RUNTIME = OMP — so this one number governs both:
//   * row kernels pass it in their `num_threads` clause;
//   * before each oneDNN call, threads_apply_to_caller() sets the calling thread's OpenMP
//     nthreads ICV (omp_set_num_threads), which oneDNN reads through omp_get_max_threads().
//
// Idle spinning: libgomp lets pool threads spin for a while after each parallel region before they
// sleep (GOMP_SPINCOUNT / OMP_WAIT_POLICY, read once when libgomp loads; the library cannot change
// them afterwards). Measured: by default a worker burns 3-4 ms of CPU after every call, and on a
// machine whose other cores are busy every barrier can wait a whole scheduler slice; with
// OMP_WAIT_POLICY=passive both go away. Hosts (CLI, server, Node binding) should set it before
// libgomp loads unless the user did; see README.md in this folder.
#pragma once

#include <cstdint>

namespace leanembed::kernels {

// Sets the number of threads each kernel call may use. n <= 0 means "the number of cores this
// process may run on" (omp_get_num_procs()). Thread-safe (an atomic store); affects calls that
// start afterwards.
void threads_set(int n);

// The current setting, >= 1. Before any threads_set() call it is OMP_NUM_THREADS if that variable
// is set to a positive number, else the number of cores; capped by the calling thread's
// ThreadLimit, if any. Thread-safe.
int threads_get();

// Caps threads_get() on the calling thread while it lives (nested limits: the innermost applies;
// the destructor restores the one before). Other threads, the OpenMP pool's workers included, keep
// the process-wide setting. The fast encoder runs small batches on one thread this way
// (FastEncoderOptions::parallel_min_tokens). n <= 0: no cap.
class ThreadLimit {
 public:
  explicit ThreadLimit(int n);
  ~ThreadLimit();
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int previous_;
};

// True when libgomp's pool threads go to sleep as soon as a parallel region ends (OMP_WAIT_POLICY
// = passive, or GOMP_SPINCOUNT = 0), so every region must wake them; read from the environment
// once, as libgomp reads it when it loads (a host sets it before that: see README.md "Threads").
bool pool_threads_sleep();

// Makes the calling thread's OpenMP default team size equal threads_get() (omp_set_num_threads,
// only when it differs). The oneDNN matmul calls this before each product; exposed so other code
// that calls into OpenMP-threaded libraries on our behalf can do the same. Side effect: changes the
// calling thread's OpenMP nthreads ICV, i.e. also the default team size of the caller's own
// `#pragma omp parallel` regions.
void threads_apply_to_caller();

// Makes the calling thread's OpenMP default team size equal n (>= 1), only when it differs.
void threads_apply_to_caller(int n);

// Matrix products of fewer than this many multiply-adds (m * n * k) run on one thread. Kept small
// on purpose: a one-thread call between parallel ones leaves libgomp's workers spinning, and on the
// development VM the next parallel region then waited 0.1-5 ms on average once that single-threaded
// stretch lasted 10 us or more (2 us was harmless) — README.md "Threads". 64K multiply-adds take
// ~1-2 us on one core (a per-head attention product for sequences up to ~45 tokens).
inline constexpr int64_t kGemmParallelMinMacs = 64 * 1024;

// Replaces that threshold (n < 0 restores the default); meant for benchmarks. Thread-safe (atomic).
void gemm_parallel_set_min_macs(int64_t n);

// Threads for one m x n x k product: 1 below the threshold, else threads_get().
int gemm_threads(int64_t m, int64_t n, int64_t k);

// Row kernels over fewer than this many elements (rows * cols) stay on the calling thread (a
// single row always does): 4096 elements take 1.4-4 us on one core (LayerNorm .. GELU), less than a
// parallel region's overhead would save, and short enough not to let the pool go cold (see
// kGemmParallelMinMacs).
inline constexpr int64_t kRowParallelMinElements = 4096;

// Replaces that threshold (n < 0 restores the default); meant for benchmarks. Thread-safe (atomic).
void row_parallel_set_min_elements(int64_t n);

}  // namespace leanembed::kernels
