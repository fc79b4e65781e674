// LayerNorm / RMSNorm kernels (ops/norm.hpp); the math mirrors backend/cpu/norm.cpp line by line.
#include <algorithm>

#include "backend/cuda/check.cuh"
#include "backend/cuda/norm.hpp"
#include "backend/cuda/reduce.cuh"

namespace ng::cuda {
namespace {

constexpr int kRowThreads = 256;  // one block per row; a whole number of warps (block_sum needs it)
constexpr int kColTile = 32;      // gradient columns per block: one warp reads 128 contiguous bytes
constexpr int kRowLanes = 8;      // rows read side by side per gradient block
constexpr int kMaxChunks = 64;    // row chunks of the first gradient pass (depends on N only)

template <class T>
__global__ void norm_forward_kernel(NormForwardArgs<T> a) {
  __shared__ float sh[32];
  const int n = blockIdx.x, C = a.C;
  const bool layernorm = a.fn == NormFunction::LayerNorm;  // block-uniform
  const T* x = a.inp + size_t(n) * C;
  T* out = a.out + size_t(n) * C;
  float m = 0.f;
  if (layernorm) {
    float s = 0.f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) s += float(x[c]);
    m = block_sum(s, sh) / C;
  }
  // Two passes (mean, then centred squares) as on the CPU: no cancellation from E[x^2] - m^2.
  float v = 0.f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float d = float(x[c]) - m;
    v += d * d;
  }
  const float rstd = 1.f / sqrtf(block_sum(v, sh) / C + a.eps);
  const float scale = float(a.scale);
  // Each thread reads and writes only its own columns, after the barriers above: out may alias inp.
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float y = (float(x[c]) - m) * rstd * float(a.weight[c]);
    if (layernorm) y += float(a.bias[c]);
    out[c] = T(scale * y);
  }
  if (threadIdx.x == 0) {
    a.mean[n] = T(m);
    a.rstd[n] = T(rstd);
  }
}

// dx = rstd * (dn - mean(dn) - xhat * mean(dn * xhat)), dn = dout * scale * g (mean(dn) := 0 for rms).
template <class T>
__global__ void norm_backward_dinp_kernel(NormBackwardArgs<T> a) {
  __shared__ float sh[32];
  const int n = blockIdx.x, C = a.C;
  const bool layernorm = a.fn == NormFunction::LayerNorm;
  const T* x = a.inp + size_t(n) * C;
  const T* dy = a.dout + size_t(n) * C;
  T* dx = a.dinp + size_t(n) * C;
  // Under rmsnorm the mean is 0 by contract; do not trust the buffer's contents.
  const float m = layernorm ? float(a.mean[n]) : 0.f;
  const float s = float(a.rstd[n]), scale = float(a.scale);
  float sum_dn = 0.f, sum_dn_xhat = 0.f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float dn = float(dy[c]) * scale * float(a.weight[c]);
    sum_dn += dn;
    sum_dn_xhat += dn * (float(x[c]) - m) * s;
  }
  const float mean_dn = layernorm ? block_sum(sum_dn, sh) / C : 0.f;
  const float mean_dn_xhat = block_sum(sum_dn_xhat, sh) / C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float xhat = (float(x[c]) - m) * s;
    const float g = s * (float(dy[c]) * scale * float(a.weight[c]) - mean_dn - xhat * mean_dn_xhat);
    dx[c] = a.accumulate ? T(float(dx[c]) + g) : T(g);
  }
}

