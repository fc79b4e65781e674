// Central finite-difference gradient checks in double.
#pragma once

#include <cmath>
#include <functional>
#include <vector>

#include "core/rng.hpp"

namespace ng::test {

inline std::vector<double> randn(size_t n, uint64_t seed, double std = 1.0) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = std * rng.normal();
  return v;
}

struct GradError {
  double max_abs = 0;  // largest |analytic - numeric|
  double norm = 0;     // norm of the numeric gradient
  double rel() const { return max_abs / (norm > 1e-30 ? norm : 1.0); }
};

// Compares `analytic` (d loss / d x) against central differences of `loss` in each element of x
// (every element, or `stride`-spaced ones for big tensors).
inline GradError fd_check(std::vector<double>& x, const std::vector<double>& analytic,
                          const std::function<double()>& loss, double h = 1e-5, size_t stride = 1) {
  GradError e;
  double norm2 = 0;
  for (size_t i = 0; i < x.size(); i += stride) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = loss();
    x[i] = keep - h;
    const double down = loss();
    x[i] = keep;
    const double num = (up - down) / (2 * h);
    norm2 += num * num;
    e.max_abs = std::max(e.max_abs, std::abs(num - analytic[i]));
  }
  e.norm = std::sqrt(norm2);
  return e;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace ng::test
