// The strategy registry: the only place that knows strategy names (NORMS.md).
#include <functional>
#include <map>

#include "config/config.hpp"
#include "core/errors.hpp"
#include "norm/plan.hpp"

namespace ng {
namespace {

struct StrategyDefaults {
  bool embed_norm;
  bool final_norm;
  const char* init;
};

using Builder = std::function<BlockPlan(int layer, int n_layer)>;

struct Strategy {
  StrategyDefaults defaults;
  std::vector<NormTensor> extra_tensors;  // norms beyond GPT-2's ln1/ln2/lnf, in checkpoint order
  Builder block;
};

// Pre-LN (GPT-2): y = x + A(N(x)); x' = y + F(N(y)).
Strategy pre_ln() {
  return {{false, true, "gpt2"},
          {},
          [](int, int) {
            BlockPlan b;
            b.attn.input_norm = {"ln1"};
            b.mlp.input_norm = {"ln2"};
            return b;
          }};
}

const std::map<std::string, std::function<Strategy()>>& registry() {
  static const std::map<std::string, std::function<Strategy()>> r = {
      {"pre", pre_ln},
  };
  return r;
}

std::string known_names() {
  std::string s;
  for (const auto& [name, _] : registry()) s += (s.empty() ? "" : ", ") + name;
  return s;
}

}  // namespace

const char* norm_function_name(NormFunction f) {
  return f == NormFunction::LayerNorm ? "layernorm" : "rmsnorm";
}

ModelPlan make_plan(const NormConfig& cfg, int n_layer, const std::string& init_preset) {
  auto it = registry().find(cfg.strategy);
  NG_REQUIRE(it != registry().end(), "norm.strategy: unknown strategy '{}' (known: {})", cfg.strategy, known_names());
  Strategy s = it->second();

  ModelPlan plan;
  plan.strategy = it->first;
  if (cfg.function == "layernorm") {
    plan.function = NormFunction::LayerNorm;
  } else if (cfg.function == "rmsnorm") {
    plan.function = NormFunction::RMSNorm;
  } else {
    fail_user("norm.function: unknown function '{}' (known: layernorm, rmsnorm)", cfg.function);
  }
  plan.eps = float(cfg.eps);
  plan.init = init_preset == "auto" ? s.defaults.init : init_preset;
  plan.extra_norms = s.extra_tensors;
  for (int l = 0; l < n_layer; ++l) plan.blocks.push_back(s.block(l, n_layer));
  if (cfg.embed_norm.value_or(s.defaults.embed_norm)) {
    plan.embed_norm = {"lne"};
    plan.extra_norms.push_back({"lne", false});
  }
  if (cfg.final_norm.value_or(s.defaults.final_norm)) plan.final_norm = {"lnf"};
  return plan;
}

}  // namespace ng
