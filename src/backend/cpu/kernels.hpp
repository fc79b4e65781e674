// CPU reference kernels, templated on the scalar type so tests can run them in double.
// Each implements the contract in ops/<family>.hpp; read those headers for shapes and semantics.
#pragma once

#include "ops/attention.hpp"
#include "ops/encoder.hpp"
#include "ops/geodesic.hpp"
#include "ops/lerp.hpp"
#include "ops/loss.hpp"
#include "ops/matmul.hpp"
#include "ops/norm.hpp"
#include "ops/optim.hpp"
#include "ops/pointwise.hpp"
#include "ops/rope.hpp"

namespace ng::cpu {

template <class T> void encoder_forward(const EncoderForwardArgs<T>& a);
template <class T> void encoder_backward(const EncoderBackwardArgs<T>& a);
template <class T> void norm_forward(const NormForwardArgs<T>& a);
template <class T> void norm_backward(const NormBackwardArgs<T>& a);
template <class T> void matmul_forward(const MatmulForwardArgs<T>& a);
template <class T> void matmul_backward(const MatmulBackwardArgs<T>& a);
template <class T> void attention_forward(const AttentionForwardArgs<T>& a);
template <class T> void attention_backward(const AttentionBackwardArgs<T>& a);
template <class T> void gelu_forward(const GeluForwardArgs<T>& a);
template <class T> void gelu_backward(const GeluBackwardArgs<T>& a);
template <class T> void residual(const ResidualArgs<T>& a);
template <class T> void scale(const ScaleArgs<T>& a);
template <class T> void geodesic_forward(const GeodesicForwardArgs<T>& a);
template <class T> void geodesic_backward(const GeodesicBackwardArgs<T>& a);
template <class T> void crossentropy_forward(const CrossEntropyForwardArgs<T>& a);
template <class T> void crossentropy_backward(const CrossEntropyBackwardArgs<T>& a);
template <class T> void rope(const RopeArgs<T>& a);
template <class T> void swiglu_forward(const SwigluForwardArgs<T>& a);
template <class T> void swiglu_backward(const SwigluBackwardArgs<T>& a);
template <class T> void scale_columns_forward(const ScaleColumnsForwardArgs<T>& a);
template <class T> void scale_columns_backward(const ScaleColumnsBackwardArgs<T>& a);
template <class T> void copy2d(const Copy2dArgs<T>& a);
template <class T> void lerp_forward(const LerpForwardArgs<T>& a);
template <class T> void lerp_backward(const LerpBackwardArgs<T>& a);
template <class T> void adamw_update(const AdamWArgs<T>& a);
template <class T> double sum_squares(const SumSquaresArgs<T>& a);

// C (M,N) = alpha * op(A) op(B) + beta * C, row-major; BLAS when built with it, else loops.
template <class T>
void gemm(bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, int lda, const T* B,
          int ldb, T beta, T* C, int ldc);

}  // namespace ng::cpu
