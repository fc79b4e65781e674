// Linear forward/backward on cuBLAS (contract: ops/matmul.hpp, interface: linear.hpp).
//
// Row-major <-> column-major trick: a row-major (R, K) matrix is, byte for byte, the column-major
// (K, R) matrix, i.e. its transpose. So every row-major product Y = A . B is computed as the
// column-major product Y^T = B^T . A^T with the operands swapped, and no data is ever transposed.
//
// bf16 (mixed precision): cublasGemmEx with bf16 operands and fp32 compute (tensor cores), the
// output in bf16 for out and dinp and in fp32 for dweight (parameter gradients accumulate in fp32,
// grad_t). With beta = 1 the epilogue adds the old C in fp32 and rounds once, so the bias (filled
// into out first) is added in fp32 before the one bf16 rounding, as in the fp32 reference.
#include "backend/cuda/check.cuh"
#include "backend/cuda/convert.cuh"
#include "backend/cuda/linear.hpp"
#include "backend/cuda/reduce.cuh"

namespace ng::cuda {
namespace {

// A handle with the given math mode, created on first use (creation is slow: ~ms) on the device
// current at that moment. It is never destroyed: destroying it from a static destructor can run
// after the CUDA context is gone. The handle's stream stays the default stream (null), like every
// launcher here. Atomics in cuBLAS kernels could make results run-to-run different; they stay off
// (the default, set explicitly).
cublasHandle_t make_handle(cublasMath_t math) {
  cublasHandle_t h = nullptr;
  NG_CUBLAS(cublasCreate(&h));
  NG_CUBLAS(cublasSetMathMode(h, math));
  NG_CUBLAS(cublasSetAtomicsMode(h, CUBLAS_ATOMICS_NOT_ALLOWED));
  return h;
}

// fp32: explicitly full fp32; TF32 would break the fp32 tolerance row against the CPU reference.
cublasHandle_t blas() {
  static cublasHandle_t handle = make_handle(CUBLAS_DEFAULT_MATH);
  return handle;
}

// bf16: tensor cores (used for bf16 operands under the default math mode), and every reduction in
// the fp32 compute type: without DISALLOW_REDUCED_PRECISION_REDUCTION cuBLAS may sum split-K
// partials in the bf16 output type. A handle of its own, so the fp32 path's settings stay as they were.
cublasHandle_t blas_bf16() {
  static cublasHandle_t handle =
      make_handle(cublasMath_t(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION));
  return handle;
}

// cuBLAS rejects a leading dimension of 0 even when the matching extent is 0 (k = 0 is otherwise a
// valid "C = beta C" call), so degenerate shapes keep the contract without special cases.
inline int ld(int x) { return x > 0 ? x : 1; }

inline cublasOperation_t op(bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

// Column-major gemm (cuBLAS convention), overloaded per element type: C = alpha op(A) op(B) + beta C,
// C (m,n), op(A) (m,k), op(B) (k,n). fp32: Sgemm (default math mode, no TF32).
inline void gemm_cm(bool ta, bool tb, int m, int n, int k, float alpha, const float* A, int lda, const float* B,
                    int ldb, float beta, float* C, int ldc) {
  NG_CUBLAS(cublasSgemm(blas(), op(ta), op(tb), m, n, k, &alpha, A, ld(lda), B, ld(ldb), &beta, C, ld(ldc)));
}

// bf16 operands, fp32 accumulation (CUBLAS_COMPUTE_32F, alpha/beta fp32), C in bf16 or fp32.
// ng::bf16 has __nv_bfloat16's layout, so the buffers go to cuBLAS as CUDA_R_16BF unchanged.
inline void gemm_ex(bool ta, bool tb, int m, int n, int k, float alpha, const bf16* A, int lda, const bf16* B,
                    int ldb, float beta, void* C, cudaDataType_t c_type, int ldc) {
  NG_CUBLAS(cublasGemmEx(blas_bf16(), op(ta), op(tb), m, n, k, &alpha, A, CUDA_R_16BF, ld(lda), B, CUDA_R_16BF, ld(ldb),
                         &beta, C, c_type, ld(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}
inline void gemm_cm(bool ta, bool tb, int m, int n, int k, float alpha, const bf16* A, int lda, const bf16* B,
                    int ldb, float beta, bf16* C, int ldc) {
  gemm_ex(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, CUDA_R_16BF, ldc);
}
inline void gemm_cm(bool ta, bool tb, int m, int n, int k, float alpha, const bf16* A, int lda, const bf16* B,
                    int ldb, float beta, float* C, int ldc) {
  gemm_ex(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, CUDA_R_32F, ldc);
}

constexpr int kThreads = 256;

// out[n, o] = bias[o]: the gemm then adds the product on top with beta = 1 (as the CPU kernel).
// A plain copy of the stored value (bf16 included: exact).
template <class T>
__global__ void fill_bias_kernel(T* out, const T* bias, size_t N, int OC) {
  const size_t total = N * size_t(OC);
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x)
    out[i] = bias[i % OC];
}

// dbias[o] += sum_n dout[n, o], deterministically. Each block owns 32 consecutive columns, so no
// two blocks touch the same output (no atomics). Within a block, thread (x, y) sums rows y, y + BY,
// y + 2 BY, ... of column x in increasing order (coalesced: a warp reads 32 adjacent floats of one
// row); then thread y = 0 adds the BY partials in y order. The order depends only on the shape.
constexpr int kColTile = 32;
constexpr int kRowThreads = 16;

template <class T, class G>
__global__ void column_sum_kernel(G* dbias, const T* dout, int N, int OC) {
  __shared__ float partial[kRowThreads][kColTile];  // sums in fp32 whatever T is
  const int o = blockIdx.x * kColTile + threadIdx.x;
  float acc = 0.0f;
  if (o < OC)
    for (int n = threadIdx.y; n < N; n += kRowThreads) acc += to_float(dout[size_t(n) * OC + o]);
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && o < OC) {
    float sum = 0.0f;
    for (int y = 0; y < kRowThreads; ++y) sum += partial[y][threadIdx.x];
    dbias[o] = G(float(dbias[o]) + sum);
  }
}

}  // namespace

template <class T>
void matmul_forward(const MatmulForwardArgs<T>& a) {
  if (a.N <= 0 || a.OC <= 0) return;  // nothing to write
  using A = acc_t<T>;  // alpha and beta: fp32 for float and bf16
  A beta = A(0);
  if (a.bias) {
    fill_bias_kernel<<<grid_for(size_t(a.N) * a.OC, kThreads), kThreads>>>(a.out, a.bias, size_t(a.N), a.OC);
    NG_CUDA_LAUNCHED();
    beta = A(1);
  }
  // Row-major out(N,OC) = inp(N,C) . W(OC,C)^T  <=>  column-major out^T(OC,N) = W(OC,C) . inp^T(C,N).
  // W's bytes read column-major are W^T (C,OC), hence op = T; inp's bytes are inp^T (C,N) as needed.
  gemm_cm(true, false, a.OC, a.N, a.C, A(1), a.weight, a.C, a.inp, a.C, beta, a.out, a.OC);
}

template <class T>
void matmul_backward(const MatmulBackwardArgs<T>& a) {
  if (a.N < 0 || a.C < 0 || a.OC < 0) return;
  using A = acc_t<T>;
  // OC = 0 still owes dinp = 0 when overwriting (the CPU gemm writes beta * dinp with k = 0), so the
  // dinp gemm runs before the OC check below: k = OC = 0 is the valid "C = beta C" call (see ld()).
  if (a.dinp && a.N > 0 && a.C > 0) {
    // Row-major dinp(N,C) = dout(N,OC) . W(OC,C)  <=>  column-major dinp^T(C,N) = W^T(C,OC) . dout^T(OC,N),
    // and those operands are exactly W's and dout's bytes read column-major: no transposes.
    // With beta = 0 cuBLAS never reads dinp, so a poisoned (NaN/Inf) buffer is overwritten cleanly.
    gemm_cm(false, false, a.C, a.N, a.OC, A(1), a.weight, a.C, a.dout, a.OC, a.accumulate ? A(1) : A(0), a.dinp,
            a.C);
  }
  if (a.OC == 0) return;  // dweight and dbias are empty (and a 0-block launch would be an error)
  // Row-major dweight(OC,C) += dout^T(OC,N) . inp(N,C)  <=>  column-major dweight^T(C,OC) += inp^T(C,N) . dout(N,OC):
  // inp's bytes are inp^T (op = N); dout's bytes are dout^T (OC,N), so op = T gives dout (N,OC).
  // dweight is grad_t<T> (fp32 under bf16): the product accumulates into it in fp32 (beta = 1).
  if (a.C > 0) gemm_cm(false, true, a.C, a.OC, a.N, A(1), a.inp, a.C, a.dout, a.OC, A(1), a.dweight, a.C);
  if (a.dbias) {
    const dim3 block(kColTile, kRowThreads);
    const unsigned grid = unsigned((a.OC + kColTile - 1) / kColTile);
    column_sum_kernel<<<grid, block>>>(a.dbias, a.dout, a.N, a.OC);
    NG_CUDA_LAUNCHED();
  }
}

template void matmul_forward<float>(const MatmulForwardArgs<float>&);
template void matmul_backward<float>(const MatmulBackwardArgs<float>&);
template void matmul_forward<bf16>(const MatmulForwardArgs<bf16>&);
template void matmul_backward<bf16>(const MatmulBackwardArgs<bf16>&);

}  // namespace ng::cuda
