// GELU, residual add, scale, SwiGLU, scale_columns and copy2d (contract: ops/pointwise.hpp,
// interface: pointwise.hpp).
// Plain grid-stride loops in fp32, written like the CPU reference so both round alike; pointers are
// not __restrict__ because the contract allows in-place use. bf16 storage: loaded into fp32
// (to_float), every result rounded once on its store (from_float); ds (grad_t) stays fp32. Vectorized (128-bit) loads are a later
// optimization, to be earned by a measured speed-up (DESIGN.md, style 8).
#include "backend/cuda/check.cuh"
#include "backend/cuda/colsum.cuh"
#include "backend/cuda/convert.cuh"
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
    const float x = to_float(inp[i]);
    out[i] = from_float<T>(0.5f * x * (1.0f + tanhf(kGeluC * (x + 0.044715f * x * x * x))));
  }
}

template <class T>
__global__ void gelu_backward_kernel(T* dinp, const T* inp, const T* dout, size_t n, bool accumulate) {
  NG_GRID_STRIDE(i, n) {
    const float x = to_float(inp[i]);
    const float u = kGeluC * (x + 0.044715f * x * x * x);
    const float th = tanhf(u);
    const float sech2 = 1.0f - th * th;
    const float grad = 0.5f * (1.0f + th) + 0.5f * x * sech2 * kGeluC * (1.0f + float(3 * 0.044715) * x * x);
    const float g = grad * to_float(dout[i]);
    // Read dinp only when accumulating: with accumulate = false it may hold garbage (NaN poison).
    dinp[i] = from_float<T>(accumulate ? to_float(dinp[i]) + g : g);
  }
}

template <class T>
__global__ void residual_kernel(T* out, const T* x, const T* g, const T* skip, float alpha, size_t n) {
  if (skip) {
    NG_GRID_STRIDE(i, n) out[i] = from_float<T>(alpha * to_float(x[i]) + to_float(g[i]) + to_float(skip[i]));
  } else {
    NG_GRID_STRIDE(i, n) out[i] = from_float<T>(alpha * to_float(x[i]) + to_float(g[i]));
  }
}

template <class T>
__global__ void scale_kernel(T* dst, const T* src, float alpha, size_t n, bool accumulate) {
  NG_GRID_STRIDE(i, n) dst[i] = from_float<T>((accumulate ? to_float(dst[i]) : 0.0f) + alpha * to_float(src[i]));
}

// One thread per (n, j < H): reads gate and up, then writes out (or both dinp halves).
template <class T>
__global__ void swiglu_forward_kernel(T* out, const T* inp, int H, size_t n) {
  NG_GRID_STRIDE(i, n) {
    const size_t row = i / H, j = i % H;
    const float z = to_float(inp[row * 2 * H + j]), up = to_float(inp[row * 2 * H + H + j]);
    out[i] = from_float<T>(z / (1.0f + expf(-z)) * up);  // expf(-z) = inf for very negative z: 0, not NaN
  }
}

template <class T>
__global__ void swiglu_backward_kernel(T* dinp, const T* inp, const T* dout, int H, size_t n) {
  NG_GRID_STRIDE(i, n) {
    const size_t row = i / H, j = i % H;
    const float z = to_float(inp[row * 2 * H + j]), up = to_float(inp[row * 2 * H + H + j]);
    const float sig = 1.0f / (1.0f + expf(-z));
    const float dy = to_float(dout[i]);
    dinp[row * 2 * H + j] = from_float<T>(dy * up * sig * (1.0f + z * (1.0f - sig)));  // silu' = sig (1 + z (1 - sig))
    dinp[row * 2 * H + H + j] = from_float<T>(dy * z * sig);
  }
}

template <class T>
__global__ void scale_columns_kernel(T* dst, const T* src, const T* s, float k, int W, size_t n, bool accumulate) {
  NG_GRID_STRIDE(i, n) {
    const float v = k * to_float(s[i % W]) * to_float(src[i]);
    dst[i] = from_float<T>(accumulate ? to_float(dst[i]) + v : v);
  }
}

template <class T>
__global__ void copy2d_accumulate_kernel(T* dst, int ld_dst, const T* src, int ld_src, int width, size_t n) {
  NG_GRID_STRIDE(i, n) {
    const size_t r = i / width, c = i % width;
    T* d = dst + r * ld_dst + c;
    *d = from_float<T>(to_float(*d) + to_float(src[r * ld_src + c]));
  }
}

