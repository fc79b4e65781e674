// CPU optimizer kernels (ops/optim.hpp).
#include <omp.h>

#include <cmath>
#include <vector>

#include "backend/cpu/kernels.hpp"

namespace ng::cpu {

template <class T>
void adamw_update(const AdamWArgs<T>& a) {
  const T b1 = a.beta1, b2 = a.beta2;
#pragma omp parallel for simd
  for (size_t i = 0; i < a.n; ++i) {
    const T g = a.grad_scale == T(1) ? a.grads[i] : a.grads[i] * a.grad_scale;
    a.m[i] = b1 * a.m[i] + (T(1) - b1) * g;
    a.v[i] = b2 * a.v[i] + (T(1) - b2) * g * g;
    const T mhat = a.m[i] / a.bc1;
    const T vhat = a.v[i] / a.bc2;
    a.params[i] -= a.decay * a.params[i];
    a.params[i] -= a.lr * mhat / (std::sqrt(vhat) + a.eps);
  }
}

template <class T>
double sum_squares(const SumSquaresArgs<T>& a) {
  // Per-thread partial sums over a fixed static partition, added in thread order: OpenMP's own
  // reduction may combine partials in any order, which would break bitwise-reproducible runs.
  std::vector<double> partial(omp_get_max_threads(), 0.0);
#pragma omp parallel
  {
    double s = 0;
#pragma omp for schedule(static)
    for (size_t i = 0; i < a.n; ++i) s += double(a.x[i]) * double(a.x[i]);
    partial[omp_get_thread_num()] = s;
  }
  double s = 0;
  for (double p : partial) s += p;
  return s;
}

template void adamw_update<float>(const AdamWArgs<float>&);
template void adamw_update<double>(const AdamWArgs<double>&);
template double sum_squares<float>(const SumSquaresArgs<float>&);
template double sum_squares<double>(const SumSquaresArgs<double>&);

}  // namespace ng::cpu
