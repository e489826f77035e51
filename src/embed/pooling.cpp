#include "embed/pooling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "leanembed/error.h"

namespace leanembed {

void pool_sequences(Pooling pooling, std::span<const float> hidden, int64_t hidden_size,
                    std::span<const int64_t> offsets, int64_t dims, std::span<float> out) {
  if (offsets.empty() || hidden_size <= 0 || dims <= 0 || dims > hidden_size) {
    throw Error(ErrorCode::invalid_argument, "pool_sequences: need offsets, hidden_size > 0 and 0 < dims <= hidden_size (dims " +
                                                 std::to_string(dims) + ", hidden " + std::to_string(hidden_size) + ")");
  }
  const int64_t sequences = static_cast<int64_t>(offsets.size()) - 1;
  if (static_cast<int64_t>(hidden.size()) != offsets.back() * hidden_size ||
      static_cast<int64_t>(out.size()) != sequences * dims || offsets.front() != 0) {
    throw Error(ErrorCode::invalid_argument, "pool_sequences: buffer sizes do not match the offsets");
  }
  for (int64_t s = 0; s < sequences; ++s) {
    const int64_t begin = offsets[s], end = offsets[s + 1];
    if (end <= begin) throw Error(ErrorCode::invalid_argument, "pool_sequences: sequence " + std::to_string(s) + " is empty");
    float* dst = out.data() + s * dims;
    const float* rows = hidden.data() + begin * hidden_size;
    const int64_t n = end - begin;
    switch (pooling) {
      case Pooling::cls:
        std::copy(rows, rows + dims, dst);
        break;
      case Pooling::last_token:
        std::copy(rows + (n - 1) * hidden_size, rows + (n - 1) * hidden_size + dims, dst);
        break;
      case Pooling::max:
        for (int64_t d = 0; d < dims; ++d) {
          float m = -std::numeric_limits<float>::infinity();
          for (int64_t t = 0; t < n; ++t) m = std::max(m, rows[t * hidden_size + d]);
          dst[d] = m;
        }
        break;
      case Pooling::mean:
      case Pooling::mean_sqrt_len: {
        const double denom = pooling == Pooling::mean ? static_cast<double>(n) : std::sqrt(static_cast<double>(n));
        for (int64_t d = 0; d < dims; ++d) {
          double sum = 0.0;
          for (int64_t t = 0; t < n; ++t) sum += rows[t * hidden_size + d];
          dst[d] = static_cast<float>(sum / denom);
        }
        break;
      }
    }
  }
}

void l2_normalize(std::span<float> v) {
  double sq = 0.0;
  for (float x : v) sq += static_cast<double>(x) * x;
  const double norm = std::max(std::sqrt(sq), 1e-12);
  for (float& x : v) x = static_cast<float>(x / norm);
}

}  // namespace leanembed
