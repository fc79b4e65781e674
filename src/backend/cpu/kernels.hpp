// CPU reference kernels, templated on the scalar type so tests can run them in double.
// Each implements the contract in ops/<family>.hpp; read those headers for shapes and semantics.
// Under T = bf16 they are the reference of mixed precision: they read T, compute and accumulate
// in acc_t<T> (fp32), write parameter gradients in grad_t<T> and statistics in stat_t<T>, and
// round once, when a T output is stored. For float and double every one of those types is T.
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

// C (M,N) = alpha * op(A) op(B) + beta * C, row-major, accumulated in acc_t<T>; C is T, or
// grad_t<T> for parameter gradients. BLAS when built with it, else loops; bf16 converts its
// operands to fp32 and runs the fp32 path, so C is the fp32 product rounded once.
template <class T, class TC>
void gemm(bool trans_a, bool trans_b, int M, int N, int K, acc_t<T> alpha, const T* A, int lda, const T* B,
          int ldb, acc_t<T> beta, TC* C, int ldc);

}  // namespace ng::cpu
