// LayerNorm / RMSNorm / L2 / DyT kernels (ops/norm.hpp); the math mirrors backend/cpu/norm.cpp line by line.
// Groups: the statistics of row n, group j cover columns [j*G, (j+1)*G) (G = C without groups).
// Row-major, that is the contiguous segment s = n * (C/G) + j of G values starting at s * G, and
// mean/rstd[s] is its statistic; so the row kernels run one block per segment.
// bf16 storage: values are read into fp32 (to_float) and each output rounded once (from_float);
// statistics (stat_t) and parameter gradients (grad_t) are fp32, every sum is an fp32 sum.
#include <algorithm>
#include <type_traits>

#include "backend/cuda/check.cuh"
#include "backend/cuda/colsum.cuh"
#include "backend/cuda/convert.cuh"
#include "backend/cuda/norm.hpp"
#include "backend/cuda/reduce.cuh"

namespace ng::cuda {
namespace {

constexpr int kRowThreads = 256;  // at most, per segment; a whole number of warps (block_sum needs it)
constexpr int kColTile = 32;      // gradient columns per block: one warp reads 128 contiguous bytes
constexpr int kRowLanes = 8;      // rows read side by side per gradient block
constexpr int kMaxChunks = 64;    // row chunks of the first gradient pass (depends on N only)

int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Threads per segment: a function of G only (so are the reduction trees, hence the bits).
int segment_threads(int G) { return std::min(kRowThreads, ceil_div(G, 32) * 32); }

// Divisor of the sum of squares: the group size (mean square), or 1 under l2 (plain sum).
__device__ inline float stat_divisor(NormFunction fn, int G) { return fn == NormFunction::L2 ? 1.f : float(G); }

template <class T>
__global__ void norm_forward_kernel(NormForwardArgs<T> a, int G) {
  __shared__ float sh[32];
  const int seg = blockIdx.x;
  const int c0 = (seg % (a.C / G)) * G;  // the segment's first column (gain/bias index)
  const bool layernorm = a.fn == NormFunction::LayerNorm;  // block-uniform
  const T* x = a.inp + size_t(seg) * G;
  T* out = a.out + size_t(seg) * G;
  float m = 0.f;
  if (layernorm) {
    float s = 0.f;
    for (int c = threadIdx.x; c < G; c += blockDim.x) s += to_float(x[c]);
    m = block_sum(s, sh) / G;
  }
  // Two passes (mean, then centred squares) as on the CPU: no cancellation from E[x^2] - m^2.
  float v = 0.f;
  for (int c = threadIdx.x; c < G; c += blockDim.x) {
    const float d = to_float(x[c]) - m;
    v += d * d;
  }
  const float rstd = 1.f / sqrtf(block_sum(v, sh) / stat_divisor(a.fn, G) + a.eps);
  const float scale = float(a.scale);
  // Each thread reads and writes only its own columns, after the barriers above: out may alias inp.
  for (int c = threadIdx.x; c < G; c += blockDim.x) {
    float y = (to_float(x[c]) - m) * rstd * (a.weight ? to_float(a.weight[c0 + c]) : 1.f);
    if (layernorm && a.bias) y += to_float(a.bias[c0 + c]);
    out[c] = from_float<T>(scale * y);
  }
  if (threadIdx.x == 0) {
    a.mean[seg] = stat_t<T>(m);
    a.rstd[seg] = stat_t<T>(rstd);
  }
}

// dx = rstd * (dn - mean(dn) - xhat * mean(dn * xhat)), dn = dout * scale * g (mean(dn) := 0 for
// rms and l2; under l2 the "means" are sums: rstd = (sum x^2 + eps)^-1/2).
template <class T>
__global__ void norm_backward_dinp_kernel(NormBackwardArgs<T> a, int G) {
  __shared__ float sh[32];
  const int seg = blockIdx.x;
  const int c0 = (seg % (a.C / G)) * G;
  const bool layernorm = a.fn == NormFunction::LayerNorm;
  const T* x = a.inp + size_t(seg) * G;
  const T* dy = a.dout + size_t(seg) * G;
  T* dx = a.dinp + size_t(seg) * G;
  // Under rmsnorm and l2 the mean is 0 by contract; do not trust the buffer's contents.
  const float m = layernorm ? float(a.mean[seg]) : 0.f;
  const float s = float(a.rstd[seg]), scale = float(a.scale);
  float sum_dn = 0.f, sum_dn_xhat = 0.f;
  for (int c = threadIdx.x; c < G; c += blockDim.x) {
    const float dn = to_float(dy[c]) * scale * (a.weight ? to_float(a.weight[c0 + c]) : 1.f);
    sum_dn += dn;
    sum_dn_xhat += dn * (to_float(x[c]) - m) * s;
  }
  const float mean_dn = layernorm ? block_sum(sum_dn, sh) / G : 0.f;
  const float mean_dn_xhat = block_sum(sum_dn_xhat, sh) / stat_divisor(a.fn, G);
  for (int c = threadIdx.x; c < G; c += blockDim.x) {
    const float xhat = (to_float(x[c]) - m) * s;
    const float dn = to_float(dy[c]) * scale * (a.weight ? to_float(a.weight[c0 + c]) : 1.f);
    const float g = s * (dn - mean_dn - xhat * mean_dn_xhat);
    dx[c] = from_float<T>(a.accumulate ? to_float(dx[c]) + g : g);
  }
}

// Gradient pass 1: block (tile, chunk) sums rows [chunk * rows_per_chunk, ...) of kColTile columns.
// Thread (tx, ty) takes rows ty, ty + kRowLanes, ... in order; ty == 0 then adds the lanes in order.
// part_w / part_b null: that gradient is not wanted.
template <class T>
__global__ void norm_param_partial_kernel(NormBackwardArgs<T> a, int G, int rows_per_chunk, float* part_w,
                                          float* part_b) {
  __shared__ float sw[kRowLanes][kColTile];
  __shared__ float sb[kRowLanes][kColTile];
  const int c = blockIdx.x * kColTile + threadIdx.x;
  const int chunk = blockIdx.y;
  const int r0 = chunk * rows_per_chunk;
  const int r1 = min(a.N, r0 + rows_per_chunk);
  const bool layernorm = a.fn == NormFunction::LayerNorm;
  const int groups = a.C / G;
  const float scale = float(a.scale);
  float gw = 0.f, gb = 0.f;
  if (c < a.C) {
    for (int n = r0 + threadIdx.y; n < r1; n += kRowLanes) {
      const size_t i = size_t(n) * a.C + c;
      const size_t seg = size_t(n) * groups + c / G;
      const float m = layernorm ? float(a.mean[seg]) : 0.f;
      const float dys = to_float(a.dout[i]) * scale;
      gw += dys * (to_float(a.inp[i]) - m) * float(a.rstd[seg]);
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
    if (part_w) part_w[size_t(chunk) * a.C + c] = tw;
    if (part_b) part_b[size_t(chunk) * a.C + c] = tb;
  }
}

// Gradient pass 2: dst[c] += sum of the chunk partials in chunk order (accumulate, per the contract).
// G = grad_t<T>: fp32 for float and bf16 storage.
template <class G>
__global__ void norm_param_final_kernel(const float* part, int nchunks, int C, G* dst) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float t = 0.f;
  for (int k = 0; k < nchunks; ++k) t += part[size_t(k) * C + c];
  dst[c] = G(float(dst[c]) + t);
}

// The statistics' group size G (C when group is 0); refuses what the kernels cannot do.
int group_size(int C, int group) {
  if (group < 0 || (group > 0 && C % group != 0))
    throw_internal(__FILE__, __LINE__, "norm: group must be 0 or divide C");
  return group > 0 ? group : C;
}

// ---- DyT: out = scale * (g * tanh(alpha x) + b) ------------------------------------------------
// No statistics and nothing across a row: every kernel is a grid-stride loop over the N*C values
// (so `group` is ignored, as on the CPU). Math in fp32 (double for a double T; fp32 for bf16). A null weight is
// gain 1 and a null bias 0, as for the other norms; a null mean/rstd is simply not written.

template <class T>
struct DytAcc {
  using type = float;
};
template <>
struct DytAcc<double> {
  using type = double;
};
template <class T>
using dyt_acc = typename DytAcc<T>::type;

template <class A>
__device__ inline A dyt_tanh(A v) {
  if constexpr (std::is_same_v<A, double>) return tanh(v);
  else return tanhf(v);
}

constexpr int kDytThreads = 256;  // a whole number of warps (block_sum needs it)
// At most: about a full H100 of resident threads; also the dalpha partials, added in order by one thread.
constexpr int kDytBlocks = 1024;

// Blocks of the backward kernel: a function of N*C only (so are the dalpha partials, hence the bits).
unsigned dyt_blocks(size_t n) {
  return unsigned(std::min<size_t>(kDytBlocks, (n + kDytThreads - 1) / kDytThreads));
}

// out may alias inp: each thread reads its elements before writing them. mean/rstd get 0/1 for
// the N rows, as on the CPU.
template <class T>
__global__ void dyt_forward_kernel(NormForwardArgs<T> a, size_t n) {
  using A = dyt_acc<T>;
  const A alpha = convert<A>(*a.alpha), scale = A(a.scale);
  const size_t first = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  for (size_t i = first; i < n; i += stride) {
    const int c = int(i % size_t(a.C));
    const A g = a.weight ? convert<A>(a.weight[c]) : A(1);
    const A b = a.bias ? convert<A>(a.bias[c]) : A(0);
    a.out[i] = convert<T>(scale * (g * dyt_tanh(alpha * convert<A>(a.inp[i])) + b));
  }
  for (size_t r = first; r < size_t(a.N); r += stride) {
    if (a.mean) a.mean[r] = stat_t<T>(0);
    if (a.rstd) a.rstd[r] = stat_t<T>(1);
  }
}

// With th = tanh(alpha x) and u = dout * scale:  dx = u g alpha (1 - th^2), into dinp as
// `accumulate` says; and, when part is not null, this block's share of sum u g x (1 - th^2)
// (its threads' elements in stride order, then block_sum's fixed tree) into part[blockIdx.x].
template <class T>
__global__ void dyt_backward_kernel(NormBackwardArgs<T> a, size_t n, dyt_acc<T>* part) {
  using A = dyt_acc<T>;
  __shared__ A sh[32];
  const A alpha = convert<A>(*a.alpha), scale = A(a.scale);
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  A acc = A(0);
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int c = int(i % size_t(a.C));
    const A x = convert<A>(a.inp[i]), th = dyt_tanh(alpha * x), u = convert<A>(a.dout[i]) * scale;
    const A g = a.weight ? convert<A>(a.weight[c]) : A(1);
    const A d = u * g * alpha * (A(1) - th * th);
    acc += u * g * x * (A(1) - th * th);
    a.dinp[i] = convert<T>(a.accumulate ? convert<A>(a.dinp[i]) + d : d);
  }
  if (part) {  // kernel-uniform: every thread reaches block_sum or none does
    const A t = block_sum(acc, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = t;
  }
}

// dalpha (grad_t) += the block partials, added in block order by a single thread.
template <class T>
__global__ void dyt_dalpha_final_kernel(const dyt_acc<T>* part, int nparts, grad_t<T>* dalpha) {
  using A = dyt_acc<T>;
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  A t = A(0);
  for (int k = 0; k < nparts; ++k) t += part[k];
  *dalpha = grad_t<T>(A(*dalpha) + t);
}

// Gain and bias gradients through colsum.cuh: dg[c] += sum_n u th, db[c] += sum_n u.
template <class T>
struct DytGainTerm {
  NormBackwardArgs<T> p;
  __device__ float operator()(int n, int c) const {
    const size_t i = size_t(n) * p.C + c;
    const float u = to_float(p.dout[i]) * float(p.scale);
    return u * tanhf(to_float(*p.alpha) * to_float(p.inp[i]));
  }
  __device__ float factor(int) const { return 1.f; }
};

template <class T>
struct DytBiasTerm {
  NormBackwardArgs<T> p;
  __device__ float operator()(int n, int c) const { return to_float(p.dout[size_t(n) * p.C + c]) * float(p.scale); }
  __device__ float factor(int) const { return 1.f; }
};

void require_alpha(const void* alpha) {
  if (!alpha) throw_internal(__FILE__, __LINE__, "norm: dyt needs its alpha (a device scalar)");
}

template <class T>
void dyt_forward(const NormForwardArgs<T>& a) {
  require_alpha(a.alpha);
  if (a.N <= 0 || a.C <= 0) return;
  const size_t n = size_t(a.N) * size_t(a.C);
  dyt_forward_kernel<T><<<grid_for(n, kDytThreads), kDytThreads>>>(a, n);
  NG_CUDA_LAUNCHED();
}

// The parameter sums run first, so dinp may alias dout (or inp).
template <class T>
void dyt_backward(const NormBackwardArgs<T>& a) {
  require_alpha(a.alpha);
  if (a.N <= 0 || a.C <= 0) return;
  if (a.weight && a.dweight) column_sums_accumulate(DytGainTerm<T>{a}, a.N, a.C, a.dweight);
  if (a.dbias) column_sums_accumulate(DytBiasTerm<T>{a}, a.N, a.C, a.dbias);
  using A = dyt_acc<T>;
  const size_t n = size_t(a.N) * size_t(a.C);
  const unsigned blocks = dyt_blocks(n);
  A* part = nullptr;
  if (a.dalpha) NG_CUDA(cudaMallocAsync(reinterpret_cast<void**>(&part), blocks * sizeof(A), 0));
  dyt_backward_kernel<T><<<blocks, kDytThreads>>>(a, n, part);
  NG_CUDA_LAUNCHED();
  if (a.dalpha) {
    dyt_dalpha_final_kernel<T><<<1, 1>>>(part, int(blocks), a.dalpha);
    NG_CUDA_LAUNCHED();
    NG_CUDA(cudaFreeAsync(part, 0));
  }
}

}  // namespace

template <class T>
void norm_forward(const NormForwardArgs<T>& a) {
  if (a.fn == NormFunction::DyT) return dyt_forward(a);  // no statistics, so group is moot
  const int G = group_size(a.C, a.group);
  if (a.N <= 0 || a.C <= 0) return;
  const unsigned segments = unsigned(size_t(a.N) * (a.C / G));
  norm_forward_kernel<T><<<segments, segment_threads(G)>>>(a, G);
  NG_CUDA_LAUNCHED();
}

template <class T>
void norm_backward(const NormBackwardArgs<T>& a) {
  if (a.fn == NormFunction::DyT) return dyt_backward(a);
  const int G = group_size(a.C, a.group);
  if (a.N <= 0 || a.C <= 0) return;
  const unsigned segments = unsigned(size_t(a.N) * (a.C / G));
  norm_backward_dinp_kernel<T><<<segments, segment_threads(G)>>>(a, G);
  NG_CUDA_LAUNCHED();

  const bool want_w = a.weight != nullptr && a.dweight != nullptr;  // null weight: gain 1, no gradient
  const bool want_bias = a.fn == NormFunction::LayerNorm && a.dbias != nullptr;
  if (!want_w && !want_bias) return;
  // The partition depends on N alone (never on the device), which keeps the sums reproducible.
  const int nchunks = std::min(a.N, kMaxChunks);
  const int rows_per_chunk = ceil_div(a.N, nchunks);  // trailing chunks may be empty: they write 0
  const size_t part_elems = size_t(nchunks) * a.C;
  float* part = nullptr;
  // Stream-ordered scratch: no device-wide sync, unlike cudaMalloc/cudaFree.
  NG_CUDA(cudaMallocAsync(reinterpret_cast<void**>(&part), part_elems * (int(want_w) + int(want_bias)) * sizeof(float),
                          0));
  float* part_w = want_w ? part : nullptr;
  float* part_b = want_bias ? part + (want_w ? part_elems : 0) : nullptr;
  const dim3 grid(ceil_div(a.C, kColTile), nchunks);
  const dim3 block(kColTile, kRowLanes);
  norm_param_partial_kernel<T><<<grid, block>>>(a, G, rows_per_chunk, part_w, part_b);
  NG_CUDA_LAUNCHED();
  if (want_w) {
    norm_param_final_kernel<grad_t<T>><<<ceil_div(a.C, 256), 256>>>(part_w, nchunks, a.C, a.dweight);
    NG_CUDA_LAUNCHED();
  }
  if (want_bias) {
    norm_param_final_kernel<grad_t<T>><<<ceil_div(a.C, 256), 256>>>(part_b, nchunks, a.C, a.dbias);
    NG_CUDA_LAUNCHED();
  }
  NG_CUDA(cudaFreeAsync(part, 0));
}

template void norm_forward<float>(const NormForwardArgs<float>&);
template void norm_backward<float>(const NormBackwardArgs<float>&);
template void norm_forward<bf16>(const NormForwardArgs<bf16>&);
template void norm_backward<bf16>(const NormBackwardArgs<bf16>&);

}  // namespace ng::cuda
