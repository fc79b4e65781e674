// Divergence detection (train.on_divergence, configs/README.md): decides, after a step's backward
// pass and before its update, whether the update is applied, skipped, or the run stops.
#pragma once

#include <deque>
#include <string>

#include "config/config.hpp"

namespace ng {

class DivergenceGuard {
 public:
  enum class Verdict { Apply, Skip, Stop };

  explicit DivergenceGuard(const TrainConfig& cfg) : cfg_(cfg) {}
  // Judges one step; `why` says what was wrong when the verdict is not Apply.
  Verdict judge(double loss, double grad_norm, std::string& why);
  int skipped() const { return skipped_; }

  static constexpr int kWindow = 128;          // accepted steps the z-scores are measured against
  static constexpr int kMinHistory = 32;       // no outlier test before this many
  static constexpr int kMaxConsecutiveSkips = 20;

 private:
  struct Window {
    std::deque<double> values;
    double zscore(double v) const;
    void push(double v);
  };
  TrainConfig cfg_;
  Window loss_, norm_;
  int skipped_ = 0, consecutive_ = 0;
};

}  // namespace ng
