// Data parallelism on CPU processes over MPI (label mpi): N ranks x B rows train exactly like one
// rank with N*B rows or with B rows and N accumulation steps, with and without ZeRO-1; resume and
// failures of multi-rank runs.
#include <gtest/gtest.h>

#include <cmath>

#include "common/cli.hpp"
#include "data/shard.hpp"

using namespace ng::test;
using nlohmann::json;

namespace {

class DataParallel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // OpenMPI refuses root without these; CI runs as root.
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
  }
  void SetUp() override {
    if (std::system("command -v mpirun > /dev/null 2>&1") != 0) GTEST_SKIP() << "mpirun not installed";
    std::vector<int32_t> toks(80000);
    uint32_t x = 7;
    for (auto& t : toks) t = int32_t(((x = x * 1664525u + 1013904223u) >> 24) % 90 + 32);
    ng::write_shard(dir_ / "train_000000.bin", toks);
    ng::write_shard(dir_ / "val_000000.bin", std::vector<int32_t>(toks.begin(), toks.begin() + 8000));
    const json cfg = {{"model", {{"n_layer", 3}, {"n_head", 2}, {"d_model", 32}, {"seq_len", 32}, {"vocab_size", 257}}},
                      {"optim", {{"lr", 3e-3}, {"warmup_steps", 3}, {"weight_decay", 0.1}}},
                      {"train", {{"batch_size", 4}, {"steps", 30}}},
                      {"data", {{"train", dir_ / "train_000000.bin"}, {"val", dir_ / "val_000000.bin"}}},
                      {"eval", {{"every", 10}, {"batches", 3}}},
                      {"checkpoint", {{"every", 10}}},
                      {"seed", 11}};
    std::ofstream(dir_ / "cfg.json") << cfg.dump(2);
  }
  // Runs `normgpt train` on `ranks` processes with the given overrides; returns the exit code.
  CliResult train(int ranks, const std::string& run, const std::string& sets) {
    const std::string args = "train -c " + (dir_ / "cfg.json") + " -o " + (dir_ / run) + " " + sets;
    if (ranks == 1) return normgpt(args);
    const std::string log = dir_ / (run + ".log");
    const std::string cmd = "OMP_NUM_THREADS=1 timeout 120 mpirun -np " + std::to_string(ranks) + " " +
                            NORMGPT_BIN + " " + args + " > " + log + " 2>&1";
    const int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(log)};
  }
  // Two ranks, with rank 1 failing (`kind` fail | hang) at `step` (NORMGPT_FAULT, trainer.cpp).
  CliResult train_with_fault(const char* kind, int step, const std::string& run, const std::string& sets) {
    setenv("NORMGPT_FAULT", kind, 1);
    setenv("NORMGPT_FAULT_RANK", "1", 1);
    setenv("NORMGPT_FAULT_STEP", std::to_string(step).c_str(), 1);
    CliResult r = train(2, run, sets);
    unsetenv("NORMGPT_FAULT");
    return r;
  }
  std::vector<double> values(const std::string& run, const char* key) {
    std::vector<double> v;
    for (const auto& r : metric_rows(dir_ / (run + "/metrics.jsonl"), key)) v.push_back(r[key].get<double>());
    return v;
  }
  static double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
    EXPECT_EQ(a.size(), b.size());
    double d = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, std::abs(a[i] - b[i]));
    return d;
  }
  TempDir dir_{"mpi"};
};

