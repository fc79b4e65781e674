// The device path of the trainer, without a GPU: the guarded backend (common/guarded_backend.hpp)
// registers as "cuda", so `device: cuda` runs the CPU kernels over memory the host may not touch.
// A training run through it (eval, layer statistics, checkpoints, stop and resume) must produce
// bitwise the CPU run's metrics and model files: every host access goes through upload/download,
// the optimizer and the gradient norm run as backend ops, and nothing reads device memory directly
// (which would crash here with SIGSEGV).
#include <gtest/gtest.h>

#include <fstream>

#include "backend/registry.hpp"
#include "common/cli.hpp"
#include "common/guarded_backend.hpp"
#include "data/shard.hpp"
#include "model/constraints.hpp"
#include "model/gpt.hpp"
#include "train/step.hpp"
#include "train/trainer.hpp"

using namespace ng;
using namespace ng::test;
using nlohmann::json;

namespace {

std::vector<int32_t> synthetic_tokens(size_t n, uint32_t seed) {
  std::vector<int32_t> t(n);
  uint32_t x = seed;
  for (auto& v : t) {
    x = x * 1664525u + 1013904223u;
    v = int32_t(97 + (x >> 16) % 13);
  }
  return t;
}

void register_guarded_as_cuda() {
  DeviceBackendFactory f{"cuda", +[]() { return 1; },
                         +[](int) -> std::unique_ptr<Backend<float>> { return std::make_unique<GuardedBackend<float>>(); }};
  f.make_bf16 = +[](int) -> std::unique_ptr<Backend<bf16>> { return std::make_unique<GuardedBackend<bf16>>(); };
  register_device_backend(f);
}

class DevicePath : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    register_guarded_as_cuda();
    write_shard(dir_ / "train_000000.bin", synthetic_tokens(20000, 1));
    write_shard(dir_ / "val_000000.bin", synthetic_tokens(3000, 2));
    json cfg = {{"model", {{"n_layer", 2}, {"n_head", 2}, {"d_model", 16}, {"seq_len", 16}, {"vocab_size", 257}}},
                {"norm", {{"strategy", GetParam()}}},
                {"optim", {{"lr", 3e-3}, {"warmup_steps", 2}, {"weight_decay", 0.1}, {"grad_clip", 0.5}}},
                {"train", {{"batch_size", 2}, {"steps", 8}}},
                {"data", {{"train", dir_ / "train_*.bin"}, {"val", dir_ / "val_*.bin"}}},
                {"eval", {{"every", 4}, {"batches", 2}}},
                {"log", {{"layer_stats_every", 3}}},
                {"checkpoint", {{"every", 4}, {"keep", 0}}},
                {"seed", 5}};
    std::ofstream(dir_ / "cfg.json") << cfg.dump(2);
  }
  int train(const std::string& run, const std::string& device, bool resume = false, int stop_after = 0,
            const std::string& extra = "") {
    TrainOptions o;
    o.config_path = dir_ / "cfg.json";
    o.overrides = {"device=" + device, "precision=" + precision_};
    if (!extra.empty()) o.overrides.push_back(extra);
    o.run_dir = dir_ / run;
    o.resume = resume;
    o.stop_after = stop_after;
    return run_train(o);
  }
  // Every metrics row without its timing fields.
  std::vector<json> rows(const std::string& run) {
    std::vector<json> out;
    std::ifstream f(dir_ / run + "/metrics.jsonl");
    std::string line;
    while (std::getline(f, line)) {
      json j = json::parse(line);
      for (const char* k : {"step_ms", "tokens_per_s"}) j.erase(k);
      out.push_back(j);
    }
    return out;
  }
  TempDir dir_{"device_path"};
  std::string precision_ = "fp32";
};

TEST_P(DevicePath, TrainingRunEqualsTheCpuRunBitwise) {
  ASSERT_EQ(train("cpu", "cpu"), 0);
  ASSERT_EQ(train("dev", "cuda"), 0);
  const auto a = rows("cpu"), b = rows("dev");
  ASSERT_EQ(a.size(), b.size());
  int stats_rows = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i], b[i]) << "metrics row " << i;
    stats_rows += a[i].contains("layers");
  }
  EXPECT_EQ(stats_rows, 3);  // steps 0, 3, 6
  for (const char* ckpt : {"step_00000004", "step_00000008"}) {
    EXPECT_EQ(slurp(dir_ / "cpu/checkpoints/" + ckpt + "/model.bin"), slurp(dir_ / "dev/checkpoints/" + ckpt + "/model.bin"))
        << ckpt;
    EXPECT_EQ(slurp(dir_ / "cpu/checkpoints/" + ckpt + "/state.bin"), slurp(dir_ / "dev/checkpoints/" + ckpt + "/state.bin"))
        << ckpt;
  }
  // stop and resume on the device path: the optimizer moments travel through the checkpoint
  ASSERT_EQ(train("part", "cuda", false, 3), 0);
  ASSERT_EQ(train("part", "cuda", true), 0);
  EXPECT_EQ(slurp(dir_ / "part/checkpoints/step_00000008/model.bin"), slurp(dir_ / "cpu/checkpoints/step_00000008/model.bin"));
  // ZeRO-1 on one rank: the shard is everything, the reduce-scatter a copy in device memory
  ASSERT_EQ(train("zero", "cuda", false, 0, "dist.zero=1"), 0);
  EXPECT_EQ(slurp(dir_ / "zero/checkpoints/step_00000008/model.bin"), slurp(dir_ / "cpu/checkpoints/step_00000008/model.bin"));
}

