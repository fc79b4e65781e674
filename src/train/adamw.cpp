#include "train/adamw.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/errors.hpp"

namespace ng {

template <class T>
AdamW<T>::AdamW(const Backend<T>& backend, const ParamTable& table, const OptimConfig& cfg, Shard shard)
    : be_(backend), cfg_(cfg), shard_(shard), m_(backend, shard.size()), v_(backend, shard.size()) {
  if constexpr (is_mixed_precision<T>) master_ = Buffer<A>(backend, shard.size());
  for (const auto& t : table.tensors()) {
    const size_t b = std::max(t.offset, shard.begin), e = std::min(t.offset + t.numel, shard.end);
    if (b < e) ranges_.push_back({b, e, decays(t.kind, cfg.decay_params) && cfg.weight_decay > 0, t.trainable});
  }
}

template <class T>
void AdamW<T>::set_master(const std::vector<A>& w) {
  if constexpr (is_mixed_precision<T>) {
    NG_CHECK(w.size() == master_.size(), "{} master weights for a shard of {}", w.size(), master_.size());
    master_.from_host(w);
  }
}

template <class T>
void AdamW<T>::set_moments(const std::vector<A>& m, const std::vector<A>& v) {
  NG_CHECK(m.size() == m_.size() && v.size() == v_.size(), "AdamW moments of {}/{} elements for a shard of {}",
           m.size(), v.size(), m_.size());
  m_.from_host(m);
  v_.from_host(v);
}

template <class T>
void AdamW<T>::step(T* params, const grad_t<T>* shard_grads, double lr, int step, double grad_scale) {
  const double t = step + 1;
  AdamWArgs<T> a{};
  a.lr = A(lr);
  a.beta1 = A(cfg_.beta1);
  a.beta2 = A(cfg_.beta2);
  a.bc1 = A(1.0 - std::pow(cfg_.beta1, t));
  a.bc2 = A(1.0 - std::pow(cfg_.beta2, t));
  a.eps = A(cfg_.eps);
  a.grad_scale = A(grad_scale);
  for (const Range& r : ranges_) {
    if (!r.trainable) continue;  // e.g. GeoNorm's angle scalars with geonorm.learn_angle false
    // Moments and gradients are indexed from the shard's start; parameters globally.
    const size_t local = r.begin - shard_.begin;
    a.params = params + r.begin;
    a.grads = shard_grads + local;
    a.m = m_.data() + local;
    a.v = v_.data() + local;
    if constexpr (is_mixed_precision<T>) a.master = master_.data() + local;
    a.n = r.end - r.begin;
    a.decay = r.decay ? A(lr * cfg_.weight_decay) : A(0);
    be_.adamw_update(a);
  }
}

template <class T>
double grad_norm(const Backend<T>& backend, const grad_t<T>* grads, size_t n) {
  return std::sqrt(backend.sum_squares({grads, n}));
}

template class AdamW<float>;
template class AdamW<double>;
template class AdamW<bf16>;
template double grad_norm<float>(const Backend<float>&, const float*, size_t);
template double grad_norm<double>(const Backend<double>&, const double*, size_t);
template double grad_norm<bf16>(const Backend<bf16>&, const float*, size_t);

}  // namespace ng
