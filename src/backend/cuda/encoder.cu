// Token + position embedding (contract: ops/encoder.hpp, interface: encoder.hpp). Storage T (float
// or bf16) is read into fp32, and the sum rounded once; the gradients are grad_t<T> (fp32 under
// bf16) and accumulate in it.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "backend/cuda/check.cuh"
#include "backend/cuda/convert.cuh"
#include "backend/cuda/encoder.hpp"
#include "backend/cuda/reduce.cuh"

namespace ng::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per output element; consecutive threads take consecutive c, so reads of the wte row,
// the wpe row and the write of out are all coalesced.
template <class T>
__global__ void encoder_forward_kernel(T* out, const int32_t* tokens, const T* wte, const T* wpe, int BT, int T_,
                                       int C) {
  const size_t total = size_t(BT) * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const size_t bt = i / C;
    const int c = int(i % C);
    const int t = int(bt % T_);
    const float e = to_float(wte[size_t(tokens[bt]) * C + c]);
    out[i] = from_float<T>(e + (wpe ? to_float(wpe[size_t(t) * C + c]) : 0.0f));  // null wpe: RoPE
  }
}

// dwpe[t, c] += dout[b, t, c] for b = 0, 1, ...: one thread per (t, c) adds the B values in batch
// order onto the old value, the same sequence of fp32 adds as the CPU loop.
template <class T, class G>
__global__ void encoder_backward_wpe_kernel(G* dwpe, const T* dout, int B, int T_, int C) {
  const size_t total = size_t(T_) * C;
  const size_t stride_b = size_t(T_) * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    G acc = dwpe[i];
    for (int b = 0; b < B; ++b) acc += to_float(dout[size_t(b) * stride_b + i]);
    dwpe[i] = acc;
  }
}

// dwte[uniq[u], c] += dout[p, c] for p = pos[start[u]], pos[start[u] + 1], ... (ascending). One thread
// per (unique token, c): every dwte element has exactly one writer, and its adds run in position
// order, as in the CPU loop.
template <class T, class G>
__global__ void encoder_backward_wte_kernel(G* dwte, const T* dout, const int32_t* uniq, const int32_t* start,
                                            const int32_t* pos, int U, int C) {
  const size_t total = size_t(U) * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const int u = int(i / C);
    const int c = int(i % C);
    G* dst = dwte + size_t(uniq[u]) * C + c;
    G acc = *dst;
    for (int k = start[u]; k < start[u + 1]; ++k) acc += to_float(dout[size_t(pos[k]) * C + c]);
    *dst = acc;
  }
}

// Grow-only device scratch for the token grouping (see encoder.hpp: not for concurrent callers).
// Freed never: one small buffer per process, sized by the largest B*T seen.
int32_t* grouping_scratch(size_t n) {
  static int32_t* ptr = nullptr;
  static size_t cap = 0;
  if (n > cap) {
    if (ptr) NG_CUDA(cudaFree(ptr));  // cudaFree waits for kernels still reading the old buffer
    ptr = nullptr;
    NG_CUDA(cudaMalloc(&ptr, n * sizeof(int32_t)));
    cap = n;
  }
  return ptr;
}

}  // namespace

template <class T>
void encoder_forward(const EncoderForwardArgs<T>& a) {
  const int BT = a.B * a.T_;
  if (BT <= 0 || a.C <= 0) return;
  encoder_forward_kernel<<<grid_for(size_t(BT) * a.C, kThreads), kThreads>>>(a.out, a.tokens, a.wte, a.wpe, BT, a.T_, a.C);
  NG_CUDA_LAUNCHED();
}

template <class T>
void encoder_backward(const EncoderBackwardArgs<T>& a) {
  const int BT = a.B * a.T_;
  if (BT <= 0 || a.C <= 0) return;
  if (a.dwpe)
    encoder_backward_wpe_kernel<<<grid_for(size_t(a.T_) * a.C, kThreads), kThreads>>>(a.dwpe, a.dout, a.B, a.T_, a.C);
  NG_CUDA_LAUNCHED();

  // Group positions by token on the host: a stable counting sort by token id keeps each group's
  // positions ascending. The synchronous copy waits for the device (default stream), which is
  // the price of a deterministic dwte without atomics; B*T is small (a few thousand ints).
  std::vector<int32_t> tokens(BT);
  NG_CUDA(cudaMemcpy(tokens.data(), a.tokens, size_t(BT) * sizeof(int32_t), cudaMemcpyDeviceToHost));
  int32_t max_tok = 0;
  for (int32_t tok : tokens) {
    if (tok < 0) throw_internal(__FILE__, __LINE__, "encoder_backward: negative token id");
    if (tok > max_tok) max_tok = tok;
  }
  std::vector<int32_t> count(size_t(max_tok) + 1, 0);
  for (int32_t tok : tokens) ++count[tok];
  // Layout of the uploaded buffer: uniq (U) | start (U + 1) | pos (BT).
  std::vector<int32_t> uniq, start;
  std::vector<int32_t> slot(size_t(max_tok) + 1, -1);  // token -> first free index in pos
  int32_t offset = 0;
  for (int32_t tok = 0; tok <= max_tok; ++tok) {
    if (count[tok] == 0) continue;
    uniq.push_back(tok);
    start.push_back(offset);
    slot[tok] = offset;
    offset += count[tok];
  }
  start.push_back(offset);
  const int U = int(uniq.size());
  std::vector<int32_t> host(size_t(U) + size_t(U) + 1 + size_t(BT));
  std::copy(uniq.begin(), uniq.end(), host.begin());
  std::copy(start.begin(), start.end(), host.begin() + U);
  int32_t* pos = host.data() + 2 * size_t(U) + 1;
  for (int p = 0; p < BT; ++p) pos[slot[tokens[p]]++] = p;  // p ascending: groups stay in order

  int32_t* dev = grouping_scratch(host.size());
  // From pageable memory this returns once the data is staged; the default stream orders it
  // before the kernel below, and before any later call's overwrite of the scratch buffer.
  NG_CUDA(cudaMemcpy(dev, host.data(), host.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
  encoder_backward_wte_kernel<<<grid_for(size_t(U) * a.C, kThreads), kThreads>>>(a.dwte, a.dout, dev, dev + U,
                                                                         dev + 2 * size_t(U) + 1, U, a.C);
  NG_CUDA_LAUNCHED();
}

template void encoder_forward<float>(const EncoderForwardArgs<float>&);
template void encoder_backward<float>(const EncoderBackwardArgs<float>&);
template void encoder_forward<bf16>(const EncoderForwardArgs<bf16>&);
template void encoder_backward<bf16>(const EncoderBackwardArgs<bf16>&);

}  // namespace ng::cuda
