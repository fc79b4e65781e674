// CUDA LayerNorm / RMSNorm / L2 (ops/norm.hpp), with per-group statistics (`group`) and a null
// weight meaning gain 1: the same contract and argument structs as ng::cpu,
// every pointer a DEVICE pointer, work queued on the default stream (callers sync by copying back).
// Statistics are fp32 whatever T is. Row reductions use a fixed thread-to-element map and a fixed
// shuffle tree, and the gain/bias gradients a fixed row partition summed in a fixed order, so two
// runs on one GPU model are bitwise equal (no atomics).
#pragma once

#include "ops/norm.hpp"

namespace ng::cuda {

// out = scale * (g * xhat [+ b]); writes mean (0 under rmsnorm and l2) and rstd, one per row and
// group (N * C/group values). out may alias inp. DyT is refused (InternalError), as is a group
// that does not divide C.
template <class T>
void norm_forward(const NormForwardArgs<T>& a);

// dinp = (accumulate ? dinp : 0) + dx;  dweight += ... (skipped when the weight or dweight is null);
// dbias += ... (skipped when null or not layernorm). Uses a stream-ordered scratch buffer of up to
// 2 * min(N, 64) * C floats for the parameter gradients.
template <class T>
void norm_backward(const NormBackwardArgs<T>& a);

}  // namespace ng::cuda
