// The strategy registry: the only place that knows strategy names (NORMS.md, wave 1). Each
// strategy is a function from (layer, config) to a BlockPlan plus its defaults and extra tensors.
#include <cmath>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "core/errors.hpp"
#include "norm/angpt_factors.hpp"
#include "norm/plan.hpp"

namespace ng {
namespace {

struct Strategy {
  bool embed_norm = false;  // defaults (NORMS.md table), overridable by norm.embed_norm/final_norm
  bool final_norm = true;
  const char* init = "gpt2";
  std::vector<NormTensor> extra_norms;
  std::vector<VectorTensor> extra_vectors;
  std::function<BlockPlan(int l, int L)> block;
  // Whole-model pieces beyond the blocks (wave 2: hypersphere strategies); may be empty.
  std::function<void(ModelPlan&)> finish;
  bool owns_qk = false;       // normalizes q and k itself: model.qk_norm must stay none
  bool has_norm_layers = true;  // false: norm.embed_norm / final_norm cannot be set
};

// What a strategy constructor may read: the config's norm section and the model's dimensions.
struct Ctx {
  const NormConfig& cfg;
  const ModelDims& dims;
};

// Plan building blocks (named constructors, so that adding a field to a plan struct never
// changes what an existing strategy means).
NormSite site(const char* tensor, bool per_head = false) {
  NormSite n;
  n.tensor = tensor;
  n.per_head = per_head;
  return n;
}
NormSite l2_site(const char* gain = "", double gain_scale = 1.0, bool per_head = false) {
  NormSite n;
  n.l2 = true;
  n.l2_gain = gain;
  n.gain_scale = gain_scale;
  n.per_head = per_head;
  return n;
}
BlockPlan block_of(SublayerPlan attn, SublayerPlan mlp) {
  BlockPlan b;
  b.attn = std::move(attn);
  b.mlp = std::move(mlp);
  return b;
}
Strategy make_strategy(bool embed_norm, bool final_norm, const char* init, std::vector<NormTensor> norms,
                       std::vector<VectorTensor> vectors, std::function<BlockPlan(int, int)> block) {
  Strategy s;
  s.embed_norm = embed_norm;
  s.final_norm = final_norm;
  s.init = init;
  s.extra_norms = std::move(norms);
  s.extra_vectors = std::move(vectors);
  s.block = std::move(block);
  return s;
}

// Sublayer building blocks. "ln1"/"ln2" are always each block's first attention/MLP norm in
// NORMS.md's order, which is how a plain GPT-2 file's ln1/ln2 map onto every strategy.
SublayerPlan pre_norm(const char* n, double scale = 1.0) {
  SublayerPlan s;
  s.input_norm = site(n);
  s.input_scale = scale;
  return s;
}
SublayerPlan post_norm(const char* n, double alpha = 1.0) {
  SublayerPlan s;
  s.combine = Combine::NormAdd;
  s.combine_norm = site(n);
  s.alpha = alpha;
  return s;
}

Strategy pre() {
  Strategy s;
  s.block = [](int, int) { return block_of(pre_norm("ln1"), pre_norm("ln2")); };
  return s;
}

Strategy post() {
  Strategy s;
  s.final_norm = false;
  s.block = [](int, int) { return block_of(post_norm("ln1"), post_norm("ln2")); };
  return s;
}

Strategy peri() {
  auto sandwich = [](const char* in, const char* out) {
    SublayerPlan s = pre_norm(in);
    s.output_norm = site(out);
    return s;
  };
  return make_strategy(false, true, "gpt2", {{"lno1", true}, {"lno2", true}}, {},
          [=](int, int) { return block_of(sandwich("ln1", "lno1"), sandwich("ln2", "lno2")); });
}

Strategy reordered() {
  auto out_norm = [](const char* n) {
    SublayerPlan s;
    s.output_norm = site(n);
    return s;
  };
  return make_strategy(false, true, "gpt2", {}, {}, [=](int, int) { return block_of(out_norm("ln1"), out_norm("ln2")); });
}

Strategy mixln(double post_fraction) {
  return make_strategy(false, true, "gpt2", {}, {}, [=](int l, int L) {
            // + 1e-9: 0.29 * 100 is 28.999... in binary; the fraction the user wrote is meant
            const int n_post = int(std::floor(post_fraction * L + 1e-9));
            return l < n_post ? block_of(post_norm("ln1"), post_norm("ln2"))
                              : block_of(pre_norm("ln1"), pre_norm("ln2"));
          });
}

Strategy lns() {
  return make_strategy(false, true, "plain", {}, {}, [](int l, int) {
            const double c = 1.0 / std::sqrt(double(l + 1));
            return block_of(pre_norm("ln1", c), pre_norm("ln2", c));
          });
}

Strategy deepnorm() {
  return make_strategy(false, false, "deepnorm", {}, {}, [](int, int L) {
            const double a = std::pow(2.0 * L, 0.25);
            return block_of(post_norm("ln1", a), post_norm("ln2", a));
          });
}

Strategy b2t() {
  return make_strategy(false, false, "gpt2", {}, {}, [](int, int) {
            BlockPlan b = block_of(post_norm("ln1"), post_norm("ln2"));
            b.mlp.skip_block_input = true;
            return b;
          });
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
  return make_strategy(true, true, "gpt2", {},
             {{"geoa1", 1.0f, g.learn_angle, true, 1}, {"geob1", 0.0f, g.learn_angle, true, 1},
              {"geoa2", 1.0f, g.learn_angle, true, 1}, {"geob2", 0.0f, g.learn_angle, true, 1}},
             [=](int l, int L) {
               return block_of(sublayer("ln1", "geoa1", "geob1", l, L), sublayer("ln2", "geoa2", "geob2", l, L));
             });
}

// DyT: Pre-LN placement with every norm a Dynamic Tanh (the scalars alpha are added in make_plan,
// one per norm site, because which sites exist depends on the embed/final switches).
Strategy dyt() { return pre(); }

// ResiDual: post-norm stream x plus an unnormalized stream d that sums every sublayer output;
// the head reads xL + Nf(dL) (plan.dual_stream).
Strategy residual() {
  Strategy s;
  s.block = [](int, int) {
    BlockPlan b = block_of(post_norm("ln1"), post_norm("ln2"));
    b.attn.dual = b.mlp.dual = true;
    return b;
  };
  s.finish = [](ModelPlan& p) { p.dual_stream = true; };
  return s;
}

// HybridNorm: q, k, v normalized inside attention (no input norm), post-norm-style MLP whose
// residual continues from the normalized value. The star variant makes block 0 plain pre.
Strategy hybridnorm(const Ctx& c, bool star) {
  const bool per_head = c.dims.arch.qk_norm != QkNorm::Full;  // none -> the paper's per-head norm
  Strategy s;
  s.extra_norms = {{"lnq", true}, {"lnk", true}, {"lnv", true}};
  s.owns_qk = true;
  s.block = [=](int l, int) {
    if (star && l == 0) return block_of(pre_norm("ln1"), pre_norm("ln2"));
    BlockPlan b = block_of(SublayerPlan{}, pre_norm("ln2"));
    b.mlp.residual_from_input = true;
    b.qkv.q = site("lnq", per_head);
    b.qkv.k = site("lnk", per_head);
    b.qkv.v = site("lnv", per_head);
    return b;
  };
  return s;
}

// nGPT and anGPT share the attention (l2-normalized q, k per head with the learned gain sqk,
// softmax scale sqrt(hs)), the interpolating residual with per-channel steps attna/mlpa, the learned
// logit scale sz, and nGPT's reparameterization: a stored vector starting at 1/sqrt(C) acts as
// value * sqrt(C) (times the initial effective value), so all of them train at a common scale.
Strategy hypersphere(const Ctx& c, bool exact) {
  const ModelDims& d = c.dims;
  const double sqrtC = std::sqrt(double(d.C)), hs = d.hs();
  const float inv_sqrtC = float(1.0 / sqrtC);
  Strategy s;
  s.final_norm = false;
  s.owns_qk = true;
  s.has_norm_layers = false;
  s.extra_vectors = {{"sqk", inv_sqrtC, true, true, d.C}, {"attna", inv_sqrtC, true, true, d.C},
                     {"mlpa", inv_sqrtC, true, true, d.C}};
  if (exact) s.extra_vectors.push_back({"suv", 1.0f, true, true, d.fc_rows()});
  s.extra_vectors.push_back({"sz", inv_sqrtC, true, false, d.Vp});
  const double a_scale = c.cfg.ngpt.alpha_init * sqrtC;
  s.block = [=](int, int) {
    auto sublayer = [&](const char* alpha) {
      SublayerPlan p;
      p.combine = Combine::Lerp;
      p.lerp = {alpha, a_scale, /*abs_alpha=*/exact, /*nu=*/!exact};
      if (exact) p.output_norm = p.combine_norm = l2_site();
      return p;
    };
    BlockPlan b = block_of(sublayer("attna"), sublayer("mlpa"));
    b.qkv.q = b.qkv.k = l2_site("sqk", sqrtC, true);
    b.qkv.softmax_scale = std::sqrt(hs);
    return b;
  };
  s.finish = [=](ModelPlan& p) {
    p.logit_scale = "sz";
    p.logit_scale_k = sqrtC;
    if (exact) {
      p.embed_norm = l2_site();
      p.mlp_in_scale = "suv";
      p.mlp_in_scale_k = sqrtC;
    } else {
      const double H = d.H();
      p.factors = {d.arch.rope ? 1.0 : 1.0 / std::sqrt(2.0), std::sqrt(d.C / H),
                   angpt_activation_factor(d.arch.swiglu, d.H()), std::sqrt(H / d.C)};
    }
    // nGPT: every vector along the model-width axis (the output projections' columns); anGPT: each
    // weight row (PyTorch layout, the input axis), which is what its factors sqrt(d_in/d_out) assume.
    p.constraint = exact ? ConstraintMode::Normalize : ConstraintMode::UnitBall;
    p.constrained = {{"wte", false}, {"qkvw", false}, {"fcw", false}, {"attprojw", exact}, {"fcprojw", exact}};
    if (!d.arch.tied) p.constrained.push_back({"lmheadw", false});
    if (!exact && !d.arch.rope) p.constrained.push_back({"wpe", false});
  };
  return s;
}

struct Entry {
  const char* canonical;
  std::function<Strategy(const Ctx&)> make;
};

const std::map<std::string, Entry>& registry() {
  static const std::map<std::string, Entry> r = {
      {"pre", {"pre", [](const Ctx&) { return pre(); }}},
      {"post", {"post", [](const Ctx&) { return post(); }}},
      {"peri", {"peri", [](const Ctx&) { return peri(); }}},
      {"sandwich", {"peri", [](const Ctx&) { return peri(); }}},
      {"reordered", {"reordered", [](const Ctx&) { return reordered(); }}},
      {"mixln", {"mixln", [](const Ctx& c) { return mixln(c.cfg.mixln.post_fraction); }}},
      {"lns", {"lns", [](const Ctx&) { return lns(); }}},
      {"deepnorm", {"deepnorm", [](const Ctx&) { return deepnorm(); }}},
      {"b2t", {"b2t", [](const Ctx&) { return b2t(); }}},
      {"geonorm", {"geonorm", [](const Ctx& c) { return geonorm(c.cfg.geonorm); }}},
      {"dyt", {"dyt", [](const Ctx&) { return dyt(); }}},
      {"residual", {"residual", [](const Ctx&) { return residual(); }}},
      {"hybridnorm", {"hybridnorm", [](const Ctx& c) { return hybridnorm(c, false); }}},
      {"hybridnorm_star", {"hybridnorm_star", [](const Ctx& c) { return hybridnorm(c, true); }}},
      {"ngpt", {"ngpt", [](const Ctx& c) { return hypersphere(c, true); }}},
      {"angpt", {"angpt", [](const Ctx& c) { return hypersphere(c, false); }}},
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
    case NormFunction::L2: return "l2";
  }
  return "?";
}

std::vector<std::string> strategy_names() {
  std::vector<std::string> names;
  for (const auto& [name, e] : registry())
    if (name == e.canonical) names.push_back(name);
  return names;
}

ModelPlan make_plan(const NormConfig& cfg, const ModelDims& dims, const std::string& init_preset) {
  auto it = registry().find(cfg.strategy);
  NG_REQUIRE(it != registry().end(), "norm.strategy: unknown strategy '{}' (known: {})", cfg.strategy, known_names());
  const Ctx ctx{cfg, dims};
  const Strategy s = it->second.make(ctx);

  ModelPlan plan;
  plan.strategy = it->second.canonical;
  if (cfg.function == "layernorm") {
    plan.function = NormFunction::LayerNorm;
  } else if (cfg.function == "rmsnorm") {
    plan.function = NormFunction::RMSNorm;
  } else {
    fail_user("norm.function: unknown function '{}' (known: layernorm, rmsnorm)", cfg.function);
  }
  NG_REQUIRE(!s.owns_qk || dims.arch.qk_norm == QkNorm::None || plan.strategy.rfind("hybridnorm", 0) == 0,
             "model.qk_norm: norm.strategy {} normalizes q and k itself; leave model.qk_norm at none",
             plan.strategy);
  NG_REQUIRE(s.has_norm_layers || (!cfg.embed_norm && !cfg.final_norm),
             "norm.embed_norm/final_norm: norm.strategy {} has no norm layers; leave them unset", plan.strategy);
  plan.eps = float(cfg.eps);
  plan.init = init_preset == "auto" ? s.init : init_preset;
  Config recorded;
  recorded.norm = cfg;
  plan.norm_json = config_to_json(recorded)["norm"].dump();
  plan.extra_norms = s.extra_norms;
  plan.extra_vectors = s.extra_vectors;
  for (int l = 0; l < dims.L; ++l) plan.blocks.push_back(s.block(l, dims.L));
  if (dims.arch.qk_norm != QkNorm::None && !s.owns_qk) {
    const bool per_head = dims.arch.qk_norm == QkNorm::Head;
    for (BlockPlan& b : plan.blocks) {
      b.qkv.q = site("lnq", per_head);
      b.qkv.k = site("lnk", per_head);
    }
    plan.extra_norms.push_back({"lnq", true});
    plan.extra_norms.push_back({"lnk", true});
  }
  if (cfg.embed_norm.value_or(s.embed_norm)) {
    plan.embed_norm = site("lne");
    plan.extra_norms.push_back({"lne", false});
  }
  if (cfg.final_norm.value_or(s.final_norm)) plan.final_norm = site("lnf");
  if (s.finish) s.finish(plan);
  if (plan.strategy == "dyt") {
    // every norm is a DyT whatever norm.function says; one learned alpha per site
    plan.function = NormFunction::DyT;
    const float a0 = float(cfg.dyt.alpha0);
    plan.extra_vectors.push_back({"ln1a", a0, true, true, 1});
    plan.extra_vectors.push_back({"ln2a", a0, true, true, 1});
    if (plan.final_norm.active()) plan.extra_vectors.push_back({"lnfa", a0, true, false, 1});
    if (plan.embed_norm.active()) plan.extra_vectors.push_back({"lnea", a0, true, false, 1});
    if (dims.arch.qk_norm != QkNorm::None) {
      plan.extra_vectors.push_back({"lnqa", a0, true, true, 1});
      plan.extra_vectors.push_back({"lnka", a0, true, true, 1});
    }
  }
  return plan;
}

}  // namespace ng
