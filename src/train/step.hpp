// One optimizer step, the same for the trainer and for tests, in two halves so the trainer can
// judge a step (divergence) between them:
//   compute_gradients: zero grads -> grad_accum x (next batch, forward, backward with loss scale
//     1/grad_accum) -> average gradients and loss over ranks -> global norm
//   apply_update: clip -> AdamW at lr(step) (on this rank's shard under ZeRO-1) -> share params
// The reported loss is the mean over micro-batches and ranks (DESIGN.md: the loss of step s's
// forward pass, before its update).
#pragma once

#include <cstdint>
#include <functional>

#include "model/gpt.hpp"
#include "train/adamw.hpp"
#include "train/data_parallel.hpp"
#include "train/schedule.hpp"

namespace ng {

struct StepResult {
  double loss = 0;
  double grad_norm = 0;    // before clipping
  double clip_factor = 1;  // what the gradients were multiplied by (1: not clipped)
  double lr = 0;
};

// Fills inputs and targets, each (B,T), with the next micro-batch.
using BatchFn = std::function<void(int32_t* inputs, int32_t* targets)>;

template <class T>
StepResult compute_gradients(GPT<T>& model, DataParallel<T>& dp, int grad_accum, const BatchFn& next_batch);

template <class T>
void apply_update(GPT<T>& model, AdamW<T>& opt, DataParallel<T>& dp, const LrSchedule& schedule,
                  const OptimConfig& cfg, int step, StepResult& r);

// Both halves, on one process.
template <class T>
StepResult train_step(GPT<T>& model, AdamW<T>& opt, const LrSchedule& schedule, const OptimConfig& cfg, int step,
                      int grad_accum, const BatchFn& next_batch);

}  // namespace ng
