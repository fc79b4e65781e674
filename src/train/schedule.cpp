#include "train/schedule.hpp"

#include <algorithm>
#include <cmath>

namespace ng {

double LrSchedule::at(int step) const {
  if (step < warmup_steps) return lr * double(step + 1) / double(warmup_steps);
  const double min_lr = lr * min_lr_ratio;
  const double p = double(step - warmup_steps) / double(std::max(1, total_steps - warmup_steps));
  if (kind == "cosine") return min_lr + 0.5 * (1.0 + std::cos(M_PI * p)) * (lr - min_lr);
  if (kind == "linear") return lr - (lr - min_lr) * p;
  return lr;
}

}  // namespace ng
