// Deterministic column sums for parameter gradients (bias, norm gains): each thread sums a fixed
// block of rows into its own buffer and the buffers are added in thread order, so the result
// depends only on the thread count, never on timing.
#pragma once

#include <omp.h>

#include <type_traits>
#include <vector>

#include "core/precision.hpp"

namespace ng::cpu {

// dst[c] += sum_n f(n, c) for n in [0,N), c in [0,C). f computes one row's contribution into a
// C-wide buffer: f(n, row_acc) must do row_acc[c] += ... for every c. T is the accumulator's type
// (grad_t or acc_t of the storage type), never bf16: a bf16 sum stops growing after 256 ones.
template <class T, class RowFn>
void accumulate_rows(T* dst, int N, int C, RowFn&& f) {
  static_assert(!std::is_same_v<T, bf16>, "accumulate in acc_t<T>, not in bf16");
  const int nt = omp_get_max_threads();
  std::vector<T> partial(size_t(nt) * C, T(0));
#pragma omp parallel num_threads(nt)
  {
    T* acc = partial.data() + size_t(omp_get_thread_num()) * C;
#pragma omp for schedule(static)
    for (int n = 0; n < N; ++n) f(n, acc);
  }
  for (int t = 0; t < nt; ++t)
    for (int c = 0; c < C; ++c) dst[c] += partial[size_t(t) * C + c];
}

}  // namespace ng::cpu
