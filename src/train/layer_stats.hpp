// Layer-statistics rows for metrics.jsonl (every log.layer_stats_every steps): per block, the
// quantities the norm-placement papers plot.
//   resid_rms_attn / resid_rms   RMS of the residual stream after the attention / MLP sublayer
//   max_abs_attn / max_abs       max |activation| of the stream there (massive activations)
//   grad_norm                    L2 norm of the block's parameter gradients, before clipping
//   update_ratio                 ||theta_after - theta_before|| / ||theta_before|| over the block
//   angle_attn / angle_mlp       GeoNorm only: mean update angle t (radians) over tokens
//   clamped_attn / clamped_mlp   GeoNorm only: fraction of tokens where a clamp was active
// Activations are those of the step's last micro-batch forward pass. model.grads holds the
// averaged gradients before clipping (clipping is folded into the optimizer step). Everything is
// read through host copies, so any backend's memory works.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "model/gpt.hpp"

namespace ng {

template <class T>
nlohmann::json layer_stats(const GPT<T>& model, const std::vector<T>& params_before, int step);

}  // namespace ng
