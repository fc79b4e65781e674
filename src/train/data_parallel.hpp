// Data parallelism over the communicator (configs/README.md, `dist`): how the gradients of all
// ranks become one update.
//   dist.zero 0: all-reduce (mean) the gradients; every rank updates every parameter.
//   dist.zero 1 (ZeRO-1): reduce-scatter the gradients, so each rank holds the mean gradient of
//     its shard; each rank's AdamW owns the moments of its shard only; after the update the
//     shards of the parameters are all-gathered.
// The global gradient norm is the same either way (sum of squares over shards, then a sum over
// ranks), so clipping and logging do not depend on the mode. Buffers are the model's backend
// memory; the communicator must accept them (MPI: host memory, NCCL: device memory).
#pragma once

#include <vector>

#include "dist/communicator.hpp"
#include "model/gpt.hpp"
#include "train/adamw.hpp"

namespace ng {

template <class T>
class DataParallel {
 public:
  // overlap (dist.overlap): average each block's gradients during the backward pass (all-reduce
  // mode, several ranks), through the model's grads-ready hook.
  DataParallel(Communicator& comm, const Backend<T>& backend, size_t n_params, bool zero, bool overlap = false);
  Communicator& comm() { return comm_; }
  bool zero() const { return zero_; }
  // The slice of the parameters this rank's optimizer owns (everything without ZeRO).
  Shard shard() const { return shard_; }
  // True when the gradients of the next backward pass should be averaged block by block.
  bool overlaps() const { return overlap_; }
  // Hooks data parallelism into model's next backward pass (overlaps() only): each ready block's
  // gradients start their all-reduce at once. reduce() then finishes them.
  void attach(GPT<T>& model);
  // After backward: averages the gradients over ranks; returns the global gradient norm.
  double reduce(GPT<T>& model);
  // Runs AdamW on this rank's shard with the gradients times `clip_factor`, and shares the updated
  // parameters. The gradients themselves are left unclipped.
  void update(GPT<T>& model, AdamW<T>& opt, double lr, int step, double clip_factor);
  // Leaves the full averaged (unclipped) gradients in model.grads (ZeRO: an extra all-gather; used
  // only for layer statistics).
  void gather_grads(GPT<T>& model);

 private:
  grad_t<T>* shard_grads(GPT<T>& model) { return zero_ ? grad_shard_.data() : model.grads.data(); }
  Communicator& comm_;
  const Backend<T>& be_;
  bool zero_, overlap_;
  bool attached_ = false;
  Shard shard_;
  Buffer<grad_t<T>> grad_shard_;
};

}  // namespace ng
