#include "train/model_setup.hpp"

#include "core/errors.hpp"
#include "model/constraints.hpp"
#include "model/model_file.hpp"

namespace ng {
namespace {

// A model key the config may leave at its default or repeat; the file's value wins.
template <class V>
void adopt(V& cfg_value, const V& default_value, const V& file_value, const char* key, const std::string& path) {
  NG_REQUIRE(cfg_value == default_value || cfg_value == file_value,
             "model.{} is {} but model.init_from {} has {} (leave the key out or make them agree)", key, cfg_value,
             path, file_value);
  cfg_value = file_value;
}

}  // namespace

BlockArch block_arch(const ModelConfig& m) {
  BlockArch a;
  a.rope = m.pos == "rope";
  a.rope_theta = m.rope_theta;
  a.swiglu = m.mlp == "swiglu";
  a.hidden = m.mlp_hidden > 0 ? m.mlp_hidden : default_hidden(m.d_model, a.swiglu);
  a.bias = m.bias;
  a.qk_norm = m.qk_norm == "head" ? QkNorm::Head : m.qk_norm == "full" ? QkNorm::Full : QkNorm::None;
  a.tied = m.tie_embeddings;
  return a;
}

ModelSpec resolve_model(const Config& cfg) {
  ModelConfig m = cfg.model;
  if (!m.init_from.empty()) {
    const ModelFileInfo info = read_model_info(m.init_from);
    const ModelConfig def;
    adopt(m.n_layer, def.n_layer, info.dims.L, "n_layer", m.init_from);
    adopt(m.n_head, def.n_head, info.dims.NH, "n_head", m.init_from);
    adopt(m.d_model, def.d_model, info.dims.C, "d_model", m.init_from);
    adopt(m.vocab_size, def.vocab_size, info.dims.V, "vocab_size", m.init_from);
    adopt(m.padded_vocab, def.padded_vocab, info.dims.Vp, "padded_vocab", m.init_from);
    adopt(m.max_seq_len, def.max_seq_len, info.dims.maxT, "max_seq_len", m.init_from);
    NG_REQUIRE(m.seq_len <= m.max_seq_len, "model.seq_len ({}) exceeds the context length {} of {}", m.seq_len,
               m.max_seq_len, m.init_from);
    const BlockArch& fa = info.dims.arch;
    adopt(m.pos, def.pos, std::string(fa.rope ? "rope" : "learned"), "pos", m.init_from);
    adopt(m.mlp, def.mlp, std::string(fa.swiglu ? "swiglu" : "gelu"), "mlp", m.init_from);
    adopt(m.mlp_hidden, def.mlp_hidden, fa.hidden > 0 ? fa.hidden : 4 * info.dims.C, "mlp_hidden", m.init_from);
    adopt(m.bias, def.bias, fa.bias, "bias", m.init_from);
    adopt(m.qk_norm, def.qk_norm, std::string(qk_norm_name(fa.qk_norm)), "qk_norm", m.init_from);
    adopt(m.tie_embeddings, def.tie_embeddings, fa.tied, "tie_embeddings", m.init_from);
    if (fa.rope) adopt(m.rope_theta, def.rope_theta, fa.rope_theta, "rope_theta", m.init_from);
  }
  ModelSpec s;
  s.dims.L = m.n_layer;
  s.dims.NH = m.n_head;
  s.dims.C = m.d_model;
  s.dims.V = m.vocab_size;
  s.dims.Vp = m.padded_vocab > 0 ? m.padded_vocab : (m.vocab_size + 63) / 64 * 64;
  s.dims.maxT = m.max_seq_len > 0 ? m.max_seq_len : m.seq_len;
  s.dims.arch = block_arch(m);
  NG_REQUIRE(!s.dims.arch.rope || (m.d_model / m.n_head) % 2 == 0,
             "model.pos rope needs an even head size (d_model / n_head), got {}", m.d_model / m.n_head);
  s.plan = make_plan(cfg.norm, s.dims, m.init);
  return s;
}

template <class T>
std::vector<acc_t<T>> initialize_model(GPT<T>& model, const Config& cfg) {
  // On the host in full precision, then uploaded (rounded to T). Random init first: a plain GPT-2
  // file fills only the GPT-2 tensors and the strategy's extra tensors keep their defaults.
  std::vector<acc_t<T>> host(model.params.size(), acc_t<T>(0));
  init_params(model.table(), model.plan().init, cfg.seed, host.data());
  // nGPT / anGPT start with their matrices on the constraint (docs/blocks.md)
  apply_constraints(model.plan(), model.table(), host.data());
  if (cfg.model.init_from.empty()) {
    model.params_from_host(host);
  } else {
    load_weights(model, cfg.model.init_from, host);
  }
  return host;
}

template <class T>
void load_weights(GPT<T>& model, const std::string& path, std::vector<acc_t<T>>& weights) {
  weights.resize(model.params.size());
  load_model_file(path, model.table(), model.plan(), weights.data());
  model.params_from_host(weights);
}

ModelSpec model_spec_from_file(const std::string& path) {
  const ModelFileInfo info = read_model_info(path);
  return {info.dims, make_plan(norm_config_of(info, path), info.dims, "auto")};
}

double flops_per_token(const ModelDims& d, size_t n_params, int T) {
  return 6.0 * double(n_params) + 12.0 * d.L * double(T) * d.C;
}

template std::vector<float> initialize_model<float>(GPT<float>&, const Config&);
template std::vector<double> initialize_model<double>(GPT<double>&, const Config&);
template std::vector<float> initialize_model<bf16>(GPT<bf16>&, const Config&);
template void load_weights<float>(GPT<float>&, const std::string&, std::vector<float>&);
template void load_weights<double>(GPT<double>&, const std::string&, std::vector<double>&);
template void load_weights<bf16>(GPT<bf16>&, const std::string&, std::vector<float>&);

}  // namespace ng