// ds[c] += k * sum_n dout[n,c] x[n,c]: one element's share, and the factor k on the column sum.
template <class T>
struct ScaleColumnsDs {
  const T* dout;
  const T* x;
  float k;
  int W;
  __device__ float operator()(int n, int c) const {
    const size_t i = size_t(n) * W + c;
    return to_float(dout[i]) * to_float(x[i]);
  }
  __device__ float factor(int) const { return k; }
};

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

template <class T>
void swiglu_forward(const SwigluForwardArgs<T>& a) {
  if (a.N <= 0 || a.H <= 0) return;
  const size_t n = size_t(a.N) * a.H;
  swiglu_forward_kernel<<<grid_for(n, kThreads), kThreads>>>(a.out, a.inp, a.H, n);
  NG_CUDA_LAUNCHED();
}

template <class T>
void swiglu_backward(const SwigluBackwardArgs<T>& a) {
  if (a.N <= 0 || a.H <= 0) return;
  const size_t n = size_t(a.N) * a.H;
  swiglu_backward_kernel<<<grid_for(n, kThreads), kThreads>>>(a.dinp, a.inp, a.dout, a.H, n);
  NG_CUDA_LAUNCHED();
}

template <class T>
void scale_columns_forward(const ScaleColumnsForwardArgs<T>& a) {
  if (a.N <= 0 || a.W <= 0) return;
  const size_t n = size_t(a.N) * a.W;
  scale_columns_kernel<<<grid_for(n, kThreads), kThreads>>>(a.out, a.x, a.s, float(a.k), a.W, n, false);
  NG_CUDA_LAUNCHED();
}

template <class T>
void scale_columns_backward(const ScaleColumnsBackwardArgs<T>& a) {
  if (a.N <= 0 || a.W <= 0) return;
  // ds first: it reads dout, which dx may overwrite (stream order keeps the two passes apart).
  if (a.ds) column_sums_accumulate(ScaleColumnsDs<T>{a.dout, a.x, float(a.k), a.W}, a.N, a.W, a.ds);
  const size_t n = size_t(a.N) * a.W;
  scale_columns_kernel<<<grid_for(n, kThreads), kThreads>>>(a.dx, a.dout, a.s, float(a.k), a.W, n, a.accumulate);
  NG_CUDA_LAUNCHED();
}

template <class T>
void copy2d(const Copy2dArgs<T>& a) {
  if (a.rows <= 0 || a.width <= 0) return;
  if (a.ld_dst < a.width || a.ld_src < a.width)
    throw_internal(__FILE__, __LINE__, "copy2d: a leading dimension is smaller than the width");
  if (!a.accumulate) {
    if (a.dst == a.src && a.ld_dst == a.ld_src) return;  // the identity copy (overlapping memcpy is undefined)
    NG_CUDA(cudaMemcpy2DAsync(a.dst, size_t(a.ld_dst) * sizeof(T), a.src, size_t(a.ld_src) * sizeof(T),
                              size_t(a.width) * sizeof(T), size_t(a.rows), cudaMemcpyDeviceToDevice, 0));
    return;
  }
  const size_t n = size_t(a.rows) * a.width;
  copy2d_accumulate_kernel<<<grid_for(n, kThreads), kThreads>>>(a.dst, a.ld_dst, a.src, a.ld_src, a.width, n);
  NG_CUDA_LAUNCHED();
}

template void gelu_forward<float>(const GeluForwardArgs<float>&);
template void gelu_backward<float>(const GeluBackwardArgs<float>&);
template void residual<float>(const ResidualArgs<float>&);
template void scale<float>(const ScaleArgs<float>&);
template void swiglu_forward<float>(const SwigluForwardArgs<float>&);
template void swiglu_backward<float>(const SwigluBackwardArgs<float>&);
template void scale_columns_forward<float>(const ScaleColumnsForwardArgs<float>&);
template void scale_columns_backward<float>(const ScaleColumnsBackwardArgs<float>&);
template void copy2d<float>(const Copy2dArgs<float>&);
template void gelu_forward<bf16>(const GeluForwardArgs<bf16>&);
template void gelu_backward<bf16>(const GeluBackwardArgs<bf16>&);
template void residual<bf16>(const ResidualArgs<bf16>&);
template void scale<bf16>(const ScaleArgs<bf16>&);
template void swiglu_forward<bf16>(const SwigluForwardArgs<bf16>&);
template void swiglu_backward<bf16>(const SwigluBackwardArgs<bf16>&);
template void scale_columns_forward<bf16>(const ScaleColumnsForwardArgs<bf16>&);
template void scale_columns_backward<bf16>(const ScaleColumnsBackwardArgs<bf16>&);
template void copy2d<bf16>(const Copy2dArgs<bf16>&);

}  // namespace ng::cuda
