// bf16 mixed precision on the CPU reference (precision bf16): bf16 weights and activations, fp32
// parameter gradients, statistics and master weights. The CPU's bf16 kernels compute in fp32 and
// round once per stored activation, the same contract as the GPU's, so this checks the model and
// optimizer logic of mixed precision without a GPU:
//   - 20 training steps stay within the bf16 bound (2e-2) of the fp32 run, per strategy;
//   - the model's weights are exactly the rounding of the optimizer's fp32 master weights, and the
//     hypersphere constraints hold on the master weights;
//   - two runs are bitwise equal.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/backend.hpp"
#include "model/constraints.hpp"
#include "model/gpt.hpp"
#include "norm/plan.hpp"
#include "train/step.hpp"

using namespace ng;

namespace {

constexpr int kSteps = 20, kB = 2, kT = 11;
constexpr double kBf16LossAbs = 2e-2;  // the bf16 bound against fp32

ModelDims dims() { return ModelDims{2, 2, 32, 61, 64, 16, {}}; }

template <class T>
struct TrainRun {
  std::vector<double> losses;
  std::vector<T> params;
  std::vector<float> master;
};

template <class T>
TrainRun<T> train(const ModelDims& d, const ModelPlan& plan) {
  auto be = make_cpu_backend<T>();
  GPT<T> m(d, plan, *be, kB, kT);
  std::vector<acc_t<T>> w(m.params.size());
  init_params(m.table(), plan.init, 23, w.data());
  apply_constraints(plan, m.table(), w.data());
  m.params_from_host(w);
  OptimConfig oc;
  oc.lr = 3e-3;
  oc.weight_decay = 0.1;
  oc.grad_clip = 1.0;
  const LrSchedule sched{oc.lr, "cosine", 3, 0.1, kSteps};
  AdamW<T> opt(*be, m.table(), oc);
  opt.set_master(w);
  TrainRun<T> r;
  for (int step = 0; step < kSteps; ++step) {
    auto next = [&](int32_t* in, int32_t* tg) {
      for (int i = 0; i < kB * kT; ++i) {
        in[i] = int32_t((i * 7 + step * 3) % d.V);
        tg[i] = int32_t((in[i] * 5 + 1) % d.V);
      }
    };
    r.losses.push_back(train_step(m, opt, sched, oc, step, step % 2 ? 2 : 1, next).loss);
  }
  r.params = m.params.to_host();
  if (opt.has_master()) r.master = opt.master_host();
  return r;
}

class MixedPrecision : public ::testing::TestWithParam<std::string> {};

TEST_P(MixedPrecision, Bf16TracksFp32AndKeepsMasterWeights) {
  const ModelDims d = dims();
  NormConfig nc;
  nc.strategy = GetParam();
  const ModelPlan plan = make_plan(nc, d, "auto");
  const TrainRun<float> want = train<float>(d, plan);
  const TrainRun<bf16> got = train<bf16>(d, plan);
  double worst = 0;
  for (int s = 0; s < kSteps; ++s) {
    EXPECT_NEAR(got.losses[s], want.losses[s], kBf16LossAbs) << GetParam() << " step " << s;
    worst = std::max(worst, std::abs(got.losses[s] - want.losses[s]));
  }
  if (want.losses.back() < want.losses.front() - 0.1) {  // (dyt and angpt barely move in 20 steps at this lr)
    EXPECT_LT(got.losses.back(), got.losses.front() - 0.1) << "bf16 should learn as fp32 does";
  }
  std::printf("[ bf16   ] %-16s max |loss bf16 - fp32| over %d steps = %.3g\n", GetParam().c_str(), kSteps, worst);
  // the model's weights are the rounding of the master weights, which carry more than bf16 holds
  ASSERT_EQ(got.master.size(), got.params.size());
  size_t finer = 0;
  for (size_t i = 0; i < got.params.size(); ++i) {
    ASSERT_EQ(got.params[i].bits, bf16(got.master[i]).bits) << i;
    finer += float(got.params[i]) != got.master[i];
  }
  EXPECT_GT(finer, got.params.size() / 2) << "master weights should hold updates below bf16's resolution";
  if (plan.has_constraints()) {
    EXPECT_LT(constraint_violation(plan, ParamTable(d, plan), got.master.data()), 1e-5) << GetParam();
  }
  // deterministic
  const TrainRun<bf16> again = train<bf16>(d, plan);
  EXPECT_EQ(again.losses, got.losses);
  EXPECT_EQ(again.master, got.master);
}

INSTANTIATE_TEST_SUITE_P(Strategies, MixedPrecision,
                         ::testing::Values("pre", "post", "peri", "deepnorm", "geonorm", "dyt", "residual", "ngpt",
                                           "angpt"),
                         [](const auto& info) { return info.param; });

}  // namespace
