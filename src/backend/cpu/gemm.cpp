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
void gemm<float>(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                 int ldb, float beta, float* C, int ldc) {
#ifdef NORMGPT_HAVE_BLAS
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
              lda, B, ldb, beta, C, ldc);
#else
  gemm_loops(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

template <>
void gemm<double>(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda, const double* B,
                  int ldb, double beta, double* C, int ldc) {
#ifdef NORMGPT_HAVE_BLAS
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
              lda, B, ldb, beta, C, ldc);
#else
  gemm_loops(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

}  // namespace ng::cpu
