// DivergenceGuard: the rules of train.on_divergence on synthetic loss / gradient-norm sequences.
#include <gtest/gtest.h>

#include <cmath>

#include "train/divergence.hpp"

using ng::DivergenceGuard;
using V = DivergenceGuard::Verdict;

namespace {

ng::TrainConfig mode(const char* m, double max_loss = 0) {
  ng::TrainConfig c;
  c.on_divergence = m;
  c.max_loss = max_loss;
  return c;
}

TEST(Divergence, StopModeStopsOnNonFiniteAndBound) {
  DivergenceGuard g(mode("stop", 10.0));
  std::string why;
  EXPECT_EQ(g.judge(3.0, 1.0, why), V::Apply);
  EXPECT_EQ(g.judge(100.0, 1.0, why), V::Stop);  // lines above the bound
  EXPECT_NE(why.find("train.max_loss"), std::string::npos);
  EXPECT_EQ(g.judge(NAN, 1.0, why), V::Stop);
  EXPECT_EQ(g.judge(3.0, INFINITY, why), V::Stop);
  // stop mode never judges outliers
  DivergenceGuard h(mode("stop"));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(h.judge(3.0 + 0.01 * (i % 3), 1.0, why), V::Apply);
  EXPECT_EQ(h.judge(30.0, 1.0, why), V::Apply);
}

TEST(Divergence, SkipModeSkipsPlantedSpikesOnlyAfterEnoughHistory) {
  DivergenceGuard g(mode("skip"));
  std::string why;
  // an early spike is accepted: fewer than kMinHistory steps to measure it against
  EXPECT_EQ(g.judge(50.0, 1.0, why), V::Apply);
  // ...and leaves the 128-step window after enough normal steps
  for (int i = 0; i < 150; ++i) ASSERT_EQ(g.judge(3.0 + 0.01 * (i % 5), 1.0 + 0.01 * (i % 7), why), V::Apply) << i;
  EXPECT_EQ(g.judge(3.9, 1.0, why), V::Skip);   // loss spike
  EXPECT_NE(why.find("z-score"), std::string::npos);
  EXPECT_EQ(g.judge(3.0, 50.0, why), V::Skip);  // gradient-norm spike
  EXPECT_EQ(g.judge(NAN, 1.0, why), V::Skip);   // non-finite: skipped, not fatal
  EXPECT_EQ(g.judge(3.02, 1.02, why), V::Apply);
  EXPECT_EQ(g.skipped(), 3);
}

TEST(Divergence, SkipModeGivesUpAfterConsecutiveSkips) {
  DivergenceGuard g(mode("skip"));
  std::string why;
  for (int i = 1; i < DivergenceGuard::kMaxConsecutiveSkips; ++i) ASSERT_EQ(g.judge(NAN, 1.0, why), V::Skip);
  EXPECT_EQ(g.judge(NAN, 1.0, why), V::Stop);
  EXPECT_NE(why.find("consecutive"), std::string::npos);
}

}  // namespace
