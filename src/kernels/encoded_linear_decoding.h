// What the q4 and f16 encoded linear layers (encoded_linear.h) share (internal to src/kernels, and
// for its tests and benchmarks). Both keep their weights encoded and decode them inside the product:
//
//   encoded_linear_q4.cpp, encoded_linear_f16.cpp    view checks, references (the spec), factories
//   encoded_linear_decoding.cpp                      the layer, the driver below, the reference table
//   encoded_linear_q4_avx2.cpp, _f16_avx2.cpp        each encoding's AVX2+FMA+F16C decoding: few rows
//                                                    in registers, and the fill of a decoded panel
//   encoded_linear_panel_avx2.cpp, _avx512.cpp       the fp32 micro-kernels over a decoded panel
//                                                    (16 columns wide on AVX2, 32 on AVX-512)
//
// The family's tables (DecodingKernels, chosen by dispatch.h): avx512 = AVX2 decoding + the AVX-512
// micro-kernel, avx2 = AVX2 decoding + the AVX2 micro-kernel, ref = the plain loops.
//
// Two paths, by the number of rows m of x. Few rows (m < kPanelMinRows; batch-1 matters): the
// weights are decoded in registers inside the dot products (the encoding's few_rows). Many rows: a
// panel of P columns x kc (<= kPanelMaxChunk) values of k is decoded once per block of
// kPanelRowBlock rows into fp32 on the stack (the encoding's fill_panel), then the micro-kernel runs
// every tile of rows over it. Stack: kPanelMaxChunk x P floats per thread (16 KB on AVX2, 32 KB on
// AVX-512); no heap, no scratch. Threads: output columns are split into contiguous ranges
// (multiples of P), one per OpenMP thread; every output is computed by the same instructions
// whatever the split, so results do not depend on the thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/cpu_features.h"
#include "kernels/encoded_linear.h"
#include "kernels/threads.h"

namespace leanembed::kernels {

// Measured (1 thread, MiniLM shapes, both micro-kernels): the panel path wins from 4-5 rows for q4
// and from 4 rows for f16; below, decoding in registers costs less than filling a panel.
inline constexpr int64_t kPanelMinRows = 4;
inline constexpr int64_t kPanelMaxChunk = 256;  // a multiple of 16 (q4 decodes 16 values at a time)
inline constexpr int64_t kPanelRowBlock = 128;  // 128 x kc floats of x stay in L1/L2 across the panels

// What one encoding supplies to the driver (its AVX2 file): `layout` is the encoding's decoded view.
struct DecodedColumns {
  const void* layout;
  // y[r, j] for r < m, j0 <= j < j1, weights decoded in registers (any m; used below kPanelMinRows).
  void (*few_rows)(const void* layout, int64_t j0, int64_t j1, int64_t m, const float* x, int64_t ldx, float* y,
                   int64_t ldy, const float* bias);
  // panel[t * stride + c] = W_real[i0 + t, j + c] for t < kc, c < width (<= stride); 0 for c >= width.
  void (*fill_panel)(const void* layout, int64_t j, int64_t width, int64_t i0, int64_t kc, float* panel,
                     int64_t stride);
};

// One table of the family (dispatch.h).
struct DecodingKernels {
  const char* isa;  // "ref", "avx2", "avx512": the suffix of the layers' names ("q4-avx2", ...)
  int64_t panel_width;  // P, columns per panel; 0 in the reference table
  // Rows [0, m) x columns [j0, j1) through panels P columns wide (null in the reference table).
  void (*panel_range)(const DecodedColumns& columns, int64_t k, int64_t j0, int64_t j1, int64_t m, const float* x,
                      int64_t ldx, float* y, int64_t ldy, const float* bias);
};
const DecodingKernels& decoding_kernels_reference();
const DecodingKernels& decoding_kernels_avx2();    // call only when cpu_has_avx2_fma_f16c()
const DecodingKernels& decoding_kernels_avx512();  // call only when cpu_has_avx512f()

// The driver: columns [0, n) split over up to `threads` OpenMP threads; each range through
// columns.few_rows when m < kPanelMinRows, else through kernels.panel_range (not the reference table).
void decoding_run(const DecodedColumns& columns, const DecodingKernels& kernels, int64_t k, int64_t n, int64_t m,
                  const float* x, int64_t ldx, float* y, int64_t ldy, const float* bias, int threads);

// Each encoding's fast run (its AVX2 file): same arguments as EncodedLinear::run() (already
// checked), on up to `threads` threads, with `kernels`' micro-kernel (not the reference table).
void q4_run_avx2(const BlockQ4WeightsView& w, int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy,
                 const float* bias, int threads, const DecodingKernels& kernels);
void f16_run_avx2(const F16WeightsView& w, int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy,
                  const float* bias, int threads, const DecodingKernels& kernels);

// A layer on the named table ("ref", "avx2", "avx512"), for tests and benchmarks; throws
// Error(invalid_argument) if this CPU cannot run it.
std::unique_ptr<EncodedLinear> encoded_linear_q4_kernel(const BlockQ4WeightsView& w, const std::string& kernel);
std::unique_ptr<EncodedLinear> encoded_linear_f16_kernel(const F16WeightsView& w, const std::string& kernel);

// The table a test or benchmark names ("ref", "avx2", "avx512"); throws Error(invalid_argument) if
// the name is unknown or this CPU cannot run it.
const DecodingKernels& decoding_kernels_named(const std::string& name);

// Throws Error(invalid_argument) naming the field when dim is outside [1, 2^31].
void decoding_check_dim(const char* what, const char* field, int64_t value);
// Throws Error(invalid_argument), naming the layer, for run() arguments: m < 0; for m > 0, x or y
// null, ldx < k, ldy < n.
void decoding_check_run(const char* name, int64_t k, int64_t n, int64_t m, const float* x, int64_t ldx,
                        const float* y, int64_t ldy);

// A layer whose weights stay encoded (views, nothing owned, no scratch) and are decoded inside the
// product by `kernels` (the reference table: Encoding::reference's plain loops). Encoding supplies
// View, prefix ("q4", "f16"), reference(w, m, x, ldx, y, ldy, bias),
// fast(w, m, x, ldx, y, ldy, bias, threads, kernels) and parallel_min_rows (the fast table's).
template <class Encoding>
class DecodingLinear final : public EncodedLinear {
 public:
  DecodingLinear(const typename Encoding::View& w, const DecodingKernels& kernels) : w_(w), kernels_(kernels) {}
  const char* name() const override { return name_.c_str(); }
  int64_t k() const override { return w_.k; }
  int64_t n() const override { return w_.n; }
  std::size_t owned_bytes() const override { return 0; }
  std::size_t scratch_bytes(int64_t) const override { return 0; }
  int64_t parallel_min_rows() const override { return kernels_.panel_width == 0 ? 0 : Encoding::parallel_min_rows; }

  void run(int64_t m, const float* x, int64_t ldx, float* y, int64_t ldy, const float* bias, void*) override {
    decoding_check_run(name(), w_.k, w_.n, m, x, ldx, y, ldy);
    if (m == 0) return;
    if (kernels_.panel_width == 0)
      Encoding::reference(w_, m, x, ldx, y, ldy, bias);
    else
      Encoding::fast(w_, m, x, ldx, y, ldy, bias, gemm_threads(m, w_.n, w_.k), kernels_);
  }

 private:
  typename Encoding::View w_;
  const DecodingKernels& kernels_;
  const std::string name_ = std::string(Encoding::prefix) + "-" + kernels_.isa;  // "q4-avx2", "f16-ref", ...
};

}  // namespace leanembed::kernels
