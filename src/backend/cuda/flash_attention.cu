// Flash-style causal attention (flash_attention.hpp). Tiles of kTile = 32 rows: one key (or, in
// the dk/dv kernel, one query) per lane, so a score tile is a warp's registers and its row
// reductions are warp butterflies. A block has kWarps = 8 warps; warp w owns the tile rows
// w, w + 8, w + 16, w + 24 (interleaved so the causal diagonal tile is shared out evenly) and keeps
// their accumulators in registers, lane j holding head columns j, j + 32, j + 64, j + 96.
//
// Shared memory per block: the block's own tile (read by broadcast, stride hs) and the streamed
// tiles (read one row per lane, stride hs|1: an odd stride keeps the 32 lanes on 32 banks).
// Rows past T are loaded as zeros so a masked product is 0 * finite, never 0 * garbage.
//
// Determinism: each output element is accumulated by one thread over the streamed tiles in
// increasing order and, within a tile, over rows in increasing order; warp sums and maxima are
// xor butterflies, which give every lane the same bits. No atomics anywhere.
//
// Precision: the kernels compute in A = acc_t<T> (double for double, fp32 for float and bf16); the
// tiles are converted to A as they are loaded into shared memory, lse and delta are A, and each
// output element is rounded to T once, on its store.
#include <cmath>
#include <cstdint>
#include <string>

#include "backend/cuda/check.cuh"
#include "backend/cuda/convert.cuh"
#include "backend/cuda/flash_attention.hpp"

