// CUDA LayerNorm / RMSNorm / L2 / DyT (ops/norm.hpp), with per-group statistics (`group`) and a null
// weight meaning gain 1: the same contract and argument structs as ng::cpu,
// every pointer a DEVICE pointer, work queued on the default stream (callers sync by copying back).
// Statistics are fp32 whatever T is. Row reductions use a fixed thread-to-element map and a fixed
// shuffle tree, and the gain/bias gradients a fixed row partition summed in a fixed order, so two
// runs on one GPU model are bitwise equal (no atomics). DyT's dalpha: fixed per-block partials
// (the block count a function of N*C), added in block order.
#pragma once

#include "ops/norm.hpp"

namespace ng::cuda {

// out = scale * (g * xhat [+ b]); writes mean (0 under rmsnorm and l2) and rstd, one per row and
// group (N * C/group values). out may alias inp. A group that does not divide C is refused
// (InternalError). DyT: elementwise (group ignored), alpha required (InternalError if null), a null
// bias is 0, and mean/rstd get 0/1 for the N rows where not null.
template <class T>
void norm_forward(const NormForwardArgs<T>& a);

// dinp = (accumulate ? dinp : 0) + dx;  dweight += ... (skipped when the weight or dweight is null);
// dbias += ... (skipped when null or neither layernorm nor dyt); dyt: dalpha += ... (skipped when
// null; dinp may alias dout, the parameter sums run first). Uses a stream-ordered scratch buffer of
// up to 2 * min(N, 64) * C floats for the parameter gradients (DyT: plus up to 1024 for dalpha).
template <class T>
void norm_backward(const NormBackwardArgs<T>& a);

}  // namespace ng::cuda
