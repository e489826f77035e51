// The compute kernels of the fast path: a matrix-product interface (oneDNN behind it today; a
// WebAssembly or GPU build brings another) and our own row kernels (LayerNorm, GELU, softmax, bias).
//
// Every kernel has a scalar reference implementation (the spec) and may have faster ones (AVX2,
// AVX-512 …). The tables in use are chosen once, on first use, from the CPU's features by the one
// dispatch of dispatch.h; the environment variable LEANEMBED_ISA (ref, avx2, avx512, auto) caps the
// level, kernels_force_isa() switches it at run time. Model code never tests CPU features itself.
//
// Threading: kernels split rows over at most threads_get() OpenMP threads (see threads.h). None of
// them allocates; scratch memory is passed in by the caller (the memory plan).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace leanembed::kernels {

// ---- Row kernels ---------------------------------------------------------------------------------
// All matrices are row-major with a leading dimension (row stride, in elements) >= cols.
struct RowKernels {
  const char* isa;  // "ref", "avx2", ...

  // y[r, :] = LayerNorm(x[r, :] + residual[r, :] + bias[:]) * gamma + beta, over `cols`.
  // residual and bias may be null (then left out). y may alias x or residual. Statistics in fp32
  // with the variance computed as mean((v - mean)^2) (what ONNX's decomposed and fused forms do).
  void (*layer_norm)(int64_t rows, int64_t cols, const float* x, const float* residual,
                     const float* bias, const float* gamma, const float* beta, float eps, float* y);

  // x[r, :] = GELU(x[r, :] + bias[:]) with the exact erf form 0.5*v*(1+erf(v/sqrt(2))); bias may be null.
  void (*bias_gelu_erf)(int64_t rows, int64_t cols, float* x, int64_t ldx, const float* bias);

  // x[r, :] += bias[:]
  void (*bias_add)(int64_t rows, int64_t cols, float* x, int64_t ldx, const float* bias);

  // x[r, :] = softmax(x[r, :] * scale + mask[:]) over `cols`; mask may be null (no masking).
  void (*softmax)(int64_t rows, int64_t cols, float* x, int64_t ldx, float scale, const float* mask);
};

// The table in effect (kernel_config().rows, dispatch.h); never null.
const RowKernels& row_kernels();
// The scalar reference table.
const RowKernels& row_kernels_reference();
// Switches every kernel family (dispatch.h) to the ISA level `name`: "ref", "avx2", "avx512", or
// "auto" = back to the start-up choice (LEANEMBED_ISA's level, else the best this CPU runs).
// Returns false, changing nothing, if the name is unknown or this CPU cannot run it. Affects kernels
// looked up afterwards (q4 / f16 layers look theirs up when made). Not thread-safe with kernels
// running; meant for tests and benchmarks.
bool kernels_force_isa(const std::string& name);

// Which implementation of a kernel to use: the fast one (for fp32 products oneDNN, for the others
// the tables of dispatch.h) or the scalar reference, the plain-loop spec tests compare against.
enum class Implementation { fast, reference };

// ---- Matrix products -----------------------------------------------------------------------------
// C[m, n] = alpha * sum_k op(A)[m, k] * op(B)[k, n] + beta * C[m, n] (+ bias[n] if bias != null),
// row-major; op(X) = X or X^T. lda/ldb/ldc are row strides in elements of A, B, C as stored.
// Alignment: `a` and `b` may start at any byte address (e.g. weights viewed in place in an ONNX file
// whose raw_data is not 4-byte aligned); every Matmul reads them without assuming float alignment
// (the reference through std::memcpy, oneDNN with unaligned loads). `c` and `bias` must be
// float-aligned.
struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr; int64_t lda = 0; bool trans_a = false;
  const float* b = nullptr; int64_t ldb = 0; bool trans_b = false;
  float* c = nullptr; int64_t ldc = 0;
  float alpha = 1.0f, beta = 0.0f;
  const float* bias = nullptr;
};

// Threading: one Matmul object must not be used by two threads at once (implementations cache
// state such as oneDNN primitives); give each calling thread its own. Each call itself runs on up
// to threads_get() threads.
class Matmul {
 public:
  virtual ~Matmul() = default;
  virtual const char* name() const = 0;
  // Bytes of scratch gemm() needs for this problem size (0 if none). Exact, so it can be planned.
  virtual std::size_t scratch_bytes(int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b) const = 0;
  // Runs one product; `scratch` holds at least scratch_bytes(...) bytes. Does not allocate.
  virtual void gemm(const GemmArgs& args, void* scratch) = 0;
};

// oneDNN-backed (the default on x86).
std::unique_ptr<Matmul> matmul_create_onednn();

// Upper bound, in bytes, of the memory oneDNN 2.6's f32 sgemm mallocs INSIDE one call of the oneDNN
// Matmul's gemm() (packing buffers; freed before the call returns, so they add to the peak, not to
// what stays) for any product with at most `max_m` rows, n columns, depth k, dense operands
// (lda = k, ldb = n, ldc = n, trans_a = false) and `threads` threads. The caller's scratch
// (scratch_bytes()) is not included. Monotone in max_m. Derivation and measurements: the header
// comment of matmul_onednn.cpp; tests/embed/test_memory_gemm_bound.cpp checks it against a counting
// malloc. Pure computation apart from asking oneDNN for the CPU's ISA once.
std::size_t onednn_gemm_internal_bytes_bound(int64_t max_m, int64_t n, int64_t k, int threads);
// Plain loops: the spec the fast one is tested against.
std::unique_ptr<Matmul> matmul_create_reference();
// matmul_create_onednn() for Implementation::fast, matmul_create_reference() for ::reference.
std::unique_ptr<Matmul> matmul_create(Implementation implementation);

}  // namespace leanembed::kernels