namespace ng::cuda {
namespace {

constexpr int kTile = 32;                              // rows per tile = lanes per warp
constexpr int kWarps = 8;                              // warps per block
constexpr int kThreads = kWarps * 32;                  // threads per block
constexpr int kRows = kTile / kWarps;                  // tile rows per warp
constexpr int kChunks = kFlashMaxHeadSize / 32;        // head columns per lane
constexpr unsigned kFull = 0xffffffffu;
constexpr size_t kDefaultSmem = 48 * 1024;             // beyond this a kernel must opt in

__device__ inline float flash_exp(float x) { return expf(x); }
__device__ inline double flash_exp(double x) { return exp(x); }
__device__ inline float flash_log(float x) { return logf(x); }
__device__ inline double flash_log(double x) { return log(x); }

template <class T>
__device__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

template <class T>
__device__ T warp_max(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const T w = __shfl_xor_sync(kFull, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// The stride of a streamed tile: odd, so row `lane` of 32 lanes falls on 32 distinct banks.
__host__ __device__ inline int padded(int hs) { return hs | 1; }

// Copies rows row0..row0+kTile-1 (columns 0..hs-1) of a strided matrix into shared memory with
// row stride ld; rows at or past Tn become zeros. The whole block calls it.
template <class A, class T>
__device__ void load_tile(A* dst, int ld, const T* src, size_t src_stride, int row0, int Tn, int hs) {
  for (int idx = threadIdx.x; idx < kTile * hs; idx += blockDim.x) {
    const int r = idx / hs, i = idx % hs, row = row0 + r;
    dst[r * ld + i] = row < Tn ? convert<A>(src[size_t(row) * src_stride + i]) : A(0);
  }
}

template <class A>
__device__ A* dynamic_smem() {
  extern __shared__ __align__(16) unsigned char flash_smem[];
  return reinterpret_cast<A*>(flash_smem);
}

// Which (b, h) and which tile a block handles: blockIdx.x = bh * n_tiles + i.
struct BlockIdx {
  int b, h, tile;
  size_t bh;
};

__device__ BlockIdx block_index(int NH, int n_tiles, bool reversed) {
  BlockIdx r;
  r.bh = blockIdx.x / unsigned(n_tiles);
  const int i = int(blockIdx.x % unsigned(n_tiles));
  r.tile = reversed ? n_tiles - 1 - i : i;
  r.b = int(r.bh / NH);
  r.h = int(r.bh % NH);
  return r;
}

// ---- forward ---------------------------------------------------------------------------------
// One block per (b, h, query tile), the last tiles (most key tiles) first. For each key tile up
// to the diagonal: lane j scores key k0 + j against each of the warp's rows, the row maximum and
// sum are updated online (rescaling the running output), and the probabilities reach every lane
// by shuffles for the P.V product. Shared: Q (kTile x hs), K (kTile x ld), V (kTile x hs).
template <class T, class A = acc_t<T>>
__global__ void __launch_bounds__(kThreads)
    flash_forward_kernel(T* out, A* lse, const T* qkv, int Tn, int C, int NH, int n_tiles, A scale) {
  const BlockIdx bi = block_index(NH, n_tiles, true);
  const int hs = C / NH, C3 = 3 * C, ld = padded(hs);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  A* sQ = dynamic_smem<A>();
  A* sK = sQ + kTile * hs;
  A* sV = sK + kTile * ld;
  const T* base = qkv + size_t(bi.b) * Tn * C3 + bi.h * hs;
  const int q0 = bi.tile * kTile;
  load_tile(sQ, hs, base, C3, q0, Tn, hs);

  A m[kRows], l[kRows], acc[kRows][kChunks];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    m[r] = A(-INFINITY);
    l[r] = 0;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) acc[r][c] = 0;
  }

  for (int kt = 0; kt <= bi.tile; ++kt) {
    const int k0 = kt * kTile, nk = min(kTile, Tn - k0);
    __syncthreads();  // the previous tile's readers are done
    load_tile(sK, ld, base + C, C3, k0, Tn, hs);
    load_tile(sV, hs, base + 2 * C, C3, k0, Tn, hs);
    __syncthreads();

    A dot[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) dot[r] = 0;
    for (int i = 0; i < hs; ++i) {
      const A kv = sK[lane * ld + i];
#pragma unroll
      for (int r = 0; r < kRows; ++r) dot[r] += sQ[(warp + kWarps * r) * hs + i] * kv;
    }

    const int s = k0 + lane;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int t = q0 + warp + kWarps * r;
      if (t >= Tn) continue;  // warp-uniform
      const bool valid = s <= t;
      const A score = valid ? dot[r] * scale : A(-INFINITY);
      const A tile_max = warp_max(score);
      if (tile_max == A(-INFINITY)) continue;  // uniform: no key of this tile is visible to t
      const A m_new = m[r] > tile_max ? m[r] : tile_max;
      const A corr = flash_exp(m[r] - m_new);  // exp(-inf) = 0 on the first visible tile
      const A p = valid ? flash_exp(score - m_new) : A(0);
      l[r] = l[r] * corr + warp_sum(p);
      m[r] = m_new;
#pragma unroll
      for (int c = 0; c < kChunks; ++c) acc[r][c] *= corr;
      const int jn = min(nk, t - k0 + 1);  // keys past t have p = 0
      for (int j = 0; j < jn; ++j) {
        const A pj = __shfl_sync(kFull, p, j);
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
          const int col = lane + 32 * c;
          if (col < hs) acc[r][c] += pj * sV[j * hs + col];
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int t = q0 + warp + kWarps * r;
    if (t >= Tn) continue;
    const A inv = A(1) / l[r];  // l >= 1: the maximum's own term
    T* o = out + (size_t(bi.b) * Tn + t) * C + bi.h * hs;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int col = lane + 32 * c;
      if (col < hs) o[col] = convert<T>(acc[r][c] * inv);
    }
    if (lane == 0) lse[bi.bh * Tn + t] = m[r] + flash_log(l[r]);
  }
}

// ---- backward --------------------------------------------------------------------------------
// delta[b,h,t] = dout[t].out[t] over head h: one warp per (b, h, t), in delta's order.
template <class T, class A = acc_t<T>>
__global__ void flash_delta_kernel(A* delta, const T* dout, const T* out, int B, int Tn, int C, int NH) {
  const size_t row = (size_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (row >= size_t(B) * NH * Tn) return;  // whole warps (blockDim is a multiple of 32)
  const int lane = threadIdx.x & 31, hs = C / NH, t = int(row % Tn);
  const size_t bh = row / Tn;
  const size_t off = (bh / NH * Tn + t) * C + (bh % NH) * hs;
  A v = 0;
  for (int i = lane; i < hs; i += 32) v += convert<A>(dout[off + i]) * convert<A>(out[off + i]);
  v = warp_sum(v);
  if (lane == 0) delta[row] = v;
}

// dk and dv: one block per (b, h, key tile), the first tiles (most query tiles) first. The block
// keeps its keys' K and V (kTile x hs) and streams the query tiles from the diagonal on: Q and dout
// (kTile x ld), lse and delta (kTile). Lane j takes query q0 + j, recomputes P and dS against each
// of the warp's keys, and the columns of dk, dv gather them by shuffles.
template <class T, class A = acc_t<T>>
__global__ void __launch_bounds__(kThreads)
    flash_dkdv_kernel(T* dqkv, const T* dout, const A* lse, const A* delta, const T* qkv, int Tn, int C, int NH,
                      int n_tiles, A scale) {
  const BlockIdx bi = block_index(NH, n_tiles, false);
  const int hs = C / NH, C3 = 3 * C, ld = padded(hs);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  A* sK = dynamic_smem<A>();
  A* sV = sK + kTile * hs;
  A* sQ = sV + kTile * hs;
  A* sdO = sQ + kTile * ld;
  A* sL = sdO + kTile * ld;
  A* sD = sL + kTile;
  const T* base = qkv + size_t(bi.b) * Tn * C3 + bi.h * hs;
  const T* dO = dout + size_t(bi.b) * Tn * C + bi.h * hs;
  const A* L = lse + bi.bh * Tn;
  const A* D = delta + bi.bh * Tn;
  const int s0 = bi.tile * kTile;
  load_tile(sK, hs, base + C, C3, s0, Tn, hs);
  load_tile(sV, hs, base + 2 * C, C3, s0, Tn, hs);

  A dk[kRows][kChunks], dv[kRows][kChunks];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int c = 0; c < kChunks; ++c) dk[r][c] = dv[r][c] = 0;

  for (int qt = bi.tile; qt < n_tiles; ++qt) {
    const int q0 = qt * kTile, nq = min(kTile, Tn - q0);
    __syncthreads();
    load_tile(sQ, ld, base, C3, q0, Tn, hs);
    load_tile(sdO, ld, dO, C, q0, Tn, hs);
    if (threadIdx.x < kTile) {
      const int t = q0 + int(threadIdx.x);
      sL[threadIdx.x] = t < Tn ? L[t] : A(0);
      sD[threadIdx.x] = t < Tn ? D[t] : A(0);
    }
    __syncthreads();

    A qk[kRows], dp[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) qk[r] = dp[r] = 0;
    for (int i = 0; i < hs; ++i) {
      const A q = sQ[lane * ld + i], d = sdO[lane * ld + i];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const int row = warp + kWarps * r;
        qk[r] += q * sK[row * hs + i];
        dp[r] += d * sV[row * hs + i];
      }
    }

    const int t = q0 + lane;
    const A lt = sL[lane], dt = sD[lane];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int s = s0 + warp + kWarps * r;
      if (s >= Tn) continue;  // warp-uniform
      const bool valid = t < Tn && s <= t;
      const A p = valid ? flash_exp(qk[r] * scale - lt) : A(0);
      const A ds = p * (dp[r] - dt);
      const int j0 = s > q0 ? s - q0 : 0;  // queries before s have p = 0
      for (int j = j0; j < nq; ++j) {
        const A pj = __shfl_sync(kFull, p, j), dsj = __shfl_sync(kFull, ds, j);
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
          const int col = lane + 32 * c;
          if (col < hs) {
            dv[r][c] += pj * sdO[j * ld + col];
            dk[r][c] += dsj * sQ[j * ld + col];
          }
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int s = s0 + warp + kWarps * r;
    if (s >= Tn) continue;
    T* g = dqkv + (size_t(bi.b) * Tn + s) * C3 + bi.h * hs;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int col = lane + 32 * c;
      if (col < hs) {
        g[C + col] = convert<T>(dk[r][c] * scale);
        g[2 * C + col] = convert<T>(dv[r][c]);
      }
    }
  }
}

// dq: one block per (b, h, query tile), the last tiles first. The block keeps its queries' Q and
// dout (kTile x hs), with each row's lse and delta in registers, and streams the key tiles up to
// the diagonal: K and V (kTile x ld). Lane j takes key k0 + j.
template <class T, class A = acc_t<T>>
__global__ void __launch_bounds__(kThreads)
    flash_dq_kernel(T* dqkv, const T* dout, const A* lse, const A* delta, const T* qkv, int Tn, int C, int NH,
                    int n_tiles, A scale) {
  const BlockIdx bi = block_index(NH, n_tiles, true);
  const int hs = C / NH, C3 = 3 * C, ld = padded(hs);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  A* sQ = dynamic_smem<A>();
  A* sdO = sQ + kTile * hs;
  A* sK = sdO + kTile * hs;
  A* sV = sK + kTile * ld;
  const T* base = qkv + size_t(bi.b) * Tn * C3 + bi.h * hs;
  const int q0 = bi.tile * kTile;
  load_tile(sQ, hs, base, C3, q0, Tn, hs);
  load_tile(sdO, hs, dout + size_t(bi.b) * Tn * C + bi.h * hs, C, q0, Tn, hs);

  A lt[kRows], dt[kRows], dq[kRows][kChunks];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int t = q0 + warp + kWarps * r;
    lt[r] = t < Tn ? lse[bi.bh * Tn + t] : A(0);
    dt[r] = t < Tn ? delta[bi.bh * Tn + t] : A(0);
#pragma unroll
    for (int c = 0; c < kChunks; ++c) dq[r][c] = 0;
  }

