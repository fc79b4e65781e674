#include "train/data_parallel.hpp"

#include <cmath>
#include <type_traits>

#include "core/errors.hpp"

namespace ng {

template <class T>
DataParallel<T>::DataParallel(Communicator& comm, size_t n, bool zero)
    : comm_(comm), zero_(zero), shard_(zero ? Shard::of(n, comm.rank(), comm.world()) : Shard{0, n}) {
  NG_CHECK(!zero || (std::is_same_v<T, float>), "ZeRO-1 runs in fp32");
  if (zero_) grad_shard_.resize(shard_.size());
}

template <class T>
double DataParallel<T>::reduce(GPT<T>& model) {
  const size_t n = model.grads.size();
  if constexpr (std::is_same_v<T, float>) {
    if (zero_) {
      comm_.reduce_scatter_mean(model.grads.data(), grad_shard_.data(), n);
      double ss = grad_norm(grad_shard_.data(), grad_shard_.size());
      ss *= ss;
      comm_.allreduce_sum(&ss, 1);
      return std::sqrt(ss);
    }
  }
  comm_.allreduce_mean(model.grads.data(), n);
  return grad_norm(model.grads.data(), n);
}

template <class T>
void DataParallel<T>::update(GPT<T>& model, AdamW<T>& opt, double lr, int step, double clip_factor) {
  T* g = shard_grads(model);
  if (clip_factor != 1.0) {
    const T f = T(clip_factor);
    for (size_t i = 0; i < shard_.size(); ++i) g[i] *= f;
  }
  opt.step(model.params.data(), g, lr, step);
  if constexpr (std::is_same_v<T, float>) {
    if (zero_) comm_.allgather_shards(model.params.data(), model.params.size());
  }
}

template <class T>
void DataParallel<T>::gather_grads(GPT<T>& model) {
  if constexpr (std::is_same_v<T, float>) {
    if (!zero_) return;
    std::copy(grad_shard_.begin(), grad_shard_.end(), model.grads.begin() + long(shard_.begin));
    comm_.allgather_shards(model.grads.data(), model.grads.size());
  }
}

template class DataParallel<float>;
template class DataParallel<double>;

}  // namespace ng
