#include "norm/angpt_factors.hpp"

#include <cmath>

namespace ng {
namespace {

double gelu(double x) {
  const double k = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}
double silu(double x) { return x / (1.0 + std::exp(-x)); }

// E[f(z)^2] for z ~ N(0, sigma^2), by Simpson's rule on [-12 sigma, 12 sigma].
template <class F>
double mean_square(F f, double sigma) {
  const int n = 20000;  // even
  const double a = -12 * sigma, h = 24 * sigma / n;
  double sum = 0;
  for (int i = 0; i <= n; ++i) {
    const double z = a + i * h;
    const double w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
    const double fz = f(z);
    sum += w * fz * fz * std::exp(-0.5 * (z / sigma) * (z / sigma));
  }
  return sum * h / 3 / (sigma * std::sqrt(2 * M_PI));
}

}  // namespace

double angpt_activation_factor(bool swiglu, int H) {
  const double sigma = 1.0 / std::sqrt(double(H));
  if (swiglu) return 1.0 / std::sqrt(mean_square(silu, sigma));
  return 1.0 / std::sqrt(H * mean_square(gelu, sigma));
}

}  // namespace ng
