// CUDA LayerNorm / RMSNorm (ops/norm.hpp): the same contract and argument structs as ng::cpu,
// every pointer a DEVICE pointer, work queued on the default stream (callers sync by copying back).
// Statistics are fp32 whatever T is. Row reductions use a fixed thread-to-element map and a fixed
// shuffle tree, and the gain/bias gradients a fixed row partition summed in a fixed order, so two
// runs on one GPU model are bitwise equal (no atomics).
#pragma once

#include "ops/norm.hpp"

namespace ng::cuda {

// out = scale * (g * xhat [+ b]); writes mean (0 under rmsnorm) and rstd. out may alias inp.
template <class T>
void norm_forward(const NormForwardArgs<T>& a);

// dinp = (accumulate ? dinp : 0) + dx;  dweight += ...;  dbias += ... (skipped when null or rmsnorm).
// Uses a stream-ordered scratch buffer of 2 * min(N, 64) * C floats for the parameter gradients.
template <class T>
void norm_backward(const NormBackwardArgs<T>& a);

}  // namespace ng::cuda
