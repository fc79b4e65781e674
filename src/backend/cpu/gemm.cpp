#include <algorithm>
#include <vector>

#include "backend/cpu/kernels.hpp"

#ifdef NORMGPT_HAVE_BLAS
#include <cblas.h>
#endif

namespace ng::cpu {
namespace {

// Plain loops for builds without BLAS: correct, parallel over rows of C, not fast.
template <class T>
void gemm_loops(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb,
                T beta, T* C, int ldc) {
#pragma omp parallel for
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) {
      T acc = 0;
      for (int k = 0; k < K; ++k) {
        T a = ta ? A[size_t(k) * lda + i] : A[size_t(i) * lda + k];
        T b = tb ? B[size_t(j) * ldb + k] : B[size_t(k) * ldb + j];
        acc += a * b;
      }
      T& c = C[size_t(i) * ldc + j];
      c = alpha * acc + (beta == T(0) ? T(0) : beta * c);
    }
  }
}

}  // namespace

template <>
void gemm<float, float>(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda,
                        const float* B, int ldb, float beta, float* C, int ldc) {
#ifdef NORMGPT_HAVE_BLAS
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
              lda, B, ldb, beta, C, ldc);
#else
  gemm_loops(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

template <>
void gemm<double, double>(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda,
                          const double* B, int ldb, double beta, double* C, int ldc) {
#ifdef NORMGPT_HAVE_BLAS
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
              lda, B, ldb, beta, C, ldc);
#else
  gemm_loops(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

namespace {

// A rows x cols block with leading dimension ld, as a packed fp32 matrix (leading dimension cols).
template <class T>
std::vector<float> widen(const T* src, int rows, int cols, int ld) {
  std::vector<float> out(size_t(rows) * cols);
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) out[size_t(r) * cols + c] = src[size_t(r) * ld + c];
  return out;
}

// bf16 operands: widened to fp32 (exactly), multiplied by the fp32 gemm, which accumulates in fp32;
// a bf16 C is widened too (when beta reads it) and rounded once on the way back. The copies cost
// memory and time, which the CPU's bf16 path (a reference for the device kernels) can afford.
template <class TC>
void gemm_widened(bool ta, bool tb, int M, int N, int K, float alpha, const bf16* A, int lda, const bf16* B,
                  int ldb, float beta, TC* C, int ldc) {
  const int a_cols = ta ? M : K, b_cols = tb ? K : N;
  const std::vector<float> a = widen(A, ta ? K : M, a_cols, lda);
  const std::vector<float> b = widen(B, tb ? N : K, b_cols, ldb);
  const int la = std::max(a_cols, 1), lb = std::max(b_cols, 1);
  if constexpr (std::is_same_v<TC, float>) {
    gemm<float, float>(ta, tb, M, N, K, alpha, a.data(), la, b.data(), lb, beta, C, ldc);
  } else {
    // beta = 0 never reads C (as BLAS): it may hold anything, NaN included.
    std::vector<float> c = beta == 0.0f ? std::vector<float>(size_t(M) * N) : widen(C, M, N, ldc);
    gemm<float, float>(ta, tb, M, N, K, alpha, a.data(), la, b.data(), lb, beta, c.data(), std::max(N, 1));
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) C[size_t(i) * ldc + j] = c[size_t(i) * N + j];
  }
}

}  // namespace

template <>
void gemm<bf16, bf16>(bool ta, bool tb, int M, int N, int K, float alpha, const bf16* A, int lda,
                      const bf16* B, int ldb, float beta, bf16* C, int ldc) {
  gemm_widened(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// bf16 operands into an fp32 C: the weight gradient dout^T inp accumulating into grad_t<bf16>.
template <>
void gemm<bf16, float>(bool ta, bool tb, int M, int N, int K, float alpha, const bf16* A, int lda,
                       const bf16* B, int ldb, float beta, float* C, int ldc) {
  gemm_widened(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace ng::cpu
