// GELU and residual add (ops/pointwise.hpp).
#include <cmath>

#include "backend/cpu/kernels.hpp"

namespace ng::cpu {

namespace {
constexpr double kGeluC = 0.7978845608028654;  // sqrt(2/pi)
}

template <class T>
void gelu_forward(const GeluForwardArgs<T>& a) {
#pragma omp parallel for simd
  for (size_t i = 0; i < a.n; ++i) {
    const T x = a.inp[i];
    a.out[i] = T(0.5) * x * (T(1) + std::tanh(T(kGeluC) * (x + T(0.044715) * x * x * x)));
  }
}

template <class T>
void gelu_backward(const GeluBackwardArgs<T>& a) {
#pragma omp parallel for simd
  for (size_t i = 0; i < a.n; ++i) {
    const T x = a.inp[i];
    const T u = T(kGeluC) * (x + T(0.044715) * x * x * x);
    const T th = std::tanh(u);
    const T sech2 = T(1) - th * th;
    const T grad = T(0.5) * (T(1) + th) + T(0.5) * x * sech2 * T(kGeluC) * (T(1) + T(3 * 0.044715) * x * x);
    const T g = grad * a.dout[i];
    a.dinp[i] = a.accumulate ? a.dinp[i] + g : g;
  }
}

template <class T>
void residual(const ResidualArgs<T>& a) {
  if (a.skip) {
#pragma omp parallel for simd
    for (size_t i = 0; i < a.n; ++i) a.out[i] = a.alpha * a.x[i] + a.g[i] + a.skip[i];
  } else {
#pragma omp parallel for simd
    for (size_t i = 0; i < a.n; ++i) a.out[i] = a.alpha * a.x[i] + a.g[i];
  }
}

template <class T>
void scale(const ScaleArgs<T>& a) {
#pragma omp parallel for simd
  for (size_t i = 0; i < a.n; ++i) a.dst[i] = (a.accumulate ? a.dst[i] : T(0)) + a.alpha * a.src[i];
}

template void gelu_forward<float>(const GeluForwardArgs<float>&);
template void gelu_forward<double>(const GeluForwardArgs<double>&);
template void gelu_backward<float>(const GeluBackwardArgs<float>&);
template void gelu_backward<double>(const GeluBackwardArgs<double>&);
template void residual<float>(const ResidualArgs<float>&);
template void residual<double>(const ResidualArgs<double>&);
template void scale<float>(const ScaleArgs<float>&);
template void scale<double>(const ScaleArgs<double>&);

}  // namespace ng::cpu
