// AdamW update and sum of squares (contract: ops/optim.hpp, interface: optim.hpp), mirrors of the
// CPU reference (backend/cpu/optim.cpp). bf16: fp32 master weights, moments and gradients; the
// bf16 parameters are written from the master after each update.
#include "backend/cuda/check.cuh"
#include "backend/cuda/convert.cuh"
#include "backend/cuda/optim.hpp"
#include "backend/cuda/reduce.cuh"

namespace ng::cuda {
namespace {

constexpr int kThreads = 256;  // a multiple of 32 (block_sum needs it)
constexpr int kMaxWarps = 32;
// sum_squares' first pass: at most this many blocks, a function of n only (see sum_squares).
constexpr int kMaxPartials = 1024;

// Per-block partial sums and the final sum of sum_squares. Static device storage: no allocation
// per call; launches on the default stream are serialized, so one buffer suffices.
__device__ double g_partials[kMaxPartials];
__device__ double g_sum;

// The rounding-explicit intrinsics: nvcc contracts a * b + c into an FMA by default (--fmad=true),
// which rounds once where the contract rounds twice. These are never contracted and round to
// nearest whatever --fmad, --prec-div and --prec-sqrt say, so the update's bits depend only on its
// inputs. Overloads let one kernel template serve float and double.
__device__ __forceinline__ float mul_rn(float x, float y) { return __fmul_rn(x, y); }
__device__ __forceinline__ float add_rn(float x, float y) { return __fadd_rn(x, y); }
__device__ __forceinline__ float sub_rn(float x, float y) { return __fsub_rn(x, y); }
__device__ __forceinline__ float div_rn(float x, float y) { return __fdiv_rn(x, y); }
__device__ __forceinline__ float sqrt_rn(float x) { return __fsqrt_rn(x); }
__device__ __forceinline__ double mul_rn(double x, double y) { return __dmul_rn(x, y); }
__device__ __forceinline__ double add_rn(double x, double y) { return __dadd_rn(x, y); }
__device__ __forceinline__ double sub_rn(double x, double y) { return __dsub_rn(x, y); }
__device__ __forceinline__ double div_rn(double x, double y) { return __ddiv_rn(x, y); }
__device__ __forceinline__ double sqrt_rn(double x) { return __dsqrt_rn(x); }

// The CPU loop body, operation for operation (same operands, same association), in A = acc_t<T>.
// Mixed precision (T = bf16): the update applies to the fp32 master weight, exactly as the fp32
// kernel applies it to an fp32 parameter, and the stored parameter is its bf16 rounding.
template <class T>
__global__ void adamw_kernel(AdamWArgs<T> a) {
  using A = acc_t<T>;
  const A one_b1 = sub_rn(A(1), a.beta1), one_b2 = sub_rn(A(1), a.beta2);
  const bool scaled = a.grad_scale != A(1);
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < a.n; i += stride) {
    const A g = scaled ? mul_rn(a.grads[i], a.grad_scale) : a.grads[i];
    const A m = add_rn(mul_rn(a.beta1, a.m[i]), mul_rn(one_b1, g));
    const A v = add_rn(mul_rn(a.beta2, a.v[i]), mul_rn(mul_rn(one_b2, g), g));
    a.m[i] = m;
    a.v[i] = v;
    const A mhat = div_rn(m, a.bc1);
    const A vhat = div_rn(v, a.bc2);
    A p;
    if constexpr (is_mixed_precision<T>) p = a.master[i];
    else p = a.params[i];
    p = sub_rn(p, mul_rn(a.decay, p));
    p = sub_rn(p, div_rn(mul_rn(a.lr, mhat), add_rn(sqrt_rn(vhat), a.eps)));
    if constexpr (is_mixed_precision<T>) {
      a.master[i] = p;
      a.params[i] = convert<T>(p);
    } else {
      a.params[i] = p;
    }
  }
}

// Pass 1: thread t of the grid sums x[t], x[t + grid size], ... in index order (an explicit FMA,
// so the rounding does not depend on --fmad either), then the block adds its threads in
// block_sum's fixed order into g_partials[block].
template <class T>
__global__ void sum_squares_partial_kernel(const T* x, size_t n) {
  __shared__ double sh[kMaxWarps];
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  double s = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += stride) {
    const double xi = double(x[i]);
    s = __fma_rn(xi, xi, s);
  }
  s = block_sum(s, sh);
  if (threadIdx.x == 0) g_partials[blockIdx.x] = s;
}

// Pass 2, one block: thread t sums partials t, t + blockDim, ... in order, then block_sum.
__global__ void sum_squares_final_kernel(int blocks) {
  __shared__ double sh[kMaxWarps];
  double s = 0;
  for (int i = threadIdx.x; i < blocks; i += blockDim.x) s = __dadd_rn(s, g_partials[i]);
  s = block_sum(s, sh);
  if (threadIdx.x == 0) g_sum = s;
}

}  // namespace

template <class T>
void adamw_update(const AdamWArgs<T>& a) {
  if (a.n == 0) return;
  if constexpr (is_mixed_precision<T>) {
    if (!a.master) throw_internal(__FILE__, __LINE__, "adamw_update: mixed precision needs the fp32 master weights");
  }
  adamw_kernel<T><<<grid_for(a.n, kThreads), kThreads>>>(a);
  NG_CUDA_LAUNCHED();
}

template <class T>
double sum_squares(const SumSquaresArgs<T>& a) {
  if (a.n == 0) return 0.0;
  // One block per kThreads elements up to kMaxPartials blocks (262144 threads, enough to keep an
  // H100's memory system busy); past that each thread takes more strided elements.
  const size_t want = (a.n + kThreads - 1) / kThreads;
  const int blocks = want < size_t(kMaxPartials) ? int(want) : kMaxPartials;
  sum_squares_partial_kernel<grad_t<T>><<<blocks, kThreads>>>(a.x, a.n);
  NG_CUDA_LAUNCHED();
  sum_squares_final_kernel<<<1, kThreads>>>(blocks);
  NG_CUDA_LAUNCHED();
  // Blocking copy: waits for both kernels (the sync point the interface documents).
  double s = 0;
  NG_CUDA(cudaMemcpyFromSymbol(&s, g_sum, sizeof(double)));
  return s;
}

template void adamw_update<float>(const AdamWArgs<float>&);
template void adamw_update<double>(const AdamWArgs<double>&);
template double sum_squares<float>(const SumSquaresArgs<float>&);
template double sum_squares<double>(const SumSquaresArgs<double>&);
template void adamw_update<bf16>(const AdamWArgs<bf16>&);
template double sum_squares<bf16>(const SumSquaresArgs<bf16>&);

}  // namespace ng::cuda
