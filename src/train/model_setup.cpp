#include "train/model_setup.hpp"

#include "core/errors.hpp"
#include "model/model_file.hpp"

namespace ng {
namespace {

void adopt(int& cfg_value, int default_value, int file_value, const char* key, const std::string& path) {
  NG_REQUIRE(cfg_value == default_value || cfg_value == file_value,
             "model.{} is {} but model.init_from {} has {} (leave the key out or make them agree)", key, cfg_value,
             path, file_value);
  cfg_value = file_value;
}

}  // namespace

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
  }
  ModelSpec s;
  s.dims.L = m.n_layer;
  s.dims.NH = m.n_head;
  s.dims.C = m.d_model;
  s.dims.V = m.vocab_size;
  s.dims.Vp = m.padded_vocab > 0 ? m.padded_vocab : (m.vocab_size + 63) / 64 * 64;
  s.dims.maxT = m.max_seq_len > 0 ? m.max_seq_len : m.seq_len;
  s.plan = make_plan(cfg.norm, s.dims.L, m.init);
  return s;
}

template <class T>
void initialize_model(GPT<T>& model, const Config& cfg) {
  // Random init first: a plain GPT-2 file fills only the GPT-2 tensors and the strategy's extra
  // tensors keep their defaults.
  init_params(model.table(), model.plan().init, cfg.seed, model.params.data());
  if (!cfg.model.init_from.empty())
    load_model_file(cfg.model.init_from, model.table(), model.plan(), model.params.data());
}

ModelSpec model_spec_from_file(const std::string& path) {
  const ModelFileInfo info = read_model_info(path);
  NormConfig nc;
  if (info.has_strategy) {
    nc.strategy = info.strategy;
    // dyt is a strategy that sets its own norm function; norm.function only names layernorm/rmsnorm
    nc.function = info.function == NormFunction::DyT ? "layernorm" : norm_function_name(info.function);
    nc.embed_norm = info.embed_norm;
    nc.final_norm = info.final_norm;
  }
  return {info.dims, make_plan(nc, info.dims.L, "auto")};
}

double flops_per_token(const ModelDims& d, size_t n_params, int T) {
  return 6.0 * double(n_params) + 12.0 * d.L * double(T) * d.C;
}

template void initialize_model<float>(GPT<float>&, const Config&);
template void initialize_model<double>(GPT<double>&, const Config&);

}  // namespace ng
