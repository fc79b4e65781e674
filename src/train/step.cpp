#include "train/step.hpp"

#include <vector>

namespace ng {

template <class T>
StepResult compute_gradients(GPT<T>& model, Communicator& comm, int grad_accum, const BatchFn& next_batch) {
  const size_t n = size_t(model.batch()) * model.seq_len();
  std::vector<int32_t> inputs(n), targets(n);
  StepResult r;
  model.zero_grad();
  for (int micro = 0; micro < grad_accum; ++micro) {
    next_batch(inputs.data(), targets.data());
    r.loss += model.forward(inputs.data(), targets.data()) / grad_accum;
    model.backward(T(1.0 / grad_accum));
  }
  comm.allreduce_mean(model.grads.data(), model.grads.size());
  comm.allreduce_mean(&r.loss, 1);
  r.grad_norm = grad_norm(model.grads.data(), model.grads.size());
  return r;
}

template <class T>
void apply_update(GPT<T>& model, AdamW<T>& opt, const LrSchedule& schedule, const OptimConfig& cfg, int step,
                  StepResult& r) {
  r.clip_factor = clip_grads(model.grads.data(), model.grads.size(), r.grad_norm, cfg.grad_clip);
  r.lr = schedule.at(step);
  opt.step(model.params.data(), model.grads.data(), r.lr, step);
}

template <class T>
StepResult train_step(GPT<T>& model, AdamW<T>& opt, Communicator& comm, const LrSchedule& schedule,
                      const OptimConfig& cfg, int step, int grad_accum, const BatchFn& next_batch) {
  StepResult r = compute_gradients(model, comm, grad_accum, next_batch);
  apply_update(model, opt, schedule, cfg, step, r);
  return r;
}

#define NG_INSTANTIATE(T)                                                                                     \
  template StepResult compute_gradients<T>(GPT<T>&, Communicator&, int, const BatchFn&);                      \
  template void apply_update<T>(GPT<T>&, AdamW<T>&, const LrSchedule&, const OptimConfig&, int, StepResult&); \
  template StepResult train_step<T>(GPT<T>&, AdamW<T>&, Communicator&, const LrSchedule&, const OptimConfig&, \
                                    int, int, const BatchFn&);
NG_INSTANTIATE(float)
NG_INSTANTIATE(double)
#undef NG_INSTANTIATE

}  // namespace ng
