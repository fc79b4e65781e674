// Training smoke test: every strategy trains configs/strategies/tiny_<strategy>.json (100 steps of
// configs/tiny.json on the Brown corpus, byte level) with finite, decreasing loss and well-formed
// layer statistics. Needs the corpus that scripts/setup.sh prepares.
#include <gtest/gtest.h>

#include "norm/plan.hpp"

#include <cmath>

#include "common/cli.hpp"

using namespace ng::test;

namespace {

const std::string kSrc = NORMGPT_SOURCE_DIR;

class StrategyTraining : public ::testing::TestWithParam<std::string> {};

TEST_P(StrategyTraining, LossIsFiniteAndDecreases) {
  if (!std::filesystem::exists(kSrc + "/data/brown_byte/train_000000.bin"))
    GTEST_SKIP() << "data/brown_byte is missing: run scripts/setup.sh first";
  const std::string s = GetParam();
  TempDir dir("strategy_train_" + s);
  auto r = normgpt("train -c " + kSrc + "/configs/strategies/tiny_" + s + ".json -o " + (dir / "run") +
                   " --set 'data.train=\"" + kSrc + "/data/brown_byte/train_*.bin\"' --set 'data.val=\"" + kSrc +
                   "/data/brown_byte/val_*.bin\"'");
  ASSERT_EQ(r.code, 0) << r.out;
  auto rows = metric_rows(dir / "run/metrics.jsonl", "train_loss");
  ASSERT_EQ(rows.size(), 100u);
  double first = 0, last = 0;
  for (int i = 0; i < 10; ++i) {
    first += rows[i]["train_loss"].get<double>() / 10;
    last += rows[90 + i]["train_loss"].get<double>() / 10;
  }
  for (const auto& row : rows) ASSERT_TRUE(std::isfinite(row["train_loss"].get<double>()));
  EXPECT_LT(last, first - 1.0) << s << ": first-10 mean " << first << ", last-10 mean " << last;
  auto vals = metric_rows(dir / "run/metrics.jsonl", "val_loss");
  ASSERT_GE(vals.size(), 2u);
  EXPECT_LT(vals.back()["val_loss"].get<double>(), vals.front()["val_loss"].get<double>());
  auto stats = metric_rows(dir / "run/metrics.jsonl", "layers");
  ASSERT_EQ(stats.size(), 4u);  // steps 0, 25, 50, 75
  for (const auto& st : stats) {
    ASSERT_EQ(st["layers"].size(), 2u);
    for (const auto& l : st["layers"]) {
      for (const char* k : {"resid_rms_attn", "resid_rms", "max_abs_attn", "max_abs", "grad_norm", "update_ratio"})
        EXPECT_TRUE(l[k].is_number() && std::isfinite(l[k].get<double>())) << s << " " << k;
      EXPECT_EQ(l.contains("angle_attn"), s == "geonorm");
      EXPECT_EQ(l.contains("step_mlp"), s == "ngpt" || s == "angpt");
      if (l.contains("step_mlp"))  // starts at norm.ngpt.alpha_init (0.05) and moves with training
        EXPECT_TRUE(l["step_mlp"].get<double>() > 0.0 && l["step_mlp"].get<double>() < 1.0) << s;
    }
  }
  std::printf("[train %s] train loss %.3f -> %.3f, val %.4f\n", s.c_str(), first, last,
              vals.back()["val_loss"].get<double>());
}

INSTANTIATE_TEST_SUITE_P(Tiny, StrategyTraining,
                         ::testing::ValuesIn(ng::strategy_names()),  // every strategy has a tiny config
                         [](const auto& info) { return info.param; });

// The block options (docs/blocks.md) end to end: a llama-style model trains, writes a checkpoint
// that records its options, and `sample` rebuilds the same model from that file alone.
TEST(BlockOptions, LlamaStyleModelTrainsAndItsCheckpointSamples) {
  if (!std::filesystem::exists(kSrc + "/data/brown_byte/train_000000.bin"))
    GTEST_SKIP() << "data/brown_byte is missing: run scripts/setup.sh first";
  TempDir dir("block_options_train");
  auto r = normgpt("train -c " + kSrc + "/configs/tiny_llama.json -o " + (dir / "run") +
                   " --set 'data.train=\"" + kSrc + "/data/brown_byte/train_*.bin\"' --set 'data.val=\"" + kSrc +
                   "/data/brown_byte/val_*.bin\"'");
  ASSERT_EQ(r.code, 0) << r.out;
  auto vals = metric_rows(dir / "run/metrics.jsonl", "val_loss");
  ASSERT_GE(vals.size(), 2u);
  EXPECT_LT(vals.back()["val_loss"].get<double>(), vals.front()["val_loss"].get<double>() - 1.0);
  auto s = normgpt("sample --checkpoint " + (dir / "run/checkpoints/step_00000100/model.bin") + " -n 8");
  EXPECT_EQ(s.code, 0) << s.out;
}

}  // namespace
