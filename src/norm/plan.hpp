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
#pragma once

#include <string>
#include <vector>

namespace ng {

// DyT (Dynamic Tanh, the `dyt` strategy): N(x) = g * tanh(alpha * x) + b with a learned scalar
// alpha per norm site, tensor "<site>a" next to the site's gain and bias.
enum class NormFunction { LayerNorm, RMSNorm, DyT };

// Which learnable norm a transform uses: the base name of a gain/bias pair in the parameter
// table ("ln1" -> "ln1w", "ln1b"). Empty = no norm at this site.
struct NormSite {
  std::string tensor;
  bool active() const { return !tensor.empty(); }
};

enum class Combine { Add, NormAdd, Geodesic };

struct GeodesicPlan {
  std::string a, b;  // per-layer scalar tensors of this sublayer
  double decay = 1.0;
  double clamp = 0.7853981633974483;
};

struct SublayerPlan {
  NormSite input_norm;  // u = input_scale * N(x) when active, else u = x
  double input_scale = 1.0;
  NormSite output_norm;  // g = N(f) when active, else g = f
  Combine combine = Combine::Add;
  NormSite combine_norm;         // NormAdd: the norm after the add
  double alpha = 1.0;            // NormAdd: weight of the stream x
  bool skip_block_input = false; // NormAdd: also add the block's input (b2t's MLP sublayer)
  GeodesicPlan geo;              // Geodesic
};

struct BlockPlan {
  SublayerPlan attn;
  SublayerPlan mlp;
};

// A norm the strategy adds to the parameter table beyond GPT-2's ln1, ln2 (per layer) and lnf,
// which always exist so that llm.c model files map one to one (NORMS.md). Gain "<name>w" and
// bias "<name>b" (the bias stays zero and unused under rmsnorm).
struct NormTensor {
  std::string name;  // base name, e.g. "lno1"
  bool per_layer = true;
};

// A learnable scalar per layer (GeoNorm's angle parameters), or a single one (per_layer false).
struct ScalarTensor {
  std::string name;
  float init = 0.0f;
  bool trainable = true;
  bool per_layer = true;
};

struct ModelPlan {
  std::string strategy;  // canonical name (aliases resolved), recorded in checkpoints
  NormFunction function = NormFunction::LayerNorm;
  float eps = 1e-5f;
  NormSite embed_norm;  // h0 = N(E[tok] + P[pos]) when active
  NormSite final_norm;  // logits = E . Nf(xL) when active
  std::vector<BlockPlan> blocks;
  std::vector<NormTensor> extra_norms;      // appended after the 16 GPT-2 tensors, in this order,
  std::vector<ScalarTensor> extra_scalars;  // then these
  std::string init;  // resolved init preset: gpt2 | plain | deepnorm
};

struct NormConfig;
// Compiles the config's norm section for a model of n_layer blocks. UserError for an unknown
// strategy or function.
ModelPlan make_plan(const NormConfig& cfg, int n_layer, const std::string& init_preset);

const char* norm_function_name(NormFunction f);

// Canonical strategy names (aliases excluded), for docs, tests and sweeps.
std::vector<std::string> strategy_names();

}  // namespace ng
