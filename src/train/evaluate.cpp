#include "train/evaluate.hpp"

#include <algorithm>
#include <vector>

namespace ng {

template <class T>
double evaluate(GPT<T>& model, DataLoader& val, int batches) {
  const size_t n = size_t(model.batch()) * model.seq_len();
  std::vector<int32_t> in(n), tg(n);
  val.reset();
  // Never read a sample twice: cap at one pass over the val stream.
  const int count = int(std::min<uint64_t>(uint64_t(std::max(batches, 1)), val.samples_per_epoch()));
  double sum = 0;
  for (int i = 0; i < count; ++i) {
    val.next_batch(in.data(), tg.data());
    sum += model.forward(in.data(), tg.data());
  }
  return sum / count;
}

template double evaluate<float>(GPT<float>&, DataLoader&, int);
template double evaluate<double>(GPT<double>&, DataLoader&, int);

template double evaluate<bf16>(GPT<bf16>&, DataLoader&, int);

}  // namespace ng