// Gradient pass 1: block (tile, chunk) sums rows [chunk * rows_per_chunk, ...) of kColTile columns.
// Thread (tx, ty) takes rows ty, ty + kRowLanes, ... in order; ty == 0 then adds the lanes in order.
template <class T>
__global__ void norm_param_partial_kernel(NormBackwardArgs<T> a, int rows_per_chunk, bool want_bias,
                                          float* part_w, float* part_b) {
  __shared__ float sw[kRowLanes][kColTile];
  __shared__ float sb[kRowLanes][kColTile];
  const int c = blockIdx.x * kColTile + threadIdx.x;
  const int chunk = blockIdx.y;
  const int r0 = chunk * rows_per_chunk;
  const int r1 = min(a.N, r0 + rows_per_chunk);
  const bool layernorm = a.fn == NormFunction::LayerNorm;
  const float scale = float(a.scale);
  float gw = 0.f, gb = 0.f;
  if (c < a.C) {
    for (int n = r0 + threadIdx.y; n < r1; n += kRowLanes) {
      const size_t i = size_t(n) * a.C + c;
      const float m = layernorm ? float(a.mean[n]) : 0.f;
      const float dys = float(a.dout[i]) * scale;
      gw += dys * (float(a.inp[i]) - m) * float(a.rstd[n]);
      gb += dys;
    }
  }
  sw[threadIdx.y][threadIdx.x] = gw;
  sb[threadIdx.y][threadIdx.x] = gb;
  __syncthreads();
  if (threadIdx.y == 0 && c < a.C) {
    float tw = 0.f, tb = 0.f;
    for (int l = 0; l < kRowLanes; ++l) {
      tw += sw[l][threadIdx.x];
      tb += sb[l][threadIdx.x];
    }
    part_w[size_t(chunk) * a.C + c] = tw;
    if (want_bias) part_b[size_t(chunk) * a.C + c] = tb;
  }
}

// Gradient pass 2: dst[c] += sum of the chunk partials in chunk order (accumulate, per the contract).
template <class T>
__global__ void norm_param_final_kernel(const float* part, int nchunks, int C, T* dst) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float t = 0.f;
  for (int k = 0; k < nchunks; ++k) t += part[size_t(k) * C + c];
  dst[c] = T(float(dst[c]) + t);
}

int ceil_div(int a, int b) { return (a + b - 1) / b; }

}  // namespace

template <class T>
void norm_forward(const NormForwardArgs<T>& a) {
  if (a.fn == NormFunction::DyT) throw_internal(__FILE__, __LINE__, "the dyt norm has no CUDA kernel yet");
  if (a.N <= 0 || a.C <= 0) return;
  norm_forward_kernel<T><<<a.N, kRowThreads>>>(a);
  NG_CUDA_LAUNCHED();
}

template <class T>
void norm_backward(const NormBackwardArgs<T>& a) {
  if (a.fn == NormFunction::DyT) throw_internal(__FILE__, __LINE__, "the dyt norm has no CUDA kernel yet");
  if (a.N <= 0 || a.C <= 0) return;
  norm_backward_dinp_kernel<T><<<a.N, kRowThreads>>>(a);
  NG_CUDA_LAUNCHED();

  const bool want_bias = a.fn == NormFunction::LayerNorm && a.dbias != nullptr;
  // The partition depends on N alone (never on the device), which keeps the sums reproducible.
  const int nchunks = std::min(a.N, kMaxChunks);
  const int rows_per_chunk = ceil_div(a.N, nchunks);  // trailing chunks may be empty: they write 0
  const size_t part_elems = size_t(nchunks) * a.C;
  float* part = nullptr;
  // Stream-ordered scratch: no device-wide sync, unlike cudaMalloc/cudaFree.
  NG_CUDA(cudaMallocAsync(reinterpret_cast<void**>(&part), part_elems * (want_bias ? 2 : 1) * sizeof(float), 0));
  float* part_w = part;
  float* part_b = want_bias ? part + part_elems : nullptr;
  const dim3 grid(ceil_div(a.C, kColTile), nchunks);
  const dim3 block(kColTile, kRowLanes);
  norm_param_partial_kernel<T><<<grid, block>>>(a, rows_per_chunk, want_bias, part_w, part_b);
  NG_CUDA_LAUNCHED();
  norm_param_final_kernel<T><<<ceil_div(a.C, 256), 256>>>(part_w, nchunks, a.C, a.dweight);
  NG_CUDA_LAUNCHED();
  if (want_bias) {
    norm_param_final_kernel<T><<<ceil_div(a.C, 256), 256>>>(part_b, nchunks, a.C, a.dbias);
    NG_CUDA_LAUNCHED();
  }
  NG_CUDA(cudaFreeAsync(part, 0));
}

template void norm_forward<float>(const NormForwardArgs<float>&);
template void norm_backward<float>(const NormBackwardArgs<float>&);

}  // namespace ng::cuda