  for (int kt = 0; kt <= bi.tile; ++kt) {
    const int k0 = kt * kTile, nk = min(kTile, Tn - k0);
    __syncthreads();
    load_tile(sK, ld, base + C, C3, k0, Tn, hs);
    load_tile(sV, ld, base + 2 * C, C3, k0, Tn, hs);
    __syncthreads();

    A qk[kRows], dp[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) qk[r] = dp[r] = 0;
    for (int i = 0; i < hs; ++i) {
      const A kv = sK[lane * ld + i], vv = sV[lane * ld + i];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const int row = warp + kWarps * r;
        qk[r] += sQ[row * hs + i] * kv;
        dp[r] += sdO[row * hs + i] * vv;
      }
    }

    const int s = k0 + lane;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int t = q0 + warp + kWarps * r;
      if (t >= Tn) continue;  // warp-uniform
      const bool valid = s <= t;
      const A p = valid ? flash_exp(qk[r] * scale - lt[r]) : A(0);
      const A ds = p * (dp[r] - dt[r]);
      const int jn = min(nk, t - k0 + 1);  // keys past t have ds = 0
      for (int j = 0; j < jn; ++j) {
        const A dsj = __shfl_sync(kFull, ds, j);
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
          const int col = lane + 32 * c;
          if (col < hs) dq[r][c] += dsj * sK[j * ld + col];
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int t = q0 + warp + kWarps * r;
    if (t >= Tn) continue;
    T* g = dqkv + (size_t(bi.b) * Tn + t) * C3 + bi.h * hs;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int col = lane + 32 * c;
      if (col < hs) g[col] = convert<T>(dq[r][c] * scale);
    }
  }
}

