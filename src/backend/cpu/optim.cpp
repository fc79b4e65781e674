// CPU optimizer kernels (ops/optim.hpp).
#include <omp.h>

#include <cmath>
#include <vector>

#include "backend/cpu/kernels.hpp"
#include "core/errors.hpp"

namespace ng::cpu {

// Mixed precision updates the fp32 master copy and rounds it into the T weights; otherwise the
// weights are their own master and p is params[i] itself (the same operations as ever in fp32).
template <class T>
void adamw_update(const AdamWArgs<T>& a) {
  using A = acc_t<T>;
  if constexpr (is_mixed_precision<T>) NG_CHECK(a.master, "adamw_update: mixed precision needs master weights");
  const A b1 = a.beta1, b2 = a.beta2;
  A* const master = a.master;
#pragma omp parallel for simd
  for (size_t i = 0; i < a.n; ++i) {
    const A g = a.grad_scale == A(1) ? a.grads[i] : a.grads[i] * a.grad_scale;
    a.m[i] = b1 * a.m[i] + (A(1) - b1) * g;
    a.v[i] = b2 * a.v[i] + (A(1) - b2) * g * g;
    const A mhat = a.m[i] / a.bc1;
    const A vhat = a.v[i] / a.bc2;
    A p = master ? master[i] : A(a.params[i]);
    p -= a.decay * p;
    p -= a.lr * mhat / (std::sqrt(vhat) + a.eps);
    if (master) master[i] = p;
    a.params[i] = p;
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
template void adamw_update<bf16>(const AdamWArgs<bf16>&);
template double sum_squares<float>(const SumSquaresArgs<float>&);
template double sum_squares<double>(const SumSquaresArgs<double>&);
template double sum_squares<bf16>(const SumSquaresArgs<bf16>&);

}  // namespace ng::cpu
