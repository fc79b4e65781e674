// The per-block plan: what a normalization strategy compiles into (NORMS.md, "one possible
// decomposition"). The model executes a plan; it never looks at a strategy's name. Only
// norm/strategies.cpp maps names to plans.
//
// A block is two sublayers (attention, then MLP). Each sublayer, from its input stream x:
//   u = in(x)          input transform: identity, or c(l) * N(x) with its own norm tensors
//   f = Sublayer(u)
//   g = out(f)         output transform: identity, or N(f)
//   y = combine(x, g)  residual combine:
//       Add       y = x + g
//       NormAdd   y = N(alpha x + g [+ block input])      (post, deepnorm, b2t)
//       Geodesic  y = Geo(x, g; a, b, decay(l), clamp)    (geonorm, ops/geodesic.hpp)
//       Lerp      y = [N](w(a) ((1-a) x + a g))            (ngpt, angpt, ops/lerp.hpp)
// plus the wave-2 pieces (docs/blocks.md): norms on q, k, v, ResiDual's second stream, anGPT's
// constant factors, nGPT's learned scales, and a constraint on the matrices after each step.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/dims.hpp"

namespace ng {

// DyT (Dynamic Tanh, the `dyt` strategy): N(x) = g * tanh(alpha x) + b with a learned scalar
// alpha per norm site, tensor "<site>a" next to the site's gain and bias. L2: x / ||x|| (nGPT,
// anGPT), never a configured function but what a site with `l2` set computes.
enum class NormFunction { LayerNorm, RMSNorm, DyT, L2 };

// Which norm a transform applies. A learnable norm names the base of its tensors in the parameter
// table ("ln1" -> gain "ln1w", bias "ln1b", DyT alpha "ln1a") and computes the plan's function.
// An l2 site computes exact l2 normalization, with an optional gain vector `l2_gain` (nGPT's sqk).
struct NormSite {
  std::string tensor;
  bool l2 = false;
  std::string l2_gain;
  double gain_scale = 1.0;  // constant factor on the output (a reparameterization constant)
  bool per_head = false;    // statistics per attention head rather than over the whole row
  bool active() const { return !tensor.empty() || l2; }
};

enum class Combine { Add, NormAdd, Geodesic, Lerp };

struct GeodesicPlan {
  std::string a, b;  // per-layer scalar tensors of this sublayer
  double decay = 1.0;
  double clamp = 0.7853981633974483;
};

// y = w(a) ((1-a) x + a g), a = alpha_scale * alpha (ops/lerp.hpp), then combine_norm if active.
struct LerpPlan {
  std::string alpha;  // per-layer vector (C)
  double alpha_scale = 1.0;
  bool abs_alpha = false;
  bool nu = false;
};

struct SublayerPlan {
  NormSite input_norm;  // u = input_scale * N(x) when active, else u = x
  double input_scale = 1.0;
  bool residual_from_input = false;  // the combine continues from u instead of x (HybridNorm's MLP)
  NormSite output_norm;  // g = N(f) when active, else g = f
  Combine combine = Combine::Add;
  NormSite combine_norm;         // NormAdd: the norm after the add; Lerp: an optional norm after it
  double alpha = 1.0;            // NormAdd: weight of the stream x
  bool skip_block_input = false; // NormAdd: also add the block's input (b2t's MLP sublayer)
  GeodesicPlan geo;              // Geodesic
  LerpPlan lerp;                 // Lerp
  bool dual = false;             // g also adds into the second stream (ResiDual)
};

// Norms on the attention's q, k, v after the projection (before RoPE), and the softmax scale.
struct QkvPlan {
  NormSite q, k, v;
  double softmax_scale = 0;  // 0: 1/sqrt(hs)
  bool any() const { return q.active() || k.active() || v.active(); }
};

struct BlockPlan {
  SublayerPlan attn;
  SublayerPlan mlp;
  QkvPlan qkv;
};

// anGPT's constant factors (docs/blocks.md); 1 for every other strategy.
struct Factors {
  double embed = 1.0;   // on E[tok] + P[t]
  double fc = 1.0;      // on the up projection's output
  double act = 1.0;     // on the activation's output
  double fcproj = 1.0;  // on the down projection's output
};

// A norm the strategy adds to the parameter table beyond GPT-2's ln1, ln2 (per layer) and lnf,
// which always exist so that llm.c model files map one to one (NORMS.md). Gain "<name>w" and
// bias "<name>b" (the bias stays zero and unused under rmsnorm).
struct NormTensor {
  std::string name;  // base name, e.g. "lno1"
  bool per_layer = true;
};

// A learnable vector per layer (GeoNorm's angle scalars have width 1, nGPT's alphas width C), or a
// single one (per_layer false). Never weight-decayed under the default optim.decay_params.
struct VectorTensor {
  std::string name;
  float init = 0.0f;
  bool trainable = true;
  bool per_layer = true;
  int64_t width = 1;
};

// What the post-optimizer-step hook does to a matrix (nGPT: normalize, anGPT: project into the
// unit ball), along the model-width axis: each row (columns = false) or each column.
enum class ConstraintMode { None, Normalize, UnitBall };
struct MatrixConstraint {
  std::string tensor;
  bool columns = false;
};

struct ModelPlan {
  std::string strategy;  // canonical name (aliases resolved), recorded in checkpoints
  NormFunction function = NormFunction::LayerNorm;
  float eps = 1e-5f;
  NormSite embed_norm;  // h0 = N(factors.embed (E[tok] + P[pos])) when active
  NormSite final_norm;  // logits = E . Nf(xL) when active (dual_stream: E . (xL + Nf(dL)))
  bool dual_stream = false;  // ResiDual's second stream d (sublayers with `dual` add into it)
  std::string logit_scale;   // a learned vector (Vp) multiplying the logits, or empty
  double logit_scale_k = 1.0;
  std::string mlp_in_scale;  // a learned per-layer vector on the up projection's output, or empty
  double mlp_in_scale_k = 1.0;
  Factors factors;
  std::vector<BlockPlan> blocks;
  std::vector<NormTensor> extra_norms;      // appended after the GPT-2 tensors, in this order,
  std::vector<VectorTensor> extra_vectors;  // then these
  ConstraintMode constraint = ConstraintMode::None;  // after every optimizer step and at init
  std::vector<MatrixConstraint> constrained;
  bool has_constraints() const { return constraint != ConstraintMode::None && !constrained.empty(); }
  std::string init;  // resolved init preset: gpt2 | plain | deepnorm
  // The norm section this plan was compiled from (JSON), recorded in model files so that a file
  // alone rebuilds the same plan (nGPT's alpha_init, GeoNorm's decay, ... are not in the shapes).
  std::string norm_json;
};

struct NormConfig;
// Compiles the config's norm section for a model of these dimensions and block options. UserError
// for an unknown strategy or function, or a block option the strategy cannot take.
ModelPlan make_plan(const NormConfig& cfg, const ModelDims& dims, const std::string& init_preset);

const char* norm_function_name(NormFunction f);

// Canonical strategy names (aliases excluded), for docs, tests and sweeps.
std::vector<std::string> strategy_names();

}  // namespace ng
