#include "train/data_parallel.hpp"

#include <cmath>
#include <type_traits>

#include "core/errors.hpp"

namespace ng {

template <class T>
DataParallel<T>::DataParallel(Communicator& comm, const Backend<T>& backend, size_t n, bool zero, bool overlap)
    : comm_(comm),
      be_(backend),
      zero_(zero),
      overlap_(overlap && !zero && comm.world() > 1 && std::is_same_v<grad_t<T>, float>),
      shard_(zero ? Shard::of(n, comm.rank(), comm.world()) : Shard{0, n}) {
  NG_REQUIRE(!zero || (std::is_same_v<T, float>),
             "dist.zero 1 runs in fp32 for now (precision bf16 would shard its fp32 master weights; not built yet)");
  if (zero_) grad_shard_ = Buffer<grad_t<T>>(backend, shard_.size());
}

// Buckets: block l's slice of every per-layer tensor (final once the pass has left block l), and
// at the end every other tensor (embeddings, final norm, head: written until the very last op).
template <class T>
void DataParallel<T>::attach(GPT<T>& model) {
  if constexpr (std::is_same_v<grad_t<T>, float>) {
    if (!overlap_) return;
    attached_ = true;
    model.set_grads_ready_hook([this, &model](int layer) {
      const size_t L = size_t(model.dims().L);
      for (const ParamTensor& t : model.table().tensors()) {
        if (t.numel == 0 || t.per_layer != (layer >= 0)) continue;
        const size_t per = t.per_layer ? t.numel / L : t.numel;
        const size_t off = t.offset + (t.per_layer ? size_t(layer) * per : 0);
        comm_.allreduce_mean_start(model.grads.data() + off, per);
      }
      if (layer < 0) model.set_grads_ready_hook(nullptr);  // this pass is done
    });
  }
}

template <class T>
double DataParallel<T>::reduce(GPT<T>& model) {
  const size_t n = model.grads.size();
  if (attached_) {  // every bucket was started during the backward pass
    attached_ = false;
    comm_.finish_pending();
    return grad_norm(be_, model.grads.data(), n);
  }
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
