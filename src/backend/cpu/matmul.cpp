// Linear forward/backward (ops/matmul.hpp) on top of gemm.
#include "backend/cpu/kernels.hpp"
#include "backend/cpu/reduce.hpp"

namespace ng::cpu {

template <class T>
void matmul_forward(const MatmulForwardArgs<T>& a) {
  using A = acc_t<T>;
  A beta = A(0);
  if (a.bias) {
    // Pre-fill with the bias so one gemm with beta = 1 adds the product to it (the bias is a T, so
    // the pre-fill is exact and the sum is rounded once).
#pragma omp parallel for
    for (int n = 0; n < a.N; ++n)
      for (int o = 0; o < a.OC; ++o) a.out[size_t(n) * a.OC + o] = a.bias[o];
    beta = A(1);
  }
  gemm<T>(false, true, a.N, a.OC, a.C, A(1), a.inp, a.C, a.weight, a.C, beta, a.out, a.OC);
}

template <class T>
void matmul_backward(const MatmulBackwardArgs<T>& a) {
  using A = acc_t<T>;
  using G = grad_t<T>;
  if (a.dinp)
    gemm<T>(false, false, a.N, a.C, a.OC, A(1), a.dout, a.OC, a.weight, a.C, a.accumulate ? A(1) : A(0), a.dinp, a.C);
  gemm<T>(true, false, a.OC, a.C, a.N, A(1), a.dout, a.OC, a.inp, a.C, A(1), a.dweight, a.C);
  if (a.dbias) {
    const T* dout = a.dout;
    const int OC = a.OC;
    accumulate_rows<G>(a.dbias, a.N, OC, [&](int n, G* acc) {
      const T* row = dout + size_t(n) * OC;
#pragma omp simd
      for (int o = 0; o < OC; ++o) acc[o] += row[o];
    });
  }
}

template void matmul_forward<float>(const MatmulForwardArgs<float>&);
template void matmul_forward<double>(const MatmulForwardArgs<double>&);
template void matmul_forward<bf16>(const MatmulForwardArgs<bf16>&);
template void matmul_backward<float>(const MatmulBackwardArgs<float>&);
template void matmul_backward<double>(const MatmulBackwardArgs<double>&);
template void matmul_backward<bf16>(const MatmulBackwardArgs<bf16>&);

}  // namespace ng::cpu