TEST_F(DataParallel, SameLossesForOneRankAccumulationAndTwoRanks) {
  for (const char* strategy : {"pre", "peri", "geonorm"}) {
    const std::string s = std::string("--set norm.strategy=") + strategy;
    const std::string base = std::string(strategy) + "_b4";
    ASSERT_EQ(train(1, base, s).code, 0);
    ASSERT_EQ(train(1, std::string(strategy) + "_b2x2", s + " --set train.batch_size=2 --set train.grad_accum=2").code, 0);
    for (int zero : {0, 1}) {
      const std::string run = std::string(strategy) + "_2r_z" + std::to_string(zero);
      auto r = train(2, run, s + " --set train.batch_size=2 --set dist.zero=" + std::to_string(zero));
      ASSERT_EQ(r.code, 0) << r.out;
      const double d = max_diff(values(run, "train_loss"), values(base, "train_loss"));
      EXPECT_LT(d, 1e-5) << run;
      EXPECT_LT(max_diff(values(run, "val_loss"), values(base, "val_loss")), 1e-5) << run;
      std::printf("[dp %s] 2 ranks x B2 (zero %d) vs 1 rank x B4: max |train loss diff| over 30 steps %.2g\n", strategy,
                  zero, d);
    }
    const double da = max_diff(values(std::string(strategy) + "_b2x2", "train_loss"), values(base, "train_loss"));
    EXPECT_LT(da, 1e-5) << strategy;
    std::printf("[dp %s] 1 rank x B2 x accum 2 vs 1 rank x B4: max |train loss diff| %.2g\n", strategy, da);
  }
}

// dist.overlap (on by default, so the test above runs it): each block's gradients are averaged as
// soon as the backward pass leaves the block. With two ranks a sum is order-free, so averaging by
// blocks during the pass must give bitwise what one all-reduce after it gives, accumulation too.
TEST_F(DataParallel, OverlappedBucketsEqualOneAllReduceAfterBackward) {
  for (const char* strategy : {"pre", "b2t", "residual"}) {
    const std::string s = std::string("--set norm.strategy=") + strategy +
                          " --set train.batch_size=2 --set train.grad_accum=2 --set train.steps=12";
    const std::string on = std::string(strategy) + "_overlap", off = std::string(strategy) + "_after";
    auto r = train(2, on, s);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("block by block"), std::string::npos) << r.out;
    ASSERT_EQ(train(2, off, s + " --set dist.overlap=false").code, 0);
    EXPECT_EQ(values(on, "train_loss"), values(off, "train_loss")) << strategy;
    EXPECT_EQ(values(on, "grad_norm"), values(off, "grad_norm")) << strategy;
    EXPECT_EQ(slurp(dir_ / (on + "/checkpoints/step_00000012/model.bin")),
              slurp(dir_ / (off + "/checkpoints/step_00000012/model.bin")))
        << strategy;
  }
}

TEST_F(DataParallel, ZeroOneResumeEqualsUninterrupted) {
  const std::string sets = "--set train.batch_size=2 --set dist.zero=1";
  ASSERT_EQ(train(2, "full", sets).code, 0);
  auto r = train(2, "part", sets + " --stop-after 13");
  ASSERT_EQ(r.code, 0) << r.out;
  // every rank wrote its optimizer shard
  for (const char* f : {"state_r0.bin", "state_r1.bin", "model.bin"})
    EXPECT_TRUE(std::filesystem::exists(dir_ / (std::string("part/checkpoints/step_00000013/") + f))) << f;
  r = train(2, "part", sets + " --resume");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(values("part", "train_loss"), values("full", "train_loss"));
  EXPECT_EQ(values("part", "val_loss"), values("full", "val_loss"));
  // a different world size is refused with a clear message
  r = train(1, "part", "--set train.batch_size=2 --set dist.zero=1 --set train.steps=40 --resume");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("written by 2 processes"), std::string::npos) << r.out;
}

TEST_F(DataParallel, AFailingRankEndsEveryRank) {
  auto r = train_with_fault("fail", 3, "fail", "--set train.batch_size=2");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.code, 124) << "timed out: a rank hung";
  EXPECT_NE(r.out.find("injected fault on rank 1 at step 3"), std::string::npos) << r.out;
}

TEST_F(DataParallel, AHangingRankIsCaughtByTheCollectiveTimeout) {
  auto r = train_with_fault("hang", 2, "hang", "--set train.batch_size=2 --set dist.timeout_s=2");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.code, 124) << "timed out: the watchdog did not fire";
  EXPECT_NE(r.out.find("has not finished after 2 s (dist.timeout_s)"), std::string::npos) << r.out;
}

}  // namespace
