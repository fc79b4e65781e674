#include "train/adamw.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace ng {

template <class T>
AdamW<T>::AdamW(const ParamTable& table, const OptimConfig& cfg, Shard shard)
    : cfg_(cfg), shard_(shard), m_(shard.size(), T(0)), v_(shard.size(), T(0)) {
  for (const auto& t : table.tensors()) {
    const size_t b = std::max(t.offset, shard.begin), e = std::min(t.offset + t.numel, shard.end);
    if (b < e) ranges_.push_back({b, e, decays(t.kind, cfg.decay_params) && cfg.weight_decay > 0, t.trainable});
  }
}

template <class T>
void AdamW<T>::step(T* params, const T* shard_grads, double lr, int step) {
  const double t = step + 1;
  const T b1 = T(cfg_.beta1), b2 = T(cfg_.beta2), eps = T(cfg_.eps);
  const T bc1 = T(1.0 - std::pow(cfg_.beta1, t)), bc2 = T(1.0 - std::pow(cfg_.beta2, t));
  const T lr_t = T(lr);
  // Moments and gradients are indexed from the shard's start; parameters globally.
  T* m = m_.data() - shard_.begin;
  T* v = v_.data() - shard_.begin;
  const T* grads = shard_grads - shard_.begin;
  for (const Range& r : ranges_) {
    if (!r.trainable) continue;  // e.g. GeoNorm's angle scalars with geonorm.learn_angle false
    const T decay = r.decay ? T(lr * cfg_.weight_decay) : T(0);
#pragma omp parallel for simd
    for (size_t i = r.begin; i < r.end; ++i) {
      const T g = grads[i];
      m[i] = b1 * m[i] + (T(1) - b1) * g;
      v[i] = b2 * v[i] + (T(1) - b2) * g * g;
      const T mhat = m[i] / bc1;
      const T vhat = v[i] / bc2;
      params[i] -= decay * params[i];
      params[i] -= lr_t * mhat / (std::sqrt(vhat) + eps);
    }
  }
}

template <class T>
double grad_norm(const T* grads, size_t n) {
  // Per-thread partial sums over a fixed static partition, added in thread order: OpenMP's own
  // reduction may combine partials in any order, which would break bitwise-reproducible runs.
  std::vector<double> partial(omp_get_max_threads(), 0.0);
#pragma omp parallel
  {
    double s = 0;
#pragma omp for schedule(static)
    for (size_t i = 0; i < n; ++i) s += double(grads[i]) * double(grads[i]);
    partial[omp_get_thread_num()] = s;
  }
  double s = 0;
  for (double p : partial) s += p;
  return std::sqrt(s);
}

template class AdamW<float>;
template class AdamW<double>;
template double grad_norm<float>(const float*, size_t);
template double grad_norm<double>(const double*, size_t);

}  // namespace ng
