// Whole training steps on the GPU (label cuda), the acceptance checks for device cuda:
//   - fp32: the CUDA backend's losses match the CPU backend's within 1e-4 for 20 steps, for every
//     strategy and for the modern block options (RoPE, SwiGLU, no biases, untied head, QK-norm);
//   - determinism: two CUDA runs of the same config and seed give bitwise-identical losses and
//     parameters.
// The trainer-level device path (checkpoints, resume, layer statistics through host copies) is
// covered without a GPU by tests/app/test_device_path.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backend/cuda/cuda_backend.hpp"
#include "cuda_test_util.hpp"
#include "model/constraints.hpp"
#include "model/gpt.hpp"
#include "norm/plan.hpp"
#include "train/step.hpp"
#ifdef NORMGPT_HAVE_NCCL
#include "dist/nccl_communicator.hpp"
#endif

using namespace ng;

namespace {

constexpr int kSteps = 20, kB = 3, kT = 13;
constexpr double kFp32LossAbs = 1e-4;  // the fp32 bound, CUDA vs CPU, per step

struct TrainRun {
  std::vector<double> losses, norms;
  std::vector<float> params;
};

template <class T>
TrainRun train(const Backend<T>& be, const ModelDims& d, const ModelPlan& plan) {
  GPT<T> m(d, plan, be, kB, kT);
  std::vector<float> host(m.params.size());
  init_params(m.table(), plan.init, 17, host.data());
  apply_constraints(plan, m.table(), host.data());
  m.params_from_host(host);
  OptimConfig oc;
  oc.lr = 3e-3;
  oc.weight_decay = 0.1;
  oc.grad_clip = 1.0;
  const LrSchedule sched{oc.lr, "cosine", 3, 0.1, kSteps};
  AdamW<T> opt(be, m.table(), oc);
  opt.set_master(host);
  TrainRun r;
  for (int step = 0; step < kSteps; ++step) {
    // a learnable pattern: the next token is a fixed function of the current one
    auto next = [&](int32_t* in, int32_t* tg) {
      for (int i = 0; i < kB * kT; ++i) {
        in[i] = int32_t((i * 7 + step * 3) % d.V);
        tg[i] = int32_t((in[i] * 5 + 1) % d.V);
      }
    };
    const StepResult s = train_step(m, opt, sched, oc, step, step % 2 ? 2 : 1, next);
    r.losses.push_back(s.loss);
    r.norms.push_back(s.grad_norm);
  }
  r.params = opt.has_master() ? opt.master_host() : m.params_to_host();
  return r;
}

ModelDims gpt2_dims() { return ModelDims{2, 3, 48, 101, 128, 16, {}}; }  // hs 16, V not a multiple of 32

ModelDims llama_dims() {
  ModelDims d{2, 3, 48, 101, 128, 16, {}};
  d.arch.rope = true;
  d.arch.swiglu = true;
  d.arch.hidden = 72;
  d.arch.bias = false;
  d.arch.tied = false;
  return d;
}

class CudaTraining : public ::testing::TestWithParam<std::string> {};

constexpr double kBf16LossAbs = 2e-2;  // the bf16 bound, CUDA bf16 vs CPU fp32, per step

void check(const ModelDims& d, const std::string& strategy) {
  NormConfig nc;
  nc.strategy = strategy;
  const ModelPlan plan = make_plan(nc, d, "auto");
  auto cpu = make_cpu_backend<float>();
  auto gpu = make_cuda_backend(0);
  const TrainRun want = train(*cpu, d, plan);
  const TrainRun got = train(*gpu, d, plan);
  double worst = 0;
  for (int s = 0; s < kSteps; ++s) {
    EXPECT_NEAR(got.losses[s], want.losses[s], kFp32LossAbs) << strategy << " step " << s;
    worst = std::max(worst, std::abs(got.losses[s] - want.losses[s]));
  }
  EXPECT_LT(want.losses.back(), want.losses.front()) << strategy << ": the CPU run should learn";
  std::printf("[ parity ] %-16s %-6s max |loss cuda - cpu| over %d steps = %.3g\n", strategy.c_str(),
              d.arch.swiglu ? "llama" : "gpt2", kSteps, worst);
  const TrainRun again = train(*gpu, d, plan);
  EXPECT_EQ(again.losses, got.losses) << strategy << ": two CUDA runs differ";
  EXPECT_EQ(again.norms, got.norms) << strategy;
  EXPECT_TRUE(test::bitwise_equal(again.params, got.params)) << strategy << ": parameters differ between runs";
}

TEST_P(CudaTraining, Fp32MatchesCpuAndIsDeterministic) {
  NG_SKIP_WITHOUT_GPU();
  check(gpt2_dims(), GetParam());
}

// precision bf16 (the default on GPU): bf16 weights and activations, fp32 master weights,
// gradients and statistics; within 2e-2 of the CPU's fp32 losses, and bitwise deterministic.
TEST_P(CudaTraining, Bf16WithinBoundOfCpuFp32AndIsDeterministic) {
  NG_SKIP_WITHOUT_GPU();
  const ModelDims d = gpt2_dims();
  NormConfig nc;
  nc.strategy = GetParam();
  const ModelPlan plan = make_plan(nc, d, "auto");
  auto cpu = make_cpu_backend<float>();
  auto gpu = make_cuda_backend_bf16(0);
  const TrainRun want = train(*cpu, d, plan);
  const TrainRun got = train(*gpu, d, plan);
  double worst = 0;
  for (int s = 0; s < kSteps; ++s) {
    EXPECT_NEAR(got.losses[s], want.losses[s], kBf16LossAbs) << GetParam() << " step " << s;
    worst = std::max(worst, std::abs(got.losses[s] - want.losses[s]));
  }
  std::printf("[ parity ] %-16s bf16   max |loss cuda bf16 - cpu fp32| over %d steps = %.3g\n", GetParam().c_str(),
              kSteps, worst);
  const TrainRun again = train(*gpu, d, plan);
  EXPECT_EQ(again.losses, got.losses) << GetParam() << ": two bf16 CUDA runs differ";
  EXPECT_TRUE(test::bitwise_equal(again.params, got.params)) << GetParam();
}

TEST_P(CudaTraining, LlamaBlocksFp32MatchCpu) {
  NG_SKIP_WITHOUT_GPU();
  ModelDims d = llama_dims();
  // QK-norm where the strategy leaves q and k alone
  const std::string s = GetParam();
  if (s != "ngpt" && s != "angpt" && s != "hybridnorm" && s != "hybridnorm_star") d.arch.qk_norm = QkNorm::Head;
  check(d, s);
}

#ifdef NORMGPT_HAVE_NCCL
// The NCCL data-parallel path on one GPU, one process (the single-GPU check): the trainer's
// step through DataParallel over NCCL, with and without ZeRO-1, gives the local run's bits.
TEST(CudaTrainingNccl, OneProcessNcclStepsEqualLocalSteps) {
  NG_SKIP_WITHOUT_GPU();
  const ModelDims d = gpt2_dims();
  NormConfig nc;
  nc.strategy = "peri";
  const ModelPlan plan = make_plan(nc, d, "auto");
  auto gpu = make_cuda_backend(0);
  OptimConfig oc;
  oc.lr = 3e-3;
  oc.grad_clip = 0.5;
  const LrSchedule sched{oc.lr, "constant", 0, 1.0, 5};
  auto run = [&](Communicator& comm, bool zero) {
    GPT<float> m(d, plan, *gpu, kB, kT);
    std::vector<float> host(m.params.size());
    init_params(m.table(), plan.init, 17, host.data());
    m.params_from_host(host);
    DataParallel<float> dp(comm, *gpu, m.params.size(), zero);
    AdamW<float> opt(*gpu, m.table(), oc, dp.shard());
    std::vector<double> losses;
    for (int step = 0; step < 5; ++step) {
      auto next = [&](int32_t* in, int32_t* tg) {
        for (int i = 0; i < kB * kT; ++i) {
          in[i] = int32_t((i * 7 + step * 3) % d.V);
          tg[i] = int32_t((in[i] * 5 + 1) % d.V);
        }
      };
      StepResult r = compute_gradients(m, dp, 1, next);
      apply_update(m, opt, dp, sched, oc, step, r);
      losses.push_back(r.loss);
    }
    return std::make_pair(losses, m.params.to_host());
  };
  LocalCommunicator local;
  const auto want = run(local, false);
  for (bool zero : {false, true}) {
    auto nccl = make_nccl_communicator(0, 1, 0, nccl_unique_id());
    const auto got = run(*nccl, zero);
    EXPECT_EQ(got.first, want.first) << "zero " << zero;
    EXPECT_TRUE(test::bitwise_equal(got.second, want.second)) << "zero " << zero;
  }
}
#endif

INSTANTIATE_TEST_SUITE_P(Strategies, CudaTraining, ::testing::ValuesIn(strategy_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
