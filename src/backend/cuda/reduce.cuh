// Device helpers shared by the CUDA kernels: launch sizes and deterministic block reductions.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace ng::cuda {

// Blocks for a grid-stride loop over n elements; capped, the kernels stride past the cap.
inline unsigned grid_for(size_t n, int threads) {
  size_t b = (n + size_t(threads) - 1) / size_t(threads);
  if (b > (1u << 20)) b = 1u << 20;
  return unsigned(b > 0 ? b : 1);
}

struct SumOp {
  template <class T>
  __device__ T operator()(T x, T y) const { return x + y; }
};
struct MaxOp {
  template <class T>
  __device__ T operator()(T x, T y) const { return x > y ? x : y; }
};

// Reduction over the whole block, the same bits returned to every thread: a fixed butterfly per
// warp, then every thread combines the warp results in warp order (never atomics, so the result
// depends only on blockDim). `sh`: shared scratch of at least 32 elements. blockDim.x must be a
// multiple of 32 and every thread must reach the call (branch only on block-uniform conditions).
// The leading barrier lets back-to-back calls reuse `sh`.
template <class T, class Op>
__device__ T block_reduce(T v, Op op, T identity, T* sh) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
  __syncthreads();
  T r = identity;
  for (int w = 0; w < int(blockDim.x >> 5); ++w) r = op(r, sh[w]);
  return r;
}

template <class T>
__device__ T block_sum(T v, T* sh) {
  return block_reduce(v, SumOp{}, T(0), sh);
}

template <class T>
__device__ T block_max(T v, T* sh) {
  return block_reduce(v, MaxOp{}, T(-INFINITY), sh);
}

}  // namespace ng::cuda
