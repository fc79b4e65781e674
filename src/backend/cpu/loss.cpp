// Softmax cross-entropy over the first V logits (ops/loss.hpp).
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.hpp"

namespace ng::cpu {

template <class T>
void crossentropy_forward(const CrossEntropyForwardArgs<T>& a) {
  using A = acc_t<T>;
#pragma omp parallel
  {
    std::vector<A> e(size_t(a.V));  // one row's exp(logit - max), before it is normalized and stored
#pragma omp for
    for (int n = 0; n < a.N; ++n) {
      const T* logits = a.logits + size_t(n) * a.Vp;
      T* probs = a.probs + size_t(n) * a.Vp;
      const A target_logit = logits[a.targets[n]];  // read before probs (which may alias) overwrites it
      A maxv = -INFINITY;
      for (int v = 0; v < a.V; ++v) maxv = std::max(maxv, A(logits[v]));
      A sum = 0;
      for (int v = 0; v < a.V; ++v) {
        e[v] = std::exp(logits[v] - maxv);
        sum += e[v];
      }
      const A inv = A(1) / sum;
      for (int v = 0; v < a.V; ++v) probs[v] = e[v] * inv;
      for (int v = a.V; v < a.Vp; ++v) probs[v] = 0;
      // -log p[target] from the logit, not log(probs): a tiny probability keeps its precision.
      a.losses[n] = -(target_logit - maxv - std::log(sum));
    }
  }
}

template <class T>
void crossentropy_backward(const CrossEntropyBackwardArgs<T>& a) {
  using A = acc_t<T>;
#pragma omp parallel for
  for (int n = 0; n < a.N; ++n) {
    const T* probs = a.probs + size_t(n) * a.Vp;
    T* d = a.dlogits + size_t(n) * a.Vp;
    const int target = a.targets[n];
    for (int v = 0; v < a.V; ++v) {
      A g = a.dloss * probs[v];
      if (v == target) g -= a.dloss;
      d[v] = g;
    }
    for (int v = a.V; v < a.Vp; ++v) d[v] = 0;
  }
}

template void crossentropy_forward<float>(const CrossEntropyForwardArgs<float>&);
template void crossentropy_forward<double>(const CrossEntropyForwardArgs<double>&);
template void crossentropy_forward<bf16>(const CrossEntropyForwardArgs<bf16>&);
template void crossentropy_backward<float>(const CrossEntropyBackwardArgs<float>&);
template void crossentropy_backward<double>(const CrossEntropyBackwardArgs<double>&);
template void crossentropy_backward<bf16>(const CrossEntropyBackwardArgs<bf16>&);

}  // namespace ng::cpu
