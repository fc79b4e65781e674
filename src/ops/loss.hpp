// Softmax cross-entropy over the first V of Vp logits (the padded columns are ignored):
//   probs[n, v] = exp(logits[n,v]) / sum_{v'<V} exp(logits[n,v'])   for v < V; 0 for v >= V
//   losses[n] = -log probs[n, targets[n]]
//   shapes: logits (N,Vp); targets (N) in [0,V); losses (N). `probs` may alias `logits`.
//   backward: dlogits[n,v] = dloss * (probs[n,v] - [v == target]) for v < V, 0 for v >= V
//     (overwrite; dlogits may alias probs, which is how the model avoids a second (N,Vp) buffer).
#pragma once

#include "core/precision.hpp"

#include <cstdint>

namespace ng {

template <class T>
struct CrossEntropyForwardArgs {
  stat_t<T>* losses;
  T* probs;
  const T* logits;
  const int32_t* targets;
  int N, V, Vp;
};

template <class T>
struct CrossEntropyBackwardArgs {
  T* dlogits;
  const T* probs;
  const int32_t* targets;
  acc_t<T> dloss;  // d(total loss)/d(losses[n]), the same for every position (1/(B*T*grad_accum))
  int N, V, Vp;
};

}  // namespace ng
