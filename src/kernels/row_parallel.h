// Splitting a row kernel's rows over OpenMP threads (internal to src/kernels).
#pragma once

#include <omp.h>

#include <cstdint>

#include "kernels/threads.h"

namespace leanembed::kernels {

// How many threads a row kernel over rows x cols uses: 1 for small calls, else at most
// threads_get() and never more than there are rows. Defined out of line (threads.cpp) on purpose:
// an inline function here would also be compiled into the AVX2 file, and the linker could keep
// that copy for baseline callers.
int row_threads(int64_t rows, int64_t cols);

// Runs body(first_row, end_row) over contiguous blocks of [0, rows), one block per thread.
// `body` must not throw. Always called with a lambda local to one file, so each instantiation is
// private to the file that makes it (and compiled with that file's ISA flags only).
template <class Body>
void for_each_row_block(int64_t rows, int64_t cols, Body body) {
  int nt = row_threads(rows, cols);
  if (nt <= 1) {
    body(int64_t{0}, rows);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    int64_t first = rows * t / n, end = rows * (t + 1) / n;
    if (first < end) body(first, end);
  }
}

}  // namespace leanembed::kernels