// ---- launchers -------------------------------------------------------------------------------

// The contract's score scale, rounded as the CPU rounds it (in A: the fp32 reference's float).
template <class A>
A score_scale(double scale, int hs) {
  return scale != 0 ? A(scale) : A(1) / std::sqrt(A(hs));
}

// Refuses shapes the kernels cannot take; returns the number of query/key tiles.
int check_shape(int B, int Tn, int C, int NH) {
  if (NH <= 0 || C % NH != 0 || C / NH > kFlashMaxHeadSize)
    throw_internal(__FILE__, __LINE__,
                   "flash attention: head size C/NH must divide evenly and be at most " +
                       std::to_string(kFlashMaxHeadSize) + " (C=" + std::to_string(C) +
                       ", NH=" + std::to_string(NH) + ")");
  const int n_tiles = (Tn + kTile - 1) / kTile;
  if (size_t(B) * NH * n_tiles > size_t(INT32_MAX))
    throw_internal(__FILE__, __LINE__, "flash attention: too many blocks for one launch");
  return n_tiles;
}

// Kernels whose dynamic shared memory passes the 48 KiB default must opt in (fp32 and bf16, whose
// tiles are fp32: backward past hs 95, forward at 128; fp64: past hs 47). The largest, dk/dv at
// hs 128 in double, is 129 KiB of sm_90's 227 KiB.
template <class Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  if (bytes > kDefaultSmem)
    NG_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

}  // namespace

