#include "train/layer_stats.hpp"

#include <cmath>

namespace ng {
namespace {

template <class T>
void rms_and_max(const std::vector<T>& x, double& rms, double& max_abs) {
  const size_t n = x.size();
  double ss = 0, m = 0;
  for (size_t i = 0; i < n; ++i) {
    ss += double(x[i]) * x[i];
    m = std::max(m, std::abs(double(x[i])));
  }
  rms = std::sqrt(ss / double(n));
  max_abs = m;
}

template <class T>
double mean_of(const std::vector<T>& x) {
  double s = 0;
  for (T v : x) s += v;
  return s / double(x.size());
}

// Mean effective residual step |a| of a Lerp combine (nGPT, anGPT) in layer l: the learned
// per-channel vector times its reparameterization constant.
template <class T>
double mean_step(const GPT<T>& model, const std::vector<T>& params, const LerpPlan& lp, int l) {
  const ParamTensor& t = model.table().get(lp.alpha);
  const size_t per = t.numel / size_t(model.dims().L), off = t.offset + size_t(l) * per;
  double s = 0;
  for (size_t k = off; k < off + per; ++k) s += std::abs(lp.alpha_scale * double(params[k]));
  return s / double(per);
}

}  // namespace

template <class T>
nlohmann::json layer_stats(const GPT<T>& model, const std::vector<T>& before, int step) {
  const ModelDims& d = model.dims();
  const size_t N = size_t(model.batch()) * model.seq_len(), NC = N * d.C;
  const std::vector<T> params = model.params.to_host();
  const std::vector<grad_t<T>> grads = model.grads.to_host();
  const Memory& mem = model.backend();
  nlohmann::json layers = nlohmann::json::array();
  for (int l = 0; l < d.L; ++l) {
    const LayerActs<T>& a = model.layer_acts(l);
    nlohmann::json row = {{"layer", l}};
    double rms, mx;
    rms_and_max(download_vector(mem, a.attn.y, NC), rms, mx);
    row["resid_rms_attn"] = rms;
    row["max_abs_attn"] = mx;
    rms_and_max(download_vector(mem, a.mlp.y, NC), rms, mx);
    row["resid_rms"] = rms;
    row["max_abs"] = mx;
    double g2 = 0, w2 = 0, u2 = 0;
    for (const auto& t : model.table().tensors()) {
      if (!t.per_layer) continue;
      const size_t per = t.numel / size_t(d.L), off = t.offset + size_t(l) * per;
      for (size_t k = off; k < off + per; ++k) {
        const double g = double(grads[k]), w = before[k], u = double(params[k]) - w;
        g2 += g * g;
        w2 += w * w;
        u2 += u * u;
      }
    }
    row["grad_norm"] = std::sqrt(g2);
    row["update_ratio"] = w2 > 0 ? std::sqrt(u2 / w2) : 0.0;
    const BlockPlan& p = model.plan().blocks[l];
    if (p.attn.combine == Combine::Geodesic) {
      row["angle_attn"] = mean_of(download_vector(mem, a.attn.angle, N));
      row["clamped_attn"] = mean_of(download_vector(mem, a.attn.clamped, N));
    }
    if (p.mlp.combine == Combine::Geodesic) {
      row["angle_mlp"] = mean_of(download_vector(mem, a.mlp.angle, N));
      row["clamped_mlp"] = mean_of(download_vector(mem, a.mlp.clamped, N));
    }
    if (p.attn.combine == Combine::Lerp) row["step_attn"] = mean_step(model, params, p.attn.lerp, l);
    if (p.mlp.combine == Combine::Lerp) row["step_mlp"] = mean_step(model, params, p.mlp.lerp, l);
    layers.push_back(row);
  }
  return {{"step", step}, {"layers", layers}};
}

template nlohmann::json layer_stats<float>(const GPT<float>&, const std::vector<float>&, int);
template nlohmann::json layer_stats<double>(const GPT<double>&, const std::vector<double>&, int);

template nlohmann::json layer_stats<bf16>(const GPT<bf16>&, const std::vector<bf16>&, int);

}  // namespace ng
