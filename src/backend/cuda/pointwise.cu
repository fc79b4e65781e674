// GELU, residual add and scale (contract: ops/pointwise.hpp, interface: pointwise.hpp).
// Plain grid-stride loops in fp32, written like the CPU reference so both round alike; pointers are
// not __restrict__ because the contract allows in-place use. Vectorized (128-bit) loads are a later
// optimization, to be earned by a measured speed-up (DESIGN.md, style 8).
#include "backend/cuda/check.cuh"
#include "backend/cuda/pointwise.hpp"
#include "backend/cuda/reduce.cuh"

namespace ng::cuda {
namespace {

constexpr int kThreads = 256;
constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2/pi), rounded to float as the CPU's T(kGeluC)

#define NG_GRID_STRIDE(i, n) \
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < (n); i += size_t(gridDim.x) * blockDim.x)

template <class T>
__global__ void gelu_forward_kernel(T* out, const T* inp, size_t n) {
  NG_GRID_STRIDE(i, n) {
    const float x = float(inp[i]);
    out[i] = T(0.5f * x * (1.0f + tanhf(kGeluC * (x + 0.044715f * x * x * x))));
  }
}

template <class T>
__global__ void gelu_backward_kernel(T* dinp, const T* inp, const T* dout, size_t n, bool accumulate) {
  NG_GRID_STRIDE(i, n) {
    const float x = float(inp[i]);
    const float u = kGeluC * (x + 0.044715f * x * x * x);
    const float th = tanhf(u);
    const float sech2 = 1.0f - th * th;
    const float grad = 0.5f * (1.0f + th) + 0.5f * x * sech2 * kGeluC * (1.0f + float(3 * 0.044715) * x * x);
    const float g = grad * float(dout[i]);
    // Read dinp only when accumulating: with accumulate = false it may hold garbage (NaN poison).
    dinp[i] = T(accumulate ? float(dinp[i]) + g : g);
  }
}

template <class T>
__global__ void residual_kernel(T* out, const T* x, const T* g, const T* skip, float alpha, size_t n) {
  if (skip) {
    NG_GRID_STRIDE(i, n) out[i] = T(alpha * float(x[i]) + float(g[i]) + float(skip[i]));
  } else {
    NG_GRID_STRIDE(i, n) out[i] = T(alpha * float(x[i]) + float(g[i]));
  }
}

template <class T>
__global__ void scale_kernel(T* dst, const T* src, float alpha, size_t n, bool accumulate) {
  NG_GRID_STRIDE(i, n) dst[i] = T((accumulate ? float(dst[i]) : 0.0f) + alpha * float(src[i]));
}

#undef NG_GRID_STRIDE

}  // namespace

template <class T>
void gelu_forward(const GeluForwardArgs<T>& a) {
  if (a.n == 0) return;
  gelu_forward_kernel<<<grid_for(a.n, kThreads), kThreads>>>(a.out, a.inp, a.n);
  NG_CUDA_LAUNCHED();
}

template <class T>
void gelu_backward(const GeluBackwardArgs<T>& a) {
  if (a.n == 0) return;
  gelu_backward_kernel<<<grid_for(a.n, kThreads), kThreads>>>(a.dinp, a.inp, a.dout, a.n, a.accumulate);
  NG_CUDA_LAUNCHED();
}

template <class T>
void residual(const ResidualArgs<T>& a) {
  if (a.n == 0) return;
  residual_kernel<<<grid_for(a.n, kThreads), kThreads>>>(a.out, a.x, a.g, a.skip, float(a.alpha), a.n);
  NG_CUDA_LAUNCHED();
}

template <class T>
void scale(const ScaleArgs<T>& a) {
  if (a.n == 0) return;
  scale_kernel<<<grid_for(a.n, kThreads), kThreads>>>(a.dst, a.src, float(a.alpha), a.n, a.accumulate);
  NG_CUDA_LAUNCHED();
}

template void gelu_forward<float>(const GeluForwardArgs<float>&);
template void gelu_backward<float>(const GeluBackwardArgs<float>&);
template void residual<float>(const ResidualArgs<float>&);
template void scale<float>(const ScaleArgs<float>&);

}  // namespace ng::cuda
