#include "model/params.hpp"

#include <cmath>

#include "core/errors.hpp"
#include "core/rng.hpp"

namespace ng {

ParamTable::ParamTable(const ModelDims& d, const ModelPlan& plan) : dims_(d) {
  const int64_t L = d.L, C = d.C, H = d.H(), F = d.fc_rows();
  // Linear-map biases without model.bias keep their place with 0 elements (docs/blocks.md).
  const int64_t on = d.arch.bias ? 1 : 0;
  using K = ParamKind;
  using I = InitRule;
  // llm.c's order: the model file depends on it.
  add("wte", {d.Vp, C}, K::Embedding, I::Normal, false);
  add("wpe", {d.pos_rows(), C}, K::Embedding, I::Normal, false);
  add("ln1w", {L, C}, K::Gain, I::Ones, true);
  add("ln1b", {L, C}, K::Bias, I::Zeros, true);
  add("qkvw", {L, 3 * C, C}, K::Matrix, I::Normal, true);
  add("qkvb", {L, on * 3 * C}, K::Bias, I::Zeros, true);
  add("attprojw", {L, C, C}, K::Matrix, I::ResidualOut, true);
  add("attprojb", {L, on * C}, K::Bias, I::Zeros, true);
  add("ln2w", {L, C}, K::Gain, I::Ones, true);
  add("ln2b", {L, C}, K::Bias, I::Zeros, true);
  add("fcw", {L, F, C}, K::Matrix, I::Normal, true);
  add("fcb", {L, on * F}, K::Bias, I::Zeros, true);
  add("fcprojw", {L, C, H}, K::Matrix, I::ResidualOut, true);
  add("fcprojb", {L, on * C}, K::Bias, I::Zeros, true);
  add("lnfw", {C}, K::Gain, I::Ones, false);
  add("lnfb", {C}, K::Bias, I::Zeros, false);
  gpt2_total_ = total_;
  if (!d.arch.tied) add("lmheadw", {d.Vp, C}, K::Matrix, I::Normal, false);
  for (const auto& n : plan.extra_norms) {
    std::vector<int64_t> shape = n.per_layer ? std::vector<int64_t>{L, C} : std::vector<int64_t>{C};
    add(n.name + "w", shape, K::Gain, I::Ones, n.per_layer);
    add(n.name + "b", shape, K::Bias, I::Zeros, n.per_layer);
  }
  for (const auto& s : plan.extra_vectors) {
    // width 1 keeps the historical shapes (L) and (1) of the scalars
    std::vector<int64_t> shape = s.per_layer ? std::vector<int64_t>{L} : std::vector<int64_t>{};
    if (s.width != 1 || !s.per_layer) shape.push_back(s.width);
    ParamTensor& t = add(s.name, shape, K::Scalar, I::Constant, s.per_layer);
    t.trainable = s.trainable;
    t.init_value = s.init;
  }
}

ParamTensor& ParamTable::add(std::string name, std::vector<int64_t> shape, ParamKind kind, InitRule init,
                             bool per_layer) {
  size_t n = 1;
  for (auto s : shape) n *= size_t(s);
  ParamTensor t;
  t.name = std::move(name);
  t.shape = std::move(shape);
  t.kind = kind;
  t.init = init;
  t.per_layer = per_layer;
  t.offset = total_;
  t.numel = n;
  tensors_.push_back(std::move(t));
  total_ += n;
  return tensors_.back();
}

const ParamTensor* ParamTable::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const ParamTensor& ParamTable::get(const std::string& name) const {
  const ParamTensor* t = find(name);
  NG_CHECK(t != nullptr, "no parameter tensor named '{}'", name);
  return *t;
}

bool decays(ParamKind kind, const std::string& decay_params) {
  if (decay_params == "all") return true;
  if (decay_params == "matrices") return kind == ParamKind::Matrix;
  return kind == ParamKind::Matrix || kind == ParamKind::Embedding;  // matrices_embeddings
}

template <class T>
void init_params(const ParamTable& table, const std::string& preset, uint64_t seed, T* params) {
  NG_REQUIRE(preset == "gpt2" || preset == "plain" || preset == "deepnorm",
             "model.init: unknown preset '{}' (known: gpt2, plain, deepnorm)", preset);
  const double base_std = 0.02;
  const double residual_std = preset == "gpt2" ? base_std / std::sqrt(2.0 * table.dims().L) : base_std;
  // Each tensor draws from its own stream (seed, tensor index), so adding a tensor to the table
  // never changes the init of the others: strategies start from identical GPT-2 weights.
  for (size_t i = 0; i < table.tensors().size(); ++i) {
    const ParamTensor& t = table.tensors()[i];
    Rng rng(seed * 1000003ull + i);
    T* p = params + t.offset;
    for (size_t k = 0; k < t.numel; ++k) {
      switch (t.init) {
        case InitRule::Normal: p[k] = T(base_std * rng.normal()); break;
        case InitRule::ResidualOut: p[k] = T(residual_std * rng.normal()); break;
        case InitRule::Zeros: p[k] = T(0); break;
        case InitRule::Ones: p[k] = T(1); break;
        case InitRule::Constant: p[k] = T(t.init_value); break;
      }
    }
  }
  if (preset == "deepnorm") {
    // DeepNet: beta = (8L)^(-1/4) on the value and output projections and the MLP matrices;
    // query and key keep the base init.
    const ModelDims& d = table.dims();
    const double beta = std::pow(8.0 * d.L, -0.25);
    const size_t C = d.C;
    auto scale = [&](const std::string& name, size_t first, size_t count) {
      const ParamTensor& t = table.get(name);
      const size_t per = t.numel / size_t(d.L);
      for (int l = 0; l < d.L; ++l)
        for (size_t k = first; k < first + count; ++k) params[t.offset + l * per + k] *= T(beta);
    };
    scale("qkvw", 2 * C * C, C * C);  // rows 2C..3C of (3C, C): the value projection
    scale("attprojw", 0, C * C);
    scale("fcw", 0, size_t(d.fc_rows()) * C);
    scale("fcprojw", 0, size_t(d.H()) * C);
  }
  // The padded vocabulary rows never receive gradient; keep them zero like llm.c.
  const ModelDims& d = table.dims();
  for (const char* name : {"wte", "lmheadw"}) {
    const ParamTensor* t = table.find(name);
    if (t)
      for (size_t k = size_t(d.V) * d.C; k < t->numel; ++k) params[t->offset + k] = T(0);
  }
}

template void init_params<float>(const ParamTable&, const std::string&, uint64_t, float*);
template void init_params<double>(const ParamTable&, const std::string&, uint64_t, double*);

}  // namespace ng
