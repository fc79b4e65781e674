#include "train/divergence.hpp"

#include <cmath>

#include <fmt/format.h>

namespace ng {

double DivergenceGuard::Window::zscore(double v) const {
  if (int(values.size()) < kMinHistory) return 0.0;
  double mean = 0, var = 0;
  for (double x : values) mean += x;
  mean /= double(values.size());
  for (double x : values) var += (x - mean) * (x - mean);
  const double sd = std::sqrt(var / double(values.size()));
  return sd > 0 ? (v - mean) / sd : 0.0;
}

void DivergenceGuard::Window::push(double v) {
  values.push_back(v);
  if (int(values.size()) > kWindow) values.pop_front();
}

DivergenceGuard::Verdict DivergenceGuard::judge(double loss, double grad_norm, std::string& why) {
  why.clear();
  if (!std::isfinite(loss) || !std::isfinite(grad_norm)) {
    why = fmt::format("loss {} / gradient norm {} is not finite", loss, grad_norm);
  } else if (cfg_.max_loss > 0 && loss > cfg_.max_loss) {
    why = fmt::format("loss {:.4f} is above train.max_loss {}", loss, cfg_.max_loss);
  }
  const bool skip_mode = cfg_.on_divergence == "skip";
  if (!why.empty() && !skip_mode) return Verdict::Stop;
  if (why.empty() && skip_mode) {
    const double zl = loss_.zscore(loss), zn = norm_.zscore(grad_norm);
    if (zl > cfg_.skip_zscore || zn > cfg_.skip_zscore)
      why = fmt::format("outlier step: loss z-score {:.2f}, gradient-norm z-score {:.2f} (train.skip_zscore {})", zl,
                        zn, cfg_.skip_zscore);
  }
  if (why.empty()) {
    consecutive_ = 0;
    loss_.push(loss);
    norm_.push(grad_norm);
    return Verdict::Apply;
  }
  ++skipped_;
  if (++consecutive_ >= kMaxConsecutiveSkips) {
    why += fmt::format(" ({} consecutive skipped steps)", consecutive_);
    return Verdict::Stop;
  }
  return Verdict::Skip;
}

}  // namespace ng
