// Softmax cross-entropy over the first V logits (ops/loss.hpp).
#include <cmath>

#include "backend/cpu/kernels.hpp"

namespace ng::cpu {

template <class T>
void crossentropy_forward(const CrossEntropyForwardArgs<T>& a) {
#pragma omp parallel for
  for (int n = 0; n < a.N; ++n) {
    const T* logits = a.logits + size_t(n) * a.Vp;
    T* probs = a.probs + size_t(n) * a.Vp;
    const T target_logit = logits[a.targets[n]];  // read before probs (which may alias) overwrites it
    T maxv = -INFINITY;
    for (int v = 0; v < a.V; ++v) maxv = std::max(maxv, logits[v]);
    T sum = 0;
    for (int v = 0; v < a.V; ++v) {
      probs[v] = std::exp(logits[v] - maxv);
      sum += probs[v];
    }
    const T inv = T(1) / sum;
    for (int v = 0; v < a.V; ++v) probs[v] *= inv;
    for (int v = a.V; v < a.Vp; ++v) probs[v] = 0;
    // -log p[target] from the logit, not log(probs): a tiny probability keeps its precision.
    a.losses[n] = -(target_logit - maxv - std::log(sum));
  }
}

template <class T>
void crossentropy_backward(const CrossEntropyBackwardArgs<T>& a) {
#pragma omp parallel for
  for (int n = 0; n < a.N; ++n) {
    const T* probs = a.probs + size_t(n) * a.Vp;
    T* d = a.dlogits + size_t(n) * a.Vp;
    for (int v = 0; v < a.V; ++v) d[v] = a.dloss * probs[v];
    d[a.targets[n]] -= a.dloss;
    for (int v = a.V; v < a.Vp; ++v) d[v] = 0;
  }
}

template void crossentropy_forward<float>(const CrossEntropyForwardArgs<float>&);
template void crossentropy_forward<double>(const CrossEntropyForwardArgs<double>&);
template void crossentropy_backward<float>(const CrossEntropyBackwardArgs<float>&);
template void crossentropy_backward<double>(const CrossEntropyBackwardArgs<double>&);

}  // namespace ng::cpu
