// The parameter table: every learnable tensor by name, with its shape, init rule and kind.
//
// All parameters live in one contiguous buffer (and gradients, Adam moments in buffers of the same
// layout), so the optimizer, gradient reduction and checkpoint writer run over one flat array and
// need no per-strategy code. The first 16 tensors are GPT-2's in llm.c's file order (per-layer
// tensors stacked over layers: shape (L, ...)), which makes a pre/layernorm model file a single
// memcpy; a strategy's extra tensors are appended after them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/dims.hpp"
#include "norm/plan.hpp"

namespace ng {

// What a tensor is; decides weight decay (optim.decay_params) and the init rule.
enum class ParamKind { Embedding, Matrix, Gain, Bias, Scalar };

enum class InitRule {
  Normal,        // N(0, std^2), std = 0.02
  ResidualOut,   // output projections into the residual stream; depth-scaled under gpt2 init
  Zeros,
  Ones,
  Constant,      // ParamTensor::init_value (a strategy's scalars)
};

struct ParamTensor {
  std::string name;
  std::vector<int64_t> shape;  // full shape; per-layer tensors have L as the first dim
  ParamKind kind;
  InitRule init;
  bool per_layer = false;      // stacked over layers; layer l is the l-th slice of numel / L
  bool trainable = true;       // false: the optimizer leaves it as initialized
  float init_value = 0.0f;     // for InitRule::Constant
  size_t offset = 0;           // in elements, into the flat buffer
  size_t numel = 0;
};

class ParamTable {
 public:
  ParamTable(const ModelDims& dims, const ModelPlan& plan);

  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  size_t total() const { return total_; }
  // Elements of the 16 GPT-2 tensors (the part an llm.c model file holds; their shapes follow the
  // block options, docs/blocks.md).
  size_t gpt2_total() const { return gpt2_total_; }
  const ParamTensor& get(const std::string& name) const;
  const ParamTensor* find(const std::string& name) const;
  const ModelDims& dims() const { return dims_; }

 private:
  ParamTensor& add(std::string name, std::vector<int64_t> shape, ParamKind kind, InitRule init, bool per_layer);
  ModelDims dims_;
  std::vector<ParamTensor> tensors_;
  size_t total_ = 0;
  size_t gpt2_total_ = 0;
};

struct OptimConfig;
// Whether optim.decay_params applies weight decay to a tensor of this kind.
bool decays(ParamKind kind, const std::string& decay_params);

// Fills `params` by each tensor's init rule under the preset (NORMS.md, Initialization):
//   gpt2: matrices and embeddings N(0, 0.02^2), the residual output projections (attprojw,
//         fcprojw) N(0, (0.02/sqrt(2L))^2); plain: no depth scaling; deepnorm: plain, then the MLP
//         matrices and the attention value and output projections times (8L)^(-1/4).
//   Gains 1, biases 0, scalars their strategy's value. Each tensor draws from its own stream, so
//   every strategy starts from the same GPT-2 weights for the same seed.
template <class T>
void init_params(const ParamTable& table, const std::string& preset, uint64_t seed, T* params);

}  // namespace ng
