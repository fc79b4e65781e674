// Lerp kernels (ops/lerp.hpp), fp32. Per column c:
//   a = alpha_scale * alpha[c] (abs_alpha: |a|),  w = nu ? 1/sqrt(a^2 + (1-a)^2) : 1
//   out = w ((1-a) x + a g)
//   d out/d a = w' ((1-a) x + a g) + w (g - x),  w' = nu ? (1 - 2a) w^3 : 0
//   d a/d alpha = alpha_scale (abs_alpha: times the sign of alpha_scale * alpha[c], +1 at 0 as on
//   the CPU: a subgradient that lets a parameter initialized at 0 move)
// The per-column constants are recomputed by every thread from alpha[c] (cheap, and no scratch).
// bf16 storage: loads into fp32, each output rounded once; dalpha (grad_t) is fp32.
#include "backend/cuda/check.cuh"
#include "backend/cuda/colsum.cuh"
#include "backend/cuda/convert.cuh"
#include "backend/cuda/lerp.hpp"
#include "backend/cuda/reduce.cuh"

namespace ng::cuda {
namespace {

constexpr int kThreads = 256;

struct LerpCol {
  float a, w, dw_da, da_dalpha;
};

__device__ inline LerpCol lerp_col(float alpha, float alpha_scale, bool abs_alpha, bool nu) {
  LerpCol k;
  const float raw = alpha_scale * alpha;
  k.a = abs_alpha ? fabsf(raw) : raw;
  k.w = nu ? 1.0f / sqrtf(k.a * k.a + (1.0f - k.a) * (1.0f - k.a)) : 1.0f;
  k.dw_da = nu ? (1.0f - 2.0f * k.a) * k.w * k.w * k.w : 0.0f;
  k.da_dalpha = alpha_scale * (abs_alpha && raw < 0.0f ? -1.0f : 1.0f);
  return k;
}

template <class T>
__global__ void lerp_forward_kernel(LerpForwardArgs<T> p, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const int c = int(i % size_t(p.C));
    const LerpCol k = lerp_col(to_float(p.alpha[c]), float(p.alpha_scale), p.abs_alpha, p.nu);
    p.out[i] = from_float<T>(k.w * ((1.0f - k.a) * to_float(p.x[i]) + k.a * to_float(p.g[i])));
  }
}

template <class T>
__global__ void lerp_backward_kernel(LerpBackwardArgs<T> p, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const int c = int(i % size_t(p.C));
    const LerpCol k = lerp_col(to_float(p.alpha[c]), float(p.alpha_scale), p.abs_alpha, p.nu);
    const float wd = k.w * to_float(p.dout[i]);
    p.dx[i] = from_float<T>((1.0f - k.a) * wd);
    p.dg[i] = from_float<T>(k.a * wd);
  }
}

// dalpha[c] = da/dalpha * sum_n dout * d out/d a: one element's share, and the column factor.
template <class T>
struct LerpDalpha {
  LerpBackwardArgs<T> p;
  __device__ LerpCol col(int c) const {
    return lerp_col(to_float(p.alpha[c]), float(p.alpha_scale), p.abs_alpha, p.nu);
  }
  __device__ float operator()(int n, int c) const {
    const LerpCol k = col(c);
    const size_t i = size_t(n) * p.C + c;
    const float x = to_float(p.x[i]), g = to_float(p.g[i]);
    return to_float(p.dout[i]) * (k.dw_da * ((1.0f - k.a) * x + k.a * g) + k.w * (g - x));
  }
  __device__ float factor(int c) const { return col(c).da_dalpha; }
};

}  // namespace

template <class T>
void lerp_forward(const LerpForwardArgs<T>& a) {
  const size_t n = size_t(a.N > 0 ? a.N : 0) * size_t(a.C > 0 ? a.C : 0);
  if (n == 0) return;
  lerp_forward_kernel<T><<<grid_for(n, kThreads), kThreads>>>(a, n);
  NG_CUDA_LAUNCHED();
}

template <class T>
void lerp_backward(const LerpBackwardArgs<T>& a) {
  const size_t n = size_t(a.N > 0 ? a.N : 0) * size_t(a.C > 0 ? a.C : 0);
  if (n == 0) return;
  if (a.dalpha) column_sums_accumulate(LerpDalpha<T>{a}, a.N, a.C, a.dalpha);
  lerp_backward_kernel<T><<<grid_for(n, kThreads), kThreads>>>(a, n);
  NG_CUDA_LAUNCHED();
}

template void lerp_forward<float>(const LerpForwardArgs<float>&);
template void lerp_backward<float>(const LerpBackwardArgs<float>&);
template void lerp_forward<bf16>(const LerpForwardArgs<bf16>&);
template void lerp_backward<bf16>(const LerpBackwardArgs<bf16>&);

}  // namespace ng::cuda
