#include "train/data_parallel.hpp"

#include <cmath>
#include <type_traits>

#include "core/errors.hpp"

namespace ng {

template <class T>
DataParallel<T>::DataParallel(Communicator& comm, const Backend<T>& backend, size_t n, bool zero)
    : comm_(comm), be_(backend), zero_(zero), shard_(zero ? Shard::of(n, comm.rank(), comm.world()) : Shard{0, n}) {
  NG_REQUIRE(!zero || (std::is_same_v<T, float>),
             "dist.zero 1 runs in fp32 for now (precision bf16 would shard its fp32 master weights; not built yet)");
  if (zero_) grad_shard_ = Buffer<grad_t<T>>(backend, shard_.size());
}

template <class T>
double DataParallel<T>::reduce(GPT<T>& model) {
  const size_t n = model.grads.size();
  if constexpr (std::is_same_v<T, float>) {
    if (zero_) {
      if (comm_.world() == 1)  // one rank owns everything: a copy in the backend's memory
        be_.copy(grad_shard_.data(), model.grads.data(), n * sizeof(grad_t<T>));
      else
        comm_.reduce_scatter_mean(model.grads.data(), grad_shard_.data(), n);
      double ss = be_.sum_squares({grad_shard_.data(), grad_shard_.size()});
      comm_.allreduce_sum(&ss, 1);
      return std::sqrt(ss);
    }
  }
  comm_.allreduce_mean(model.grads.data(), n);
  return grad_norm(be_, model.grads.data(), n);
}

template <class T>
void DataParallel<T>::update(GPT<T>& model, AdamW<T>& opt, double lr, int step, double clip_factor) {
  opt.step(model.params.data(), shard_grads(model), lr, step, clip_factor);
  if constexpr (std::is_same_v<T, float>) {
    if (zero_) comm_.allgather_shards(model.params.data(), model.params.size());
  }
}

template <class T>
void DataParallel<T>::gather_grads(GPT<T>& model) {
  if constexpr (std::is_same_v<T, float>) {
    if (!zero_) return;
    be_.copy(model.grads.data() + shard_.begin, grad_shard_.data(), grad_shard_.size() * sizeof(grad_t<T>));
    comm_.allgather_shards(model.grads.data(), model.grads.size());
  }
}

template class DataParallel<float>;
template class DataParallel<double>;
template class DataParallel<bf16>;

}  // namespace ng
