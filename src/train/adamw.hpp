// AdamW as PyTorch defines it, over the whole flat parameter buffer (params.hpp's layout), with a
// per-tensor weight-decay flag from optim.decay_params:
//   t = step + 1;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr * wd * p            (decoupled decay, only for decayed tensors)
//   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
// Moments are kept in fp32 (double when the model runs in double, for tests). Under ZeRO-1 an
// instance owns one shard [begin, end) of the flat buffer: its moments cover only that slice.
#pragma once

#include <vector>

#include "config/config.hpp"
#include "dist/communicator.hpp"
#include "model/params.hpp"

namespace ng {

template <class T>
class AdamW {
 public:
  AdamW(const ParamTable& table, const OptimConfig& cfg, Shard shard);
  AdamW(const ParamTable& table, const OptimConfig& cfg) : AdamW(table, cfg, Shard{0, table.total()}) {}
  // One update of params[shard] with `shard_grads` (the shard's averaged, clipped gradients:
  // shard_grads[0] belongs to params[shard.begin]).
  void step(T* params, const T* shard_grads, double lr, int step);
  const Shard& shard() const { return shard_; }
  std::vector<T>& m() { return m_; }
  std::vector<T>& v() { return v_; }

 private:
  struct Range {
    size_t begin, end;
    bool decay;
    bool trainable;
  };
  std::vector<Range> ranges_;  // the table's tensors cut to the shard
  OptimConfig cfg_;
  Shard shard_;
  std::vector<T> m_, v_;
};

// Global L2 norm of the gradient buffer (accumulated in double, in a fixed order).
template <class T>
double grad_norm(const T* grads, size_t n);

}  // namespace ng
