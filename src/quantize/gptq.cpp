#include "quantize/gptq.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "leanembed/error.h"

namespace leanembed::quantize {
namespace {

// sum_i a[i] * b[i] with four independent sums (the loop is latency-bound otherwise).
double dot(const double* a, const double* b, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

void check(bool ok, const std::string& what) {
  if (!ok) throw Error(ErrorCode::invalid_argument, "gptq: " + what);
}

}  // namespace

std::vector<double> gram_matrix(std::span<const float> rows, int64_t K, std::span<const float> scale) {
  check(K > 0 && rows.size() % static_cast<std::size_t>(K) == 0,
        "calibration rows of " + std::to_string(rows.size()) + " floats are not a multiple of K=" + std::to_string(K));
  check(scale.empty() || static_cast<int64_t>(scale.size()) == K,
        "scale of " + std::to_string(scale.size()) + " values for K=" + std::to_string(K));
  const std::size_t k = static_cast<std::size_t>(K);
  std::vector<double> h(k * k, 0.0);
  std::vector<double> x(k);
  for (std::size_t r = 0; r < rows.size() / k; ++r) {
    for (std::size_t i = 0; i < k; ++i) x[i] = rows[r * k + i] / (scale.empty() ? 1.0 : static_cast<double>(scale[i]));
    for (std::size_t i = 0; i < k; ++i) {
      const double xi = x[i];
      double* hi = h.data() + i * k;
      for (std::size_t j = 0; j <= i; ++j) hi[j] += xi * x[j];  // lower triangle; mirrored below
    }
  }
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < i; ++j) h[j * k + i] = h[i * k + j];
  return h;
}

std::vector<double> inverse_hessian_factor(std::span<const double> h, int64_t K, double damp) {
  check(K > 0 && static_cast<int64_t>(h.size()) == K * K, "H of " + std::to_string(h.size()) + " values for K=" + std::to_string(K));
  const std::size_t k = static_cast<std::size_t>(K);
  // R = P H P (P reverses the order) with the dampening: its lower Cholesky factor L gives
  // U = P L^-1 P, upper, with U^T U = H^-1 (H = P L L^T P  =>  H^-1 = (P L^-1 P)^T (P L^-1 P)).
  for (std::size_t i = 0; i < k * k; ++i)
    check(std::isfinite(h[i]), "H[" + std::to_string(i / k) + "][" + std::to_string(i % k) + "] is not finite");
  double mean_diag = 0;
  for (std::size_t i = 0; i < k; ++i) mean_diag += h[i * k + i];
  mean_diag /= static_cast<double>(k);
  const double lambda = damp * (mean_diag > 0 ? mean_diag : 1.0);
  std::vector<double> l(k * k, 0.0);
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j <= i; ++j) l[i * k + j] = h[(k - 1 - i) * k + (k - 1 - j)];
  for (std::size_t i = 0; i < k; ++i) {
    double& d = l[i * k + i];
    if (!(d > 0)) d = 1.0;  // a channel never active in calibration
    d += lambda;
  }
  // In-place Cholesky, row by row: L[i][j] = (R[i][j] - L[i][:j] . L[j][:j]) / L[j][j].
  for (std::size_t i = 0; i < k; ++i) {
    double* li = l.data() + i * k;
    for (std::size_t j = 0; j <= i; ++j) {
      const double s = li[j] - dot(li, l.data() + j * k, static_cast<int64_t>(j));
      if (j == i) {
        check(s > 0 && std::isfinite(s), "the calibration Hessian is not positive definite (channel " +
                                             std::to_string(k - 1 - i) + " of " + std::to_string(K) +
                                             ": pivot " + std::to_string(s) + ")");
        li[i] = std::sqrt(s);
      } else {
        li[j] = s / l[j * k + j];
      }
    }
  }
  // M = L^-1 (lower), row by row: M[i][:] = (e_i - sum_{c<i} L[i][c] M[c][:]) / L[i][i].
  std::vector<double> m(k * k, 0.0);
  for (std::size_t i = 0; i < k; ++i) {
    double* mi = m.data() + i * k;
    mi[i] = 1.0;
    for (std::size_t c = 0; c < i; ++c) {
      const double f = l[i * k + c];
      if (f == 0.0) continue;
      const double* mc = m.data() + c * k;
      for (std::size_t j = 0; j <= c; ++j) mi[j] -= f * mc[j];
    }
    const double inv = 1.0 / l[i * k + i];
    for (std::size_t j = 0; j <= i; ++j) mi[j] *= inv;
  }
  // U[i][j] = M[K-1-i][K-1-j] (reuse l's storage).
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j) l[i * k + j] = m[(k - 1 - i) * k + (k - 1 - j)];
  return l;
}

