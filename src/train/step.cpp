#include "train/step.hpp"

#include <vector>

#include "core/errors.hpp"
#include "model/constraints.hpp"

namespace ng {

template <class T>
StepResult compute_gradients(GPT<T>& model, DataParallel<T>& dp, int grad_accum, const BatchFn& next_batch) {
  const size_t n = size_t(model.batch()) * model.seq_len();
  std::vector<int32_t> inputs(n), targets(n);
  StepResult r;
  model.zero_grad();
  for (int micro = 0; micro < grad_accum; ++micro) {
    next_batch(inputs.data(), targets.data());
    r.loss += model.forward(inputs.data(), targets.data()) / grad_accum;
    if (micro == grad_accum - 1) dp.attach(model);  // gradients are final only in the last pass
    model.backward(1.0 / grad_accum);
  }
  dp.comm().allreduce_mean(&r.loss, 1);
  r.grad_norm = dp.reduce(model);
  return r;
}

template <class T>
void apply_update(GPT<T>& model, AdamW<T>& opt, DataParallel<T>& dp, const LrSchedule& schedule,
                  const OptimConfig& cfg, int step, StepResult& r) {
  // Global-norm clipping: llm.c's rule (PyTorch's without its 1e-6): scale by clip / norm.
  r.clip_factor = (cfg.grad_clip > 0 && r.grad_norm > cfg.grad_clip) ? cfg.grad_clip / r.grad_norm : 1.0;
  r.lr = schedule.at(step);
  dp.update(model, opt, r.lr, step, r.clip_factor);
  // The hypersphere strategies' hook (nGPT renormalizes, anGPT projects); a no-op for the others.
  if constexpr (is_mixed_precision<T>) {
    // on the master weights (the weights of record), then the model's rounded copy
    const ModelPlan& plan = model.plan();
    if (!plan.has_constraints()) return;
    NG_CHECK(opt.shard().size() == model.params.size(), "constraints under mixed precision need the whole model");
    std::vector<acc_t<T>> w = opt.master_host();
    apply_constraints(plan, model.table(), w.data());
    opt.set_master(w);
    model.params_from_host(w);
  } else {
    apply_constraints(model);
  }
}

template <class T>
StepResult train_step(GPT<T>& model, AdamW<T>& opt, const LrSchedule& schedule, const OptimConfig& cfg, int step,
                      int grad_accum, const BatchFn& next_batch) {
  LocalCommunicator local;
  DataParallel<T> dp(local, model.backend(), model.params.size(), false);
  StepResult r = compute_gradients(model, dp, grad_accum, next_batch);
  apply_update(model, opt, dp, schedule, cfg, step, r);
  return r;
}

#define NG_INSTANTIATE(T)                                                                              \
  template StepResult compute_gradients<T>(GPT<T>&, DataParallel<T>&, int, const BatchFn&);            \
  template void apply_update<T>(GPT<T>&, AdamW<T>&, DataParallel<T>&, const LrSchedule&, const OptimConfig&, \
                                int, StepResult&);                                                     \
  template StepResult train_step<T>(GPT<T>&, AdamW<T>&, const LrSchedule&, const OptimConfig&, int, int, \
                                    const BatchFn&);
NG_INSTANTIATE(float)
NG_INSTANTIATE(double)
NG_INSTANTIATE(bf16)
#undef NG_INSTANTIATE

}  // namespace ng
