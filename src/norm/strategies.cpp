// The strategy registry: the only place that knows strategy names (NORMS.md, wave 1). Each
// strategy is a function from (layer, config) to a BlockPlan plus its defaults and extra tensors.
#include <cmath>
#include <functional>
#include <map>

#include "config/config.hpp"
#include "core/errors.hpp"
#include "norm/plan.hpp"

namespace ng {
namespace {

struct Strategy {
  bool embed_norm = false;  // defaults (NORMS.md table), overridable by norm.embed_norm/final_norm
  bool final_norm = true;
  const char* init = "gpt2";
  std::vector<NormTensor> extra_norms;
  std::vector<ScalarTensor> extra_scalars;
  std::function<BlockPlan(int l, int L)> block;
};

// Sublayer building blocks. "ln1"/"ln2" are always each block's first attention/MLP norm in
// NORMS.md's order, which is how a plain GPT-2 file's ln1/ln2 map onto every strategy.
SublayerPlan pre_norm(const char* n, double scale = 1.0) {
  SublayerPlan s;
  s.input_norm = {n};
  s.input_scale = scale;
  return s;
}
SublayerPlan post_norm(const char* n, double alpha = 1.0) {
  SublayerPlan s;
  s.combine = Combine::NormAdd;
  s.combine_norm = {n};
  s.alpha = alpha;
  return s;
}

Strategy pre() {
  return {false, true, "gpt2", {}, {}, [](int, int) { return BlockPlan{pre_norm("ln1"), pre_norm("ln2")}; }};
}

Strategy post() {
  return {false, false, "gpt2", {}, {}, [](int, int) { return BlockPlan{post_norm("ln1"), post_norm("ln2")}; }};
}

Strategy peri() {
  auto sandwich = [](const char* in, const char* out) {
    SublayerPlan s = pre_norm(in);
    s.output_norm = {out};
    return s;
  };
  return {false, true, "gpt2", {{"lno1"}, {"lno2"}}, {},
          [=](int, int) { return BlockPlan{sandwich("ln1", "lno1"), sandwich("ln2", "lno2")}; }};
}

Strategy reordered() {
  auto out_norm = [](const char* n) {
    SublayerPlan s;
    s.output_norm = {n};
    return s;
  };
  return {false, true, "gpt2", {}, {}, [=](int, int) { return BlockPlan{out_norm("ln1"), out_norm("ln2")}; }};
}

Strategy mixln(double post_fraction) {
  return {false, true, "gpt2", {}, {}, [=](int l, int L) {
            // + 1e-9: 0.29 * 100 is 28.999... in binary; the fraction the user wrote is meant
            const int n_post = int(std::floor(post_fraction * L + 1e-9));
            return l < n_post ? BlockPlan{post_norm("ln1"), post_norm("ln2")}
                              : BlockPlan{pre_norm("ln1"), pre_norm("ln2")};
          }};
}

Strategy lns() {
  return {false, true, "plain", {}, {}, [](int l, int) {
            const double c = 1.0 / std::sqrt(double(l + 1));
            return BlockPlan{pre_norm("ln1", c), pre_norm("ln2", c)};
          }};
}

Strategy deepnorm() {
  return {false, false, "deepnorm", {}, {}, [](int, int L) {
            const double a = std::pow(2.0 * L, 0.25);
            return BlockPlan{post_norm("ln1", a), post_norm("ln2", a)};
          }};
}

Strategy b2t() {
  return {false, false, "gpt2", {}, {}, [](int, int) {
            BlockPlan b{post_norm("ln1"), post_norm("ln2")};
            b.mlp.skip_block_input = true;
            return b;
          }};
}

Strategy geonorm(const GeoNormConfig& g) {
  double (*decay)(int, int) = nullptr;
  if (g.decay == "harmonic") decay = [](int l, int) { return 1.0 / (l + 1); };
  if (g.decay == "sqrt") decay = [](int l, int) { return 1.0 / std::sqrt(double(l + 1)); };
  if (g.decay == "linear") decay = [](int l, int L) { return double(L - l) / L; };
  if (g.decay == "none") decay = [](int, int) { return 1.0; };
  NG_REQUIRE(decay != nullptr, "norm.geonorm.decay: unknown decay '{}' (known: harmonic, sqrt, linear, none)", g.decay);
  auto sublayer = [g, decay](const char* norm, const char* a, const char* b, int l, int L) {
    SublayerPlan s = g.input_norm ? pre_norm(norm) : SublayerPlan{};
    s.combine = Combine::Geodesic;
    s.geo = {a, b, decay(l, L), g.clamp};
    return s;
  };
  return {true, true, "gpt2", {},
          {{"geoa1", 1.0f, g.learn_angle}, {"geob1", 0.0f, g.learn_angle}, {"geoa2", 1.0f, g.learn_angle},
           {"geob2", 0.0f, g.learn_angle}},
          [=](int l, int L) {
            return BlockPlan{sublayer("ln1", "geoa1", "geob1", l, L), sublayer("ln2", "geoa2", "geob2", l, L)};
          }};
}

// DyT: Pre-LN placement with every norm a Dynamic Tanh (the scalars alpha are added in make_plan,
// one per norm site, because which sites exist depends on the embed/final switches).
Strategy dyt() {
  Strategy s = pre();
  return s;
}

struct Entry {
  const char* canonical;
  std::function<Strategy(const NormConfig&)> make;
};

const std::map<std::string, Entry>& registry() {
  static const std::map<std::string, Entry> r = {
      {"pre", {"pre", [](const NormConfig&) { return pre(); }}},
      {"post", {"post", [](const NormConfig&) { return post(); }}},
      {"peri", {"peri", [](const NormConfig&) { return peri(); }}},
      {"sandwich", {"peri", [](const NormConfig&) { return peri(); }}},
      {"reordered", {"reordered", [](const NormConfig&) { return reordered(); }}},
      {"mixln", {"mixln", [](const NormConfig& c) { return mixln(c.mixln.post_fraction); }}},
      {"lns", {"lns", [](const NormConfig&) { return lns(); }}},
      {"deepnorm", {"deepnorm", [](const NormConfig&) { return deepnorm(); }}},
      {"b2t", {"b2t", [](const NormConfig&) { return b2t(); }}},
      {"geonorm", {"geonorm", [](const NormConfig& c) { return geonorm(c.geonorm); }}},
      {"dyt", {"dyt", [](const NormConfig&) { return dyt(); }}},
  };
  return r;
}

std::string known_names() {
  std::string s;
  for (const auto& [name, e] : registry())
    s += (s.empty() ? "" : ", ") + name + (name != e.canonical ? std::string(" (= ") + e.canonical + ")" : "");
  return s;
}

}  // namespace

const char* norm_function_name(NormFunction f) {
  switch (f) {
    case NormFunction::LayerNorm: return "layernorm";
    case NormFunction::RMSNorm: return "rmsnorm";
    case NormFunction::DyT: return "dyt";
  }
  return "?";
}

std::vector<std::string> strategy_names() {
  std::vector<std::string> names;
  for (const auto& [name, e] : registry())
    if (name == e.canonical) names.push_back(name);
  return names;
}

ModelPlan make_plan(const NormConfig& cfg, int n_layer, const std::string& init_preset) {
  auto it = registry().find(cfg.strategy);
  NG_REQUIRE(it != registry().end(), "norm.strategy: unknown strategy '{}' (known: {})", cfg.strategy, known_names());
  const Strategy s = it->second.make(cfg);

  ModelPlan plan;
  plan.strategy = it->second.canonical;
  if (cfg.function == "layernorm") {
    plan.function = NormFunction::LayerNorm;
  } else if (cfg.function == "rmsnorm") {
    plan.function = NormFunction::RMSNorm;
  } else {
    fail_user("norm.function: unknown function '{}' (known: layernorm, rmsnorm)", cfg.function);
  }
  plan.eps = float(cfg.eps);
  plan.init = init_preset == "auto" ? s.init : init_preset;
  plan.extra_norms = s.extra_norms;
  plan.extra_scalars = s.extra_scalars;
  for (int l = 0; l < n_layer; ++l) plan.blocks.push_back(s.block(l, n_layer));
  if (cfg.embed_norm.value_or(s.embed_norm)) {
    plan.embed_norm = {"lne"};
    plan.extra_norms.push_back({"lne", false});
  }
  if (cfg.final_norm.value_or(s.final_norm)) plan.final_norm = {"lnf"};
  if (plan.strategy == "dyt") {
    // every norm is a DyT whatever norm.function says; one learned alpha per site
    plan.function = NormFunction::DyT;
    const float a0 = float(cfg.dyt.alpha0);
    plan.extra_scalars.push_back({"ln1a", a0, true, true});
    plan.extra_scalars.push_back({"ln2a", a0, true, true});
    if (plan.final_norm.active()) plan.extra_scalars.push_back({"lnfa", a0, true, false});
    if (plan.embed_norm.active()) plan.extra_scalars.push_back({"lnea", a0, true, false});
  }
  return plan;
}

}  // namespace ng
