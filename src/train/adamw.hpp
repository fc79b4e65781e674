// AdamW as PyTorch defines it, over the whole flat parameter buffer (params.hpp's layout), with a
// per-tensor weight-decay flag from optim.decay_params:
//   t = step + 1;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr * wd * p            (decoupled decay, only for decayed tensors)
//   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
// Moments are kept in fp32 (double when the model runs in double, for tests).
#pragma once

#include <vector>

#include "config/config.hpp"
#include "model/params.hpp"

namespace ng {

template <class T>
class AdamW {
 public:
  AdamW(const ParamTable& table, const OptimConfig& cfg);
  // One update of all parameters with gradients `grads` (already averaged and clipped).
  void step(T* params, const T* grads, double lr, int step);
  std::vector<T>& m() { return m_; }
  std::vector<T>& v() { return v_; }

 private:
  struct Range {
    size_t begin, end;
    bool decay;
    bool trainable;
  };
  std::vector<Range> ranges_;
  OptimConfig cfg_;
  std::vector<T> m_, v_;
};

// Global L2 norm of the gradient buffer (accumulated in double, in a fixed order).
template <class T>
double grad_norm(const T* grads, size_t n);

// Multiplies grads by clip / norm when clip > 0 and norm > clip (llm.c's and PyTorch's rule
// without PyTorch's 1e-6). Returns the factor applied (1 when not clipped).
template <class T>
double clip_grads(T* grads, size_t n, double norm, double clip);

}  // namespace ng
