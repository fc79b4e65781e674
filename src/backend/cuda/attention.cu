// Causal attention kernels (ops/attention.hpp). Every reduction has a fixed order (serial loops
// per thread, then a fixed shuffle tree and a fixed cross-warp order), and every output element is
// written by exactly one thread, so results are bitwise reproducible without atomics.
// Storage T (float or bf16) is read into fp32; the probabilities (att) and the pre-softmax
// gradients (scratch) are fp32 whatever T is (stat_t<T>), and out/dqkv are rounded once.
#include <cmath>

#include "backend/cuda/attention.hpp"
#include "backend/cuda/check.cuh"
#include "backend/cuda/convert.cuh"
#include "backend/cuda/reduce.cuh"

namespace ng::cuda {
namespace {

// Row kernels: one block per (b, h, t). 64 threads cover the common head size (hs = 64) in the
// output loop and stride over the up-to-T scores; a multiple of 32 (the block reductions need it).
constexpr int kRowThreads = 64;
constexpr int kGatherThreads = 256;
constexpr int kMaxWarps = 32;

// Decodes blockIdx.x = (b*NH + h)*T + t.
struct RowIdx {
  int b, h, t;
  size_t row;  // index of the att row: (b*NH + h)*T + t
};

__device__ RowIdx row_index(int Tn, int NH) {
  RowIdx r;
  r.row = blockIdx.x;
  r.t = int(r.row % Tn);
  const int bh = int(r.row / Tn);
  r.h = bh % NH;
  r.b = bh / NH;
  return r;
}

template <class T>
__global__ void attention_forward_kernel(T* out, float* att, const T* qkv, int Tn, int C, int NH, float scale) {
  __shared__ float sh[kMaxWarps];
  const RowIdx ri = row_index(Tn, NH);
  const int t = ri.t, hs = C / NH, C3 = 3 * C;
  const T* base = qkv + size_t(ri.b) * Tn * C3;
  const T* q = base + size_t(t) * C3 + ri.h * hs;
  float* arow = att + ri.row * Tn;

  // Scores s <= t; each thread keeps the s it wrote, so the later passes over its own s need no
  // barrier (the block reductions order the rest).
  float lmax = -INFINITY;
  for (int s = threadIdx.x; s <= t; s += blockDim.x) {
    const T* k = base + size_t(s) * C3 + C + ri.h * hs;
    float dot = 0;
    for (int i = 0; i < hs; ++i) dot += to_float(q[i]) * to_float(k[i]);
    const float pre = dot * scale;
    arow[s] = pre;
    lmax = fmaxf(lmax, pre);
  }
  const float m = block_max(lmax, sh);  // finite: s = 0 always exists
  float lsum = 0;
  for (int s = threadIdx.x; s <= t; s += blockDim.x) {
    const float e = expf(arow[s] - m);
    arow[s] = e;
    lsum += e;
  }
  const float inv = 1.0f / block_sum(lsum, sh);
  for (int s = threadIdx.x; s < Tn; s += blockDim.x) arow[s] = s <= t ? arow[s] * inv : 0.0f;
  __syncthreads();  // the output loop reads probabilities written by other threads

  T* o = out + (size_t(ri.b) * Tn + t) * C + ri.h * hs;
  for (int i = threadIdx.x; i < hs; i += blockDim.x) {
    float acc = 0;
    for (int s = 0; s <= t; ++s) acc += arow[s] * to_float(base[size_t(s) * C3 + 2 * C + ri.h * hs + i]);
    o[i] = from_float<T>(acc);
  }
}

// Per row: datt[s] = dout[t].v[s], then the softmax backward
//   dpre[t,s] = att[t,s] (datt[t,s] - sum_s' att[t,s'] datt[t,s']) * scale,  0 for s > t.
template <class T>
__global__ void attention_dpre_kernel(float* dpre, const T* dout, const T* qkv, const float* att, int Tn, int C,
                                      int NH, float scale) {
  __shared__ float sh[kMaxWarps];
  const RowIdx ri = row_index(Tn, NH);
  const int t = ri.t, hs = C / NH, C3 = 3 * C;
  const T* base = qkv + size_t(ri.b) * Tn * C3;
  const T* dO = dout + (size_t(ri.b) * Tn + t) * C + ri.h * hs;
  const float* arow = att + ri.row * Tn;
  float* drow = dpre + ri.row * Tn;

  float local = 0;
  for (int s = threadIdx.x; s <= t; s += blockDim.x) {
    const T* v = base + size_t(s) * C3 + 2 * C + ri.h * hs;
    float d = 0;
    for (int i = 0; i < hs; ++i) d += to_float(dO[i]) * to_float(v[i]);
    drow[s] = d;  // datt, overwritten below by the same thread
    local += arow[s] * d;
  }
  const float dot = block_sum(local, sh);
  for (int s = threadIdx.x; s < Tn; s += blockDim.x) drow[s] = s <= t ? arow[s] * (drow[s] - dot) * scale : 0.0f;
}

// One thread per element of dqkv; each sums over the other time index in increasing order:
//   dq[t] = sum_{s<=t} dpre[t,s] k[s]     dk[s] = sum_{t>=s} dpre[t,s] q[t]
//   dv[s] = sum_{t>=s} att[t,s] dout[t]
// Gathering instead of scattering is what makes atomics unnecessary.
template <class T>
__global__ void attention_gather_kernel(T* dqkv, const float* dpre, const float* att, const T* dout, const T* qkv,
                                        int B, int Tn, int C, int NH) {
  const int hs = C / NH, C3 = 3 * C;
  const size_t total = size_t(B) * Tn * C3;
  for (size_t idx = size_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += size_t(gridDim.x) * blockDim.x) {
    const int b = int(idx / (size_t(Tn) * C3));
    const size_t rem = idx % (size_t(Tn) * C3);
    const int u = int(rem / C3);  // this element's time index
    const int col = int(rem % C3);
    const int part = col / C, c = col % C, h = c / hs;
    const T* base = qkv + size_t(b) * Tn * C3;
    const size_t bh_rows = (size_t(b) * NH + h) * Tn;  // first att/dpre row of (b, h)
    float acc = 0;
    if (part == 0) {
      const float* drow = dpre + (bh_rows + u) * Tn;
      for (int s = 0; s <= u; ++s) acc += drow[s] * to_float(base[size_t(s) * C3 + C + c]);
    } else if (part == 1) {
      for (int t = u; t < Tn; ++t) acc += dpre[(bh_rows + t) * Tn + u] * to_float(base[size_t(t) * C3 + c]);
    } else {
      const T* dO = dout + size_t(b) * Tn * C;
      for (int t = u; t < Tn; ++t) acc += att[(bh_rows + t) * Tn + u] * to_float(dO[size_t(t) * C + c]);
    }
    dqkv[idx] = from_float<T>(acc);
  }
}

// The contract's score scale: 1/sqrt(hs) when 0 (rounded as the CPU rounds it: in float).
float score_scale(double scale, int C, int NH) {
  return scale != 0 ? float(scale) : 1.0f / std::sqrt(float(C / NH));
}

int gather_blocks(size_t total) {
  const size_t want = (total + kGatherThreads - 1) / kGatherThreads;
  return int(want < 65535 ? want : 65535);  // the grid-stride loop covers the rest
}

}  // namespace

template <class T>
void attention_forward(const AttentionForwardArgs<T>& a) {
  const size_t rows = size_t(a.B) * a.NH * a.T_;
  if (rows == 0 || a.C == 0) return;
  attention_forward_kernel<T><<<unsigned(rows), kRowThreads>>>(a.out, a.att, a.qkv, a.T_, a.C, a.NH,
                                                               score_scale(a.scale, a.C, a.NH));
  NG_CUDA_LAUNCHED();
}

template <class T>
void attention_backward(const AttentionBackwardArgs<T>& a) {
  const size_t rows = size_t(a.B) * a.NH * a.T_;
  if (rows == 0 || a.C == 0) return;
  float* dpre = a.scratch;
  const float* att = a.att;
  attention_dpre_kernel<T><<<unsigned(rows), kRowThreads>>>(dpre, a.dout, a.qkv, att, a.T_, a.C, a.NH,
                                                            score_scale(a.scale, a.C, a.NH));
  NG_CUDA_LAUNCHED();
  const size_t total = size_t(a.B) * a.T_ * 3 * a.C;
  attention_gather_kernel<T><<<gather_blocks(total), kGatherThreads>>>(a.dqkv, dpre, att, a.dout, a.qkv, a.B, a.T_,
                                                                       a.C, a.NH);
  NG_CUDA_LAUNCHED();
}

template void attention_forward<float>(const AttentionForwardArgs<float>&);
template void attention_backward<float>(const AttentionBackwardArgs<float>&);
template void attention_forward<bf16>(const AttentionForwardArgs<bf16>&);
template void attention_backward<bf16>(const AttentionBackwardArgs<bf16>&);

}  // namespace ng::cuda
