// CUDA elementwise ops (ops/pointwise.hpp): the same contract and argument structs as ng::cpu,
// every pointer a DEVICE pointer, default stream. Each element is read and written by one thread
// only, so the aliasing the contract allows (in place) is safe; results are deterministic.
#pragma once

#include "ops/pointwise.hpp"

namespace ng::cuda {

// out = gelu(inp) (tanh form); out may alias inp.
template <class T>
void gelu_forward(const GeluForwardArgs<T>& a);

// dinp = (accumulate ? dinp : 0) + gelu'(inp) * dout; dinp may alias dout or inp.
template <class T>
void gelu_backward(const GeluBackwardArgs<T>& a);

// out = alpha * x + g (+ skip); out may alias x, g or skip.
template <class T>
void residual(const ResidualArgs<T>& a);

// dst = (accumulate ? dst : 0) + alpha * src; dst may alias src.
template <class T>
void scale(const ScaleArgs<T>& a);

// out (N,H) = silu(gate) * up, inp (N,2H) = [gate | up] per row.
template <class T>
void swiglu_forward(const SwigluForwardArgs<T>& a);

// dinp (N,2H) overwritten: [dout * up * silu'(gate) | dout * silu(gate)].
template <class T>
void swiglu_backward(const SwigluBackwardArgs<T>& a);

// out[n,c] = k * s[c] * x[n,c]; out must not alias x (per the contract; this kernel would cope).
template <class T>
void scale_columns_forward(const ScaleColumnsForwardArgs<T>& a);

// ds[c] += k * sum_n dout x (fixed-order column sums, no atomics; skipped when ds is null), then
// dx = (accumulate ? dx : 0) + k s dout. ds is summed first, so dx may alias dout.
template <class T>
void scale_columns_backward(const ScaleColumnsBackwardArgs<T>& a);

// dst[r*ld_dst + c] = (accumulate ? dst : 0) + src[r*ld_src + c], c < width: cudaMemcpy2DAsync
// when overwriting, a kernel when accumulating. Elements of dst beyond width are left alone.
template <class T>
void copy2d(const Copy2dArgs<T>& a);

}  // namespace ng::cuda
