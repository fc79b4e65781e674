// AdamW as PyTorch defines it, over the whole flat parameter buffer (params.hpp's layout), with a
// per-tensor weight-decay flag from optim.decay_params:
//   t = step + 1;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr * wd * p            (decoupled decay, only for decayed tensors)
//   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
// Moments are kept in fp32 (double when the model runs in double, for tests), in the backend's
// memory; the update runs as the backend's adamw_update op (ops/optim.hpp), one launch per
// tensor range. Under mixed precision (T = bf16) the optimizer also owns the fp32 master weights:
// the update applies to them and the model's bf16 weights are their rounding. Under ZeRO-1 an instance owns one shard [begin, end) of the flat buffer: its
// moments cover only that slice.
#pragma once

#include <vector>

#include "backend/backend.hpp"
#include "config/config.hpp"
#include "dist/communicator.hpp"
#include "model/params.hpp"

namespace ng {

template <class T>
class AdamW {
 public:
  AdamW(const Backend<T>& backend, const ParamTable& table, const OptimConfig& cfg, Shard shard);
  AdamW(const Backend<T>& backend, const ParamTable& table, const OptimConfig& cfg)
      : AdamW(backend, table, cfg, Shard{0, table.total()}) {}
  using A = acc_t<T>;
  // One update of params[shard] with `shard_grads` (the shard's averaged gradients, times
  // grad_scale = the clipping factor: shard_grads[0] belongs to params[shard.begin]). Backend
  // pointers; the gradients are left as they are.
  void step(T* params, const grad_t<T>* shard_grads, double lr, int step, double grad_scale = 1.0);
  const Shard& shard() const { return shard_; }
  // The moments as host vectors (checkpoints), and back.
  std::vector<A> m_host() const { return m_.to_host(); }
  std::vector<A> v_host() const { return v_.to_host(); }
  void set_moments(const std::vector<A>& m, const std::vector<A>& v);
  // Mixed precision: the master weights of the shard (full precision), set from the host values
  // the model was initialized or resumed with; empty otherwise.
  bool has_master() const { return is_mixed_precision<T>; }
  void set_master(const std::vector<A>& shard_weights);
  std::vector<A> master_host() const { return master_.to_host(); }

 private:
  struct Range {
    size_t begin, end;
    bool decay;
    bool trainable;
  };
  std::vector<Range> ranges_;  // the table's tensors cut to the shard
  const Backend<T>& be_;
  OptimConfig cfg_;
  Shard shard_;
  Buffer<A> m_, v_;
  Buffer<A> master_;  // mixed precision only
};

// Global L2 norm of a gradient buffer in the backend's memory (accumulated in double, in a fixed
// order).
template <class T>
double grad_norm(const Backend<T>& backend, const grad_t<T>* grads, size_t n);

}  // namespace ng
