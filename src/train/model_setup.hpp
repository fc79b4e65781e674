// From a config to a ready model: dimensions (from the config or an init_from file's header),
// the strategy's plan, and initial weights.
#pragma once

#include <string>

#include "config/config.hpp"
#include "model/dims.hpp"
#include "model/gpt.hpp"
#include "norm/plan.hpp"

namespace ng {

struct ModelSpec {
  ModelDims dims;
  ModelPlan plan;
};

// The block options of the model section (docs/blocks.md), with the hidden width resolved.
BlockArch block_arch(const ModelConfig& m);

// Dimensions and plan for cfg. With model.init_from the file's header fixes the dimensions; a
// config value that differs from both the default and the file is an error.
ModelSpec resolve_model(const Config& cfg);

// Fills model.params: from model.init_from when set, else by the plan's init preset and cfg.seed.
// Returns the weights in full precision (the master weights under mixed precision).
template <class T>
std::vector<acc_t<T>> initialize_model(GPT<T>& model, const Config& cfg);

// Reads a model file's weights over `weights` (full precision, the table's layout: tensors the
// file lacks keep their values) and uploads them to the model, rounded to its storage type.
template <class T>
void load_weights(GPT<T>& model, const std::string& path, std::vector<acc_t<T>>& weights);

// Plan for a model file alone (sample/eval without a config): the strategy it records, or GPT-2.
ModelSpec model_spec_from_file(const std::string& path);

// Estimated FLOPs per trained token: 6N + 12 L T C (forward + backward; N = parameters).
double flops_per_token(const ModelDims& d, size_t n_params, int T);

}  // namespace ng