void gptq_round(std::span<float> w, int64_t K, int64_t N, std::span<const double> h, double damp, int64_t group,
                bool act_order, GptqRounder& rounder) {
  check(K > 0 && N > 0 && static_cast<int64_t>(w.size()) == K * N && static_cast<int64_t>(h.size()) == K * K &&
            group > 0,
        "sizes: w " + std::to_string(w.size()) + ", H " + std::to_string(h.size()) + " for K=" + std::to_string(K) +
            " N=" + std::to_string(N) + " group " + std::to_string(group));
  const std::size_t n = static_cast<std::size_t>(N), kk = static_cast<std::size_t>(K);
  // Processing order: 0..K-1, or (act_order) by decreasing H[k][k], ties by index.
  std::vector<int64_t> order(kk);
  for (std::size_t i = 0; i < kk; ++i) order[i] = static_cast<int64_t>(i);
  if (act_order) {
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return h[static_cast<std::size_t>(a * K + a)] > h[static_cast<std::size_t>(b * K + b)]; });
    // Static groups: every group's parameters from the uncompensated weights, before any rounding.
    for (int64_t first = 0; first < K; first += group) {
      const int64_t rows = std::min(group, K - first);
      rounder.begin_group(first, rows, std::span<const float>(w).subspan(static_cast<std::size_t>(first) * n, static_cast<std::size_t>(rows) * n));
    }
  }
  std::vector<double> hp(kk * kk);
  for (std::size_t i = 0; i < kk; ++i)
    for (std::size_t j = 0; j < kk; ++j) hp[i * kk + j] = h[static_cast<std::size_t>(order[i]) * kk + static_cast<std::size_t>(order[j])];
  const std::vector<double> u = inverse_hessian_factor(hp, K, damp);
  hp = {};
  std::vector<float> p(kk * n);  // the rows in processing order
  for (std::size_t i = 0; i < kk; ++i)
    std::copy_n(w.data() + static_cast<std::size_t>(order[i]) * n, n, p.data() + i * n);
  std::vector<float> err(static_cast<std::size_t>(group) * n);  // (w_k - w'_k) / U[k][k] of the batch's rows
  std::vector<float> before(n);
  for (int64_t first = 0; first < K; first += group) {
    const int64_t rows = std::min(group, K - first);
    if (!act_order) {
      rounder.begin_group(first, rows, std::span<const float>(p).subspan(static_cast<std::size_t>(first) * n, static_cast<std::size_t>(rows) * n));
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t k = first + r;
      float* wk = p.data() + static_cast<std::size_t>(k) * n;
      std::copy(wk, wk + n, before.begin());
      rounder.round_row(order[static_cast<std::size_t>(k)], std::span<float>(wk, n));
      const double ukk = u[static_cast<std::size_t>(k * K + k)];
      float* ek = err.data() + static_cast<std::size_t>(r) * n;
      for (std::size_t j = 0; j < n; ++j) ek[j] = static_cast<float>((before[j] - wk[j]) / ukk);
      // Within the batch at once (its later rows are rounded next).
      for (int64_t r2 = r + 1; r2 < rows; ++r2) {
        const float f = static_cast<float>(u[static_cast<std::size_t>(k * K + first + r2)]);
        float* wj = p.data() + static_cast<std::size_t>(first + r2) * n;
        for (std::size_t j = 0; j < n; ++j) wj[j] -= f * ek[j];
      }
    }
    // The rows after the batch, once per batch.
    for (int64_t j2 = first + rows; j2 < K; ++j2) {
      float* wj = p.data() + static_cast<std::size_t>(j2) * n;
      for (int64_t r = 0; r < rows; ++r) {
        const float f = static_cast<float>(u[static_cast<std::size_t>((first + r) * K + j2)]);
        const float* er = err.data() + static_cast<std::size_t>(r) * n;
        for (std::size_t j = 0; j < n; ++j) wj[j] -= f * er[j];
      }
    }
  }
  for (std::size_t i = 0; i < kk; ++i)
    std::copy_n(p.data() + i * n, n, w.data() + static_cast<std::size_t>(order[i]) * n);
}

}  // namespace leanembed::quantize
