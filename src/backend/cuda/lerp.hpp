// CUDA scaled interpolation (ops/lerp.hpp): the same contract and argument structs as ng::cpu,
// every pointer a DEVICE pointer, default stream, fp32 arithmetic (float or bf16 storage). Plain C++
// declarations.
#pragma once

#include "ops/lerp.hpp"

namespace ng::cuda {

// out = w * ((1 - a) x + a g) per column's a = alpha_scale * alpha (|.| under abs_alpha) and
// w = nu ? 1/sqrt(a^2 + (1-a)^2) : 1. out may alias x or g (one thread per element).
template <class T>
void lerp_forward(const LerpForwardArgs<T>& a);

// dx, dg overwritten; dalpha += its column sums over rows, in a fixed order (no atomics), with a
// stream-ordered scratch of min(N, 64) * C floats. dalpha is computed first, so the contract's
// "dx, dg never alias dout" is the only aliasing rule.
template <class T>
void lerp_backward(const LerpBackwardArgs<T>& a);

}  // namespace ng::cuda