template <class T>
void flash_attention_forward(const FlashAttentionForwardArgs<T>& a) {
  if (a.B <= 0 || a.T_ <= 0 || a.C <= 0) return;
  const int n_tiles = check_shape(a.B, a.T_, a.C, a.NH);
  using A = acc_t<T>;
  const int hs = a.C / a.NH;
  const size_t smem = size_t(kTile) * (2 * hs + padded(hs)) * sizeof(A);
  allow_smem(flash_forward_kernel<T>, smem);
  const unsigned blocks = unsigned(size_t(a.B) * a.NH * n_tiles);
  flash_forward_kernel<T><<<blocks, kThreads, smem>>>(a.out, a.lse, a.qkv, a.T_, a.C, a.NH, n_tiles,
                                                       score_scale<A>(a.scale, hs));
  NG_CUDA_LAUNCHED();
}

template <class T>
void flash_attention_backward(const FlashAttentionBackwardArgs<T>& a) {
  if (a.B <= 0 || a.T_ <= 0 || a.C <= 0) return;
  const int n_tiles = check_shape(a.B, a.T_, a.C, a.NH);
  using A = acc_t<T>;
  const int hs = a.C / a.NH;
  const A scale = score_scale<A>(a.scale, hs);
  const unsigned blocks = unsigned(size_t(a.B) * a.NH * n_tiles);

  const size_t rows = size_t(a.B) * a.NH * a.T_;
  const size_t delta_blocks = (rows + kWarps - 1) / kWarps;  // one warp per row
  flash_delta_kernel<T><<<unsigned(delta_blocks), kThreads>>>(a.delta, a.dout, a.out, a.B, a.T_, a.C, a.NH);
  NG_CUDA_LAUNCHED();

  const size_t smem_kv = (size_t(kTile) * (2 * hs + 2 * padded(hs)) + 2 * kTile) * sizeof(A);
  allow_smem(flash_dkdv_kernel<T>, smem_kv);
  flash_dkdv_kernel<T><<<blocks, kThreads, smem_kv>>>(a.dqkv, a.dout, a.lse, a.delta, a.qkv, a.T_, a.C, a.NH,
                                                      n_tiles, scale);
  NG_CUDA_LAUNCHED();

  const size_t smem_q = size_t(kTile) * (2 * hs + 2 * padded(hs)) * sizeof(A);
  allow_smem(flash_dq_kernel<T>, smem_q);
  flash_dq_kernel<T><<<blocks, kThreads, smem_q>>>(a.dqkv, a.dout, a.lse, a.delta, a.qkv, a.T_, a.C, a.NH,
                                                   n_tiles, scale);
  NG_CUDA_LAUNCHED();
}

template void flash_attention_forward<float>(const FlashAttentionForwardArgs<float>&);
template void flash_attention_forward<double>(const FlashAttentionForwardArgs<double>&);
template void flash_attention_backward<float>(const FlashAttentionBackwardArgs<float>&);
template void flash_attention_backward<double>(const FlashAttentionBackwardArgs<double>&);
template void flash_attention_forward<bf16>(const FlashAttentionForwardArgs<bf16>&);
template void flash_attention_backward<bf16>(const FlashAttentionBackwardArgs<bf16>&);

}  // namespace ng::cuda