// precision bf16 through the trainer on "device" memory: fp32 master weights in the optimizer,
// checkpoints hold them (stop + resume is bitwise the uninterrupted run), and the losses stay
// within the bf16 bound of the fp32 run.
TEST_P(DevicePath, Bf16RunsWithMasterWeightsThroughCheckpoints) {
  ASSERT_EQ(train("fp32", "cpu"), 0);
  precision_ = "auto";  // on a (stand-in) GPU: bf16
  ASSERT_EQ(train("bf16", "cuda"), 0);
  const auto a = rows("fp32"), b = rows("bf16");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].contains("train_loss")) {
      EXPECT_NEAR(b[i]["train_loss"].get<double>(), a[i]["train_loss"].get<double>(), 2e-2) << "row " << i;
    }
  EXPECT_NE(slurp(dir_ / "bf16/checkpoints/step_00000008/model.bin"), slurp(dir_ / "fp32/checkpoints/step_00000008/model.bin"));
  ASSERT_EQ(train("part", "cuda", false, 3), 0);
  ASSERT_EQ(train("part", "cuda", true), 0);
  EXPECT_EQ(slurp(dir_ / "part/checkpoints/step_00000008/model.bin"), slurp(dir_ / "bf16/checkpoints/step_00000008/model.bin"));
  EXPECT_EQ(rows("part"), rows("bf16"));
  // the CPU's bf16 emulation (device cpu, precision bf16) computes the same bits
  precision_ = "bf16";
  ASSERT_EQ(train("cpubf16", "cpu"), 0);
  EXPECT_EQ(rows("cpubf16"), rows("bf16"));
}

INSTANTIATE_TEST_SUITE_P(Strategies, DevicePath, ::testing::Values("pre", "post", "geonorm", "ngpt", "residual"),
                         [](const auto& info) { return info.param; });

// The model alone, on every wave-2 block option: forward, backward and AdamW through guarded
// memory give the CPU's bits.
TEST(DevicePathModel, LlamaBlocksAndHypersphereStrategiesMatchTheCpu) {
  auto cpu = make_cpu_backend<float>();
  GuardedBackend<float> dev;
  ModelDims d{2, 2, 16, 29, 32, 9, {}};
  d.arch.rope = true;
  d.arch.swiglu = true;
  d.arch.hidden = 24;
  d.arch.bias = false;
  d.arch.tied = false;
  for (const char* strategy : {"pre", "angpt", "hybridnorm", "b2t"}) {
    // QK-norm where the strategy leaves q and k alone (angpt and hybridnorm normalize them)
    d.arch.qk_norm = std::string(strategy) == "pre" || std::string(strategy) == "b2t" ? QkNorm::Head : QkNorm::None;
    NormConfig nc;
    nc.strategy = strategy;
    const ModelPlan plan = make_plan(nc, d, "auto");
    OptimConfig oc;
    oc.lr = 1e-2;
    oc.grad_clip = 0.1;  // clipping active: the folded grad_scale path
    const LrSchedule sched{oc.lr, "constant", 0, 1.0, 10};
    std::vector<std::vector<float>> params;
    std::vector<std::vector<double>> losses;
    for (const Backend<float>* be : {static_cast<const Backend<float>*>(cpu.get()), static_cast<const Backend<float>*>(&dev)}) {
      GPT<float> m(d, plan, *be, 2, 9);
      std::vector<float> host(m.params.size());
      init_params(m.table(), plan.init, 3, host.data());
      apply_constraints(plan, m.table(), host.data());
      m.params.from_host(host);
      AdamW<float> opt(*be, m.table(), oc);
      losses.emplace_back();
      for (int step = 0; step < 3; ++step) {
        auto next = [&](int32_t* in, int32_t* tg) {
          for (int i = 0; i < 18; ++i) {
            in[i] = (i * 5 + step) % d.V;
            tg[i] = (i * 3 + 1 + step) % d.V;
          }
        };
        losses.back().push_back(train_step(m, opt, sched, oc, step, 2, next).loss);
      }
      params.push_back(m.params.to_host());
      EXPECT_EQ(m.logits_at(1, 8).size(), size_t(d.Vp));
    }
    EXPECT_EQ(losses[0], losses[1]) << strategy;
    EXPECT_EQ(params[0], params[1]) << strategy;
  }
  EXPECT_EQ(dev.live_allocations(), 0u);  // every buffer went back through release()
}

}  // namespace
