// The config key table: the one place that lists every config key, its field in the structs and
// its rule. The JSON reader, the unknown-key check, the `--set` path check, the serializer and the
// docs check (tests/unit/test_config.cpp compares configs/README.md against it) all walk this
// table, so they cannot drift apart. Adding a key = a field in config.hpp + one line here + one
// row in configs/README.md.
//
// Internal to src/config/ and its tests; the rest of the program uses config.hpp.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"

namespace ng::config_detail {

// A per-key rule: a numeric range, an enumeration, or "non-empty string". Rules that involve two
// keys (d_model divisible by n_head, ...) live in check_cross_key_rules (convert.cpp).
struct Rule {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  std::vector<std::string_view> choices;  // non-empty: an enumeration
  bool non_empty = false;

  // "", ">= 1", "> 0", "in [0, 1)", "one of cosine | linear | constant", "non-empty"
  std::string describe() const;
  // The problem with a value ("must be >= 1, got 0"), or nullopt if it is fine.
  std::optional<std::string> check(double v) const;
  std::optional<std::string> check(const std::string& v) const;
};

inline Rule any() { return {}; }
// [lo, hi] with either end optionally open.
inline Rule in_range(double lo, double hi, bool lo_open = false, bool hi_open = false) {
  Rule r;
  r.lo = lo, r.hi = hi, r.lo_open = lo_open, r.hi_open = hi_open;
  return r;
}
inline Rule at_least(double lo) { return in_range(lo, std::numeric_limits<double>::infinity()); }
inline Rule above(double lo) { return in_range(lo, std::numeric_limits<double>::infinity(), true); }
inline Rule one_of(std::initializer_list<std::string_view> c) {
  Rule r;
  r.choices = c;
  return r;
}
inline Rule non_empty() {
  Rule r;
  r.non_empty = true;
  return r;
}

inline constexpr double kPi = 3.14159265358979323846;

// THE TABLE. `C` is Config or const Config; `key(path, field, rule)` is called once per key, in
// the order the keys are documented. Field types: int, double, bool, std::string, uint64_t,
// std::optional<bool>, std::vector<std::string>.
template <class C, class V>
void visit_config(C& c, V&& key) {
  key("model.n_layer", c.model.n_layer, at_least(1));
  key("model.n_head", c.model.n_head, at_least(1));
  key("model.d_model", c.model.d_model, at_least(1));
  key("model.seq_len", c.model.seq_len, at_least(1));
  key("model.max_seq_len", c.model.max_seq_len, at_least(0));
  key("model.vocab_size", c.model.vocab_size, at_least(1));
  key("model.padded_vocab", c.model.padded_vocab, at_least(0));
  key("model.init", c.model.init, one_of({"auto", "gpt2", "plain", "deepnorm"}));
  key("model.init_from", c.model.init_from, any());
  key("model.pos", c.model.pos, one_of({"learned", "rope"}));
  key("model.rope_theta", c.model.rope_theta, above(0));
  key("model.mlp", c.model.mlp, one_of({"gelu", "swiglu"}));
  key("model.mlp_hidden", c.model.mlp_hidden, at_least(0));
  key("model.bias", c.model.bias, any());
  key("model.qk_norm", c.model.qk_norm, one_of({"none", "head", "full"}));
  key("model.tie_embeddings", c.model.tie_embeddings, any());

  key("norm.strategy", c.norm.strategy, non_empty());  // names are checked by the norm registry
  key("norm.function", c.norm.function, one_of({"layernorm", "rmsnorm"}));
  key("norm.eps", c.norm.eps, above(0));
  key("norm.embed_norm", c.norm.embed_norm, any());
  key("norm.final_norm", c.norm.final_norm, any());
  key("norm.mixln.post_fraction", c.norm.mixln.post_fraction, in_range(0, 1));
  key("norm.geonorm.decay", c.norm.geonorm.decay, one_of({"harmonic", "sqrt", "linear", "none"}));
  key("norm.geonorm.clamp", c.norm.geonorm.clamp, in_range(0, kPi, /*lo_open=*/true));
  key("norm.geonorm.learn_angle", c.norm.geonorm.learn_angle, any());
  key("norm.geonorm.input_norm", c.norm.geonorm.input_norm, any());
  key("norm.dyt.alpha0", c.norm.dyt.alpha0, above(0));
  key("norm.ngpt.alpha_init", c.norm.ngpt.alpha_init, above(0));

  key("optim.lr", c.optim.lr, above(0));
  key("optim.schedule", c.optim.schedule, one_of({"cosine", "linear", "constant"}));
  key("optim.warmup_steps", c.optim.warmup_steps, at_least(0));
  key("optim.min_lr_ratio", c.optim.min_lr_ratio, in_range(0, 1));
  key("optim.weight_decay", c.optim.weight_decay, at_least(0));
  key("optim.decay_params", c.optim.decay_params, one_of({"matrices_embeddings", "matrices", "all"}));
  key("optim.beta1", c.optim.beta1, in_range(0, 1, false, /*hi_open=*/true));
  key("optim.beta2", c.optim.beta2, in_range(0, 1, false, /*hi_open=*/true));
  key("optim.eps", c.optim.eps, above(0));
  key("optim.grad_clip", c.optim.grad_clip, at_least(0));

  key("train.batch_size", c.train.batch_size, at_least(1));
  key("train.grad_accum", c.train.grad_accum, at_least(1));
  key("train.steps", c.train.steps, at_least(1));
  key("train.on_divergence", c.train.on_divergence, one_of({"stop", "skip"}));
  key("train.max_loss", c.train.max_loss, at_least(0));
  key("train.skip_zscore", c.train.skip_zscore, above(0));

  key("data.train", c.data.train, any());
  key("data.val", c.data.val, any());
  key("data.shuffle", c.data.shuffle, any());

  key("eval.every", c.eval.every, at_least(0));
  key("eval.batches", c.eval.batches, at_least(0));

  key("log.every", c.log.every, at_least(1));
  key("log.layer_stats_every", c.log.layer_stats_every, at_least(0));
  key("log.op_timing", c.log.op_timing, any());

  key("checkpoint.every", c.checkpoint.every, at_least(0));
  key("checkpoint.keep", c.checkpoint.keep, at_least(0));

  key("sample.tokens", c.sample.tokens, at_least(0));
  key("sample.temperature", c.sample.temperature, above(0));

  key("dist.zero", c.dist.zero, in_range(0, 1));
  key("dist.timeout_s", c.dist.timeout_s, above(0));
  key("dist.master_addr", c.dist.master_addr, non_empty());
  key("dist.master_port", c.dist.master_port, in_range(1, 65535));
  key("dist.overlap", c.dist.overlap, any());

  key("device", c.device, one_of({"auto", "cpu", "cuda"}));
  key("precision", c.precision, one_of({"auto", "fp32", "bf16"}));
  key("seed", c.seed, any());
}

// The JSON type a field accepts, as written in messages and in configs/README.md.
inline const char* type_name(const int*) { return "integer"; }
inline const char* type_name(const double*) { return "number"; }
inline const char* type_name(const bool*) { return "boolean"; }
inline const char* type_name(const std::string*) { return "string"; }
inline const char* type_name(const uint64_t*) { return "non-negative integer"; }
inline const char* type_name(const std::optional<bool>*) { return "boolean or null"; }
inline const char* type_name(const std::vector<std::string>*) { return "string or array of strings"; }

// A field's value as JSON (unset optional -> null).
template <class T>
nlohmann::json field_to_json(const T& v) { return nlohmann::json(v); }
inline nlohmann::json field_to_json(const std::optional<bool>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

struct KeyInfo {
  std::string path;        // "model.n_layer"
  std::string type;        // "integer"
  nlohmann::json default_value;
  std::string rule;        // Rule::describe()
};

// Every key in table order, with its default (from a default-constructed Config).
const std::vector<KeyInfo>& config_keys();
bool is_config_key(const std::string& path);
// "model", "norm", "norm.mixln", ...: the objects that hold keys.
bool is_config_section(const std::string& path);
// " (did you mean 'model.n_layer'?)" for a close known key or section, else "".
std::string did_you_mean(const std::string& unknown_path);

// Where each key's value came from (file path, or "--set"), for error messages after `extends`
// merging and overrides; keys not listed come from `fallback`.
struct Origins {
  std::string fallback;
  std::map<std::string, std::string> by_key;
  const std::string& of(const std::string& path) const {
    auto it = by_key.find(path);
    return it == by_key.end() ? fallback : it->second;
  }
};

// "configs/x.json: model.n_layer" or "--set model.n_layer": the prefix of every message about a key.
std::string where(const std::string& origin, const std::string& path);

// Unknown keys and types only (no ranges): used on each file of an `extends` chain and on each
// `--set` value, so that those errors name the file they come from. Returns the parsed config
// (defaults where keys are missing).
Config check_keys_and_types(const nlohmann::json& j, const Origins& origins);

// check_keys_and_types plus per-key rules and cross-key rules.
Config config_from_json_traced(const nlohmann::json& j, const Origins& origins);

}  // namespace ng::config_detail
