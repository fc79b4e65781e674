// CUDA softmax cross-entropy (ops/loss.hpp): the same contract and argument structs as ng::cpu,
// every pointer a DEVICE pointer, work queued on the default stream (callers sync by copying back).
// One block per row loops over the Vp columns (Vp up to 50304 does not fit one block of threads);
// max and sum are fp32 block reductions in a fixed order, so results are bitwise reproducible.
#pragma once

#include "ops/loss.hpp"

namespace ng::cuda {

// probs (may alias logits), losses; padded columns v >= V of probs are written as exactly 0.
template <class T>
void crossentropy_forward(const CrossEntropyForwardArgs<T>& a);

// dlogits = dloss * (probs - onehot(target)) for v < V, exactly 0 for v >= V (overwrite; may alias probs).
template <class T>
void crossentropy_backward(const CrossEntropyBackwardArgs<T>& a);

}  // namespace ng::cuda
