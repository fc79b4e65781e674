#include "train/step.hpp"

#include <vector>

namespace ng {

template <class T>
StepResult train_step(GPT<T>& model, AdamW<T>& opt, Communicator& comm, const LrSchedule& schedule,
                      const OptimConfig& cfg, int step, int grad_accum, const BatchFn& next_batch) {
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
  r.clip_factor = clip_grads(model.grads.data(), model.grads.size(), r.grad_norm, cfg.grad_clip);
  r.lr = schedule.at(step);
  opt.step(model.params.data(), model.grads.data(), r.lr, step);
  return r;
}

template StepResult train_step<float>(GPT<float>&, AdamW<float>&, Communicator&, const LrSchedule&,
                                      const OptimConfig&, int, int, const BatchFn&);
template StepResult train_step<double>(GPT<double>&, AdamW<double>&, Communicator&, const LrSchedule&,
                                       const OptimConfig&, int, int, const BatchFn&);

}  // namespace ng
