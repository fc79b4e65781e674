// Learning-rate schedule (configs/README.md, optim.*). Steps count from 0.
//   warm-up:  lr * (step + 1) / warmup_steps              for step < warmup_steps
//   then, with p = (step - warmup) / max(1, steps - warmup) and min = lr * min_lr_ratio:
//   cosine:   min + (lr - min) * (1 + cos(pi p)) / 2
//   linear:   lr - (lr - min) * p
//   constant: lr
#pragma once

#include <string>

namespace ng {

struct LrSchedule {
  double lr;
  std::string kind;  // cosine | linear | constant
  int warmup_steps;
  double min_lr_ratio;
  int total_steps;
  double at(int step) const;
};

}  // namespace ng
