// Deterministic column sums for parameter gradients (lerp's dalpha, scale_columns' ds):
//   dst[c] += f.factor(c) * sum_n f(n, c),  n in [0, N), c in [0, C)
// (the factor applied once to the column's sum, where the CPU reference applies it).
// The scheme of norm.cu's gain gradients: pass 1 splits the rows into a fixed number of chunks
// (a function of N only), each block sums kColTile columns of one chunk with kRowLanes row lanes
// added in lane order; pass 2 adds the chunk partials in chunk order. No atomics, so two runs on
// one GPU model are bitwise equal. f: a functor with `__device__ float operator()(int n, int c) const`
// and `__device__ float factor(int c) const` (no extended lambdas in this build), passed by value.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>

#include "backend/cuda/check.cuh"

namespace ng::cuda {
namespace colsum_detail {

constexpr int kColTile = 32;    // columns per block: one warp reads 128 contiguous bytes
constexpr int kRowLanes = 8;    // rows read side by side per block
constexpr int kMaxChunks = 64;  // row chunks of the first pass

template <class F>
__global__ void column_partial_kernel(F f, int N, int C, int rows_per_chunk, float* part) {
  __shared__ float sh[kRowLanes][kColTile];
  const int c = blockIdx.x * kColTile + threadIdx.x;
  const int chunk = blockIdx.y;
  const int r0 = chunk * rows_per_chunk;
  const int r1 = min(N, r0 + rows_per_chunk);
  float acc = 0.f;
  if (c < C)
    for (int n = r0 + threadIdx.y; n < r1; n += kRowLanes) acc += f(n, c);
  sh[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float t = 0.f;
    for (int l = 0; l < kRowLanes; ++l) t += sh[l][threadIdx.x];
    part[size_t(chunk) * C + c] = t;  // empty trailing chunks write 0
  }
}

template <class F, class T>
__global__ void column_final_kernel(F f, const float* part, int nchunks, int C, T* dst) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float t = 0.f;
  for (int k = 0; k < nchunks; ++k) t += part[size_t(k) * C + c];
  dst[c] = T(float(dst[c]) + f.factor(c) * t);
}

}  // namespace colsum_detail

// Queues both passes on the default stream, with a stream-ordered scratch of min(N, 64) * C floats.
template <class F, class T>
void column_sums_accumulate(const F& f, int N, int C, T* dst) {
  using namespace colsum_detail;
  if (N <= 0 || C <= 0) return;
  const int nchunks = std::min(N, kMaxChunks);
  const int rows_per_chunk = (N + nchunks - 1) / nchunks;
  float* part = nullptr;
  NG_CUDA(cudaMallocAsync(reinterpret_cast<void**>(&part), size_t(nchunks) * C * sizeof(float), 0));
  const dim3 grid((C + kColTile - 1) / kColTile, nchunks);
  const dim3 block(kColTile, kRowLanes);
  column_partial_kernel<F><<<grid, block>>>(f, N, C, rows_per_chunk, part);
  NG_CUDA_LAUNCHED();
  column_final_kernel<F, T><<<(C + 255) / 256, 256>>>(f, part, nchunks, C, dst);
  NG_CUDA_LAUNCHED();
  NG_CUDA(cudaFreeAsync(part, 0));
}

}  // namespace ng::cuda
