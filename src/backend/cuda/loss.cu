// Softmax cross-entropy kernels (ops/loss.hpp); the math mirrors backend/cpu/loss.cpp. Max, sum and
// the losses (stat_t) in fp32 whatever T is; bf16 logits are read into fp32 and probs/dlogits
// rounded once on their store.
#include <math.h>

#include "backend/cuda/check.cuh"
#include "backend/cuda/convert.cuh"
#include "backend/cuda/loss.hpp"
#include "backend/cuda/reduce.cuh"

namespace ng::cuda {
namespace {

constexpr int kThreads = 512;  // one block per row, looping over columns; a whole number of warps

template <class T>
__global__ void crossentropy_forward_kernel(CrossEntropyForwardArgs<T> a) {
  __shared__ float sh[32];
  const int n = blockIdx.x, V = a.V, Vp = a.Vp;
  const T* logits = a.logits + size_t(n) * Vp;
  T* probs = a.probs + size_t(n) * Vp;
  // probs may alias logits: the target logit is read here, and no thread writes probs before the
  // barriers inside the reductions below, so this read always sees the logit.
  float target_logit = 0.f;
  if (threadIdx.x == 0) target_logit = to_float(logits[a.targets[n]]);
  float mx = -INFINITY;
  for (int v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, to_float(logits[v]));
  mx = block_max(mx, sh);
  float sum = 0.f;
  for (int v = threadIdx.x; v < V; v += blockDim.x) sum += expf(to_float(logits[v]) - mx);
  sum = block_sum(sum, sh);
  const float inv = 1.f / sum;
  // Recompute the exponential rather than store-then-rescale: one write per element, and each
  // thread rewrites only the columns it read, so aliasing is safe.
  for (int v = threadIdx.x; v < Vp; v += blockDim.x)
    probs[v] = from_float<T>(v < V ? expf(to_float(logits[v]) - mx) * inv : 0.f);
  // -log p[target] from the logit, not log(probs): a tiny probability keeps its precision.
  if (threadIdx.x == 0) a.losses[n] = stat_t<T>(-(target_logit - mx - logf(sum)));
}

template <class T>
__global__ void crossentropy_backward_kernel(CrossEntropyBackwardArgs<T> a) {
  const int n = blockIdx.x, V = a.V, Vp = a.Vp;
  const T* probs = a.probs + size_t(n) * Vp;
  T* d = a.dlogits + size_t(n) * Vp;
  const int target = a.targets[n];
  const float dloss = float(a.dloss);
  // Element-wise, each element read and written by one thread: dlogits may alias probs.
  for (int v = threadIdx.x; v < Vp; v += blockDim.x) {
    float g = 0.f;
    if (v < V) {
      g = dloss * to_float(probs[v]);
      if (v == target) g -= dloss;
    }
    d[v] = from_float<T>(g);
  }
}

}  // namespace

template <class T>
void crossentropy_forward(const CrossEntropyForwardArgs<T>& a) {
  if (a.N <= 0) return;
  crossentropy_forward_kernel<T><<<a.N, kThreads>>>(a);
  NG_CUDA_LAUNCHED();
}

template <class T>
void crossentropy_backward(const CrossEntropyBackwardArgs<T>& a) {
  if (a.N <= 0) return;
  crossentropy_backward_kernel<T><<<a.N, kThreads>>>(a);
  NG_CUDA_LAUNCHED();
}

template void crossentropy_forward<float>(const CrossEntropyForwardArgs<float>&);
template void crossentropy_backward<float>(const CrossEntropyBackwardArgs<float>&);
template void crossentropy_forward<bf16>(const CrossEntropyForwardArgs<bf16>&);
template void crossentropy_backward<bf16>(const CrossEntropyBackwardArgs<bf16>&);

}  // namespace ng::cuda
