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

}  // namespace ng::cuda
