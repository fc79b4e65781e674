#include "model/gpt.hpp"

#include <algorithm>
#include <cstring>

#include "core/errors.hpp"

namespace ng {

template <class T>
GPT<T>::GPT(const ModelDims& dims, const ModelPlan& plan, const Backend<T>& backend, int B, int Tn)
    : dims_(dims), plan_(plan), be_(backend), table_(dims, plan), B_(B), T_(Tn), N_(B * Tn) {
  NG_REQUIRE(Tn >= 1 && Tn <= dims.maxT, "model.seq_len ({}) must be between 1 and the context length ({})", Tn,
             dims.maxT);
  NG_CHECK(int(plan.blocks.size()) == dims.L, "plan has {} blocks for {} layers", plan.blocks.size(), dims.L);
  params.assign(table_.total(), T(0));
  grads.assign(table_.total(), T(0));

  // Carve the activation arena in two passes: size it, then hand out pointers.
  const size_t N = size_t(N_), C = size_t(dims.C), Vp = size_t(dims.Vp);
  const size_t att = size_t(B) * dims.NH * Tn * Tn;
  std::vector<std::pair<T**, size_t>> slots;
  auto want = [&](T*& p, size_t n) { slots.push_back({&p, n}); };
  auto want_norm = [&](bool on, T*& out, T*& mean, T*& rstd) {
    if (!on) return;
    want(out, N * C);
    want(mean, N);
    want(rstd, N);
  };
  want(encoded_, N * C);
  want_norm(plan.embed_norm.active(), embed_out_, embed_mean_, embed_rstd_);
  layers_.resize(dims.L);
  for (int l = 0; l < dims.L; ++l) {
    LayerActs<T>& a = layers_[l];
    const BlockPlan& p = plan.blocks[l];
    auto want_sublayer = [&](const SublayerPlan& sp, SublayerActs<T>& sa) {
      want_norm(sp.input_norm.active(), sa.in_norm, sa.in_mean, sa.in_rstd);
      want(sa.out, N * C);
      want_norm(sp.output_norm.active(), sa.out_norm, sa.out_mean, sa.out_rstd);
      want_norm(sp.combine == Combine::NormAdd, sa.z, sa.z_mean, sa.z_rstd);
      if (sp.combine == Combine::Geodesic) {
        want(sa.angle, N);
        want(sa.clamped, N);
      }
      want(sa.y, N * C);
    };
    want_sublayer(p.attn, a.attn);
    want_sublayer(p.mlp, a.mlp);
    want(a.qkv, N * 3 * C);
    want(a.att, att);
    want(a.atty, N * C);
    want(a.fch, N * 4 * C);
    want(a.fch_gelu, N * 4 * C);
  }
  want_norm(plan.final_norm.active(), final_out_, final_mean_, final_rstd_);
  want(logits_, N * Vp);
  want(losses_, N);
  want(dstream_, N * C);
  want(dtmp_f_, N * C);
  want(dtmp_u_, N * C);
  want(datty_, N * C);
  want(dqkv_, N * 3 * C);
  want(dfch_, N * 4 * C);
  want(datt_scratch_, att);
  want(dtmp_z_, N * C);
  want(dtmp_g_, N * C);
  want(dx_alt_, N * C);
  want(dskip_, N * C);
  size_t total = 0;
  for (auto& [p, n] : slots) total += n;
  arena_.assign(total, T(0));
  size_t off = 0;
  for (auto& [p, n] : slots) {
    *p = arena_.data() + off;
    off += n;
  }
  inputs_.resize(N);
  targets_.resize(N);
}

template <class T>
T* GPT<T>::tensor(T* buffer, const std::string& name, int layer) const {
  const ParamTensor& t = table_.get(name);
  size_t off = t.offset;
  if (t.per_layer) off += size_t(layer) * (t.numel / size_t(dims_.L));
  return buffer + off;
}

template <class T>
void GPT<T>::norm_forward(const NormSite& site, int l, const T* x, T* out, T* mean, T* rstd, T scale) {
  NormForwardArgs<T> a{out, mean, rstd, x, tensor(params.data(), site.tensor + "w", l),
                       tensor(params.data(), site.tensor + "b", l), N_, dims_.C, plan_.eps, plan_.function, scale};
  if (plan_.function == NormFunction::DyT) a.alpha = tensor(params.data(), site.tensor + "a", l);
  be_.norm_forward(a);
}

template <class T>
void GPT<T>::norm_backward(const NormSite& site, int l, const T* dout, const T* x, const T* mean, const T* rstd,
                           T scale, T* dx, bool accumulate) {
  NormBackwardArgs<T> a{dx, tensor(grads.data(), site.tensor + "w", l), tensor(grads.data(), site.tensor + "b", l),
                        dout, x, tensor(params.data(), site.tensor + "w", l), mean, rstd, N_, dims_.C,
                        plan_.function, scale, accumulate};
  if (plan_.function == NormFunction::DyT) {
    a.alpha = tensor(params.data(), site.tensor + "a", l);
    a.dalpha = tensor(grads.data(), site.tensor + "a", l);
  }
  be_.norm_backward(a);
}

// ---- forward ---------------------------------------------------------------------------------

template <class T>
void GPT<T>::attention_core_forward(int l, const T* u) {
  LayerActs<T>& a = layers_[l];
  const int C = dims_.C;
  T* P = params.data();
  be_.matmul_forward({a.qkv, u, tensor(P, "qkvw", l), tensor(P, "qkvb", l), N_, C, 3 * C});
  be_.attention_forward({a.atty, a.att, a.qkv, B_, T_, C, dims_.NH});
  be_.matmul_forward({a.attn.out, a.atty, tensor(P, "attprojw", l), tensor(P, "attprojb", l), N_, C, C});
}

template <class T>
void GPT<T>::mlp_core_forward(int l, const T* u) {
  LayerActs<T>& a = layers_[l];
  const int C = dims_.C;
  T* P = params.data();
  be_.matmul_forward({a.fch, u, tensor(P, "fcw", l), tensor(P, "fcb", l), N_, C, 4 * C});
  be_.gelu_forward({a.fch_gelu, a.fch, size_t(N_) * 4 * C});
  be_.matmul_forward({a.mlp.out, a.fch_gelu, tensor(P, "fcprojw", l), tensor(P, "fcprojb", l), N_, 4 * C, C});
}

template <class T>
const T* GPT<T>::sublayer_forward(int l, const SublayerPlan& p, const T* x, const T* block_in, SublayerActs<T>& a,
                                  bool attention) {
  const T* u = x;
  if (p.input_norm.active()) {
    norm_forward(p.input_norm, l, x, a.in_norm, a.in_mean, a.in_rstd, T(p.input_scale));
    u = a.in_norm;
  }
  attention ? attention_core_forward(l, u) : mlp_core_forward(l, u);
  const T* g = a.out;
  if (p.output_norm.active()) {
    norm_forward(p.output_norm, l, a.out, a.out_norm, a.out_mean, a.out_rstd, T(1));
    g = a.out_norm;
  }
  const size_t n = size_t(N_) * dims_.C;
  switch (p.combine) {
    case Combine::Add: be_.residual({a.y, x, g, nullptr, T(1), n}); break;
    case Combine::NormAdd:
      be_.residual({a.z, x, g, p.skip_block_input ? block_in : nullptr, T(p.alpha), n});
      norm_forward(p.combine_norm, l, a.z, a.y, a.z_mean, a.z_rstd, T(1));
      break;
    case Combine::Geodesic:
      be_.geodesic_forward({a.y, a.angle, a.clamped, x, g, tensor(params.data(), p.geo.a, l),
                            tensor(params.data(), p.geo.b, l), p.geo.decay, p.geo.clamp, N_, dims_.C});
      break;
  }
  return a.y;
}

template <class T>
double GPT<T>::forward(const int32_t* inputs, const int32_t* targets) {
  const int C = dims_.C;
  for (int i = 0; i < N_; ++i) {
    NG_REQUIRE(inputs[i] >= 0 && inputs[i] < dims_.V, "token id {} out of range for vocab_size {}", inputs[i], dims_.V);
    if (targets) NG_REQUIRE(targets[i] >= 0 && targets[i] < dims_.V, "target id {} out of range", targets[i]);
  }
  std::copy(inputs, inputs + N_, inputs_.begin());
  T* P = params.data();
  be_.encoder_forward({encoded_, inputs_.data(), tensor(P, "wte"), tensor(P, "wpe"), B_, T_, C});
  const T* x = encoded_;
  if (plan_.embed_norm.active()) {
    norm_forward(plan_.embed_norm, 0, encoded_, embed_out_, embed_mean_, embed_rstd_, T(1));
    x = embed_out_;
  }
  for (int l = 0; l < dims_.L; ++l) {
    const T* block_in = x;
    x = sublayer_forward(l, plan_.blocks[l].attn, x, block_in, layers_[l].attn, true);
    x = sublayer_forward(l, plan_.blocks[l].mlp, x, block_in, layers_[l].mlp, false);
  }
  if (plan_.final_norm.active()) {
    norm_forward(plan_.final_norm, 0, x, final_out_, final_mean_, final_rstd_, T(1));
    x = final_out_;
  }
  // Tied head: logits = h . wte^T over all Vp rows; the loss reads the first V.
  be_.matmul_forward({logits_, x, tensor(P, "wte"), nullptr, N_, C, dims_.Vp});
  have_targets_ = targets != nullptr;
  if (!targets) return 0.0;
  std::copy(targets, targets + N_, targets_.begin());
  be_.crossentropy_forward({losses_, logits_, logits_, targets_.data(), N_, dims_.V, dims_.Vp});
  double sum = 0;
  for (int i = 0; i < N_; ++i) sum += double(losses_[i]);
  return sum / N_;
}

// ---- backward --------------------------------------------------------------------------------

template <class T>
void GPT<T>::attention_core_backward(int l, const T* df, const T* u, T* du, bool accumulate) {
  LayerActs<T>& a = layers_[l];
  const int C = dims_.C;
  T *P = params.data(), *G = grads.data();
  be_.matmul_backward({datty_, tensor(G, "attprojw", l), tensor(G, "attprojb", l), df, a.atty,
                       tensor(P, "attprojw", l), N_, C, C, false});
  be_.attention_backward({dqkv_, datt_scratch_, datty_, a.qkv, a.att, B_, T_, C, dims_.NH});
  be_.matmul_backward({du, tensor(G, "qkvw", l), tensor(G, "qkvb", l), dqkv_, u, tensor(P, "qkvw", l), N_, C,
                       3 * C, accumulate});
}

template <class T>
void GPT<T>::mlp_core_backward(int l, const T* df, const T* u, T* du, bool accumulate) {
  LayerActs<T>& a = layers_[l];
  const int C = dims_.C;
  T *P = params.data(), *G = grads.data();
  be_.matmul_backward({dfch_, tensor(G, "fcprojw", l), tensor(G, "fcprojb", l), df, a.fch_gelu,
                       tensor(P, "fcprojw", l), N_, 4 * C, C, false});
  be_.gelu_backward({dfch_, a.fch, dfch_, size_t(N_) * 4 * C, false});  // in place: elementwise
  be_.matmul_backward({du, tensor(G, "fcw", l), tensor(G, "fcb", l), dfch_, u, tensor(P, "fcw", l), N_, C, 4 * C,
                       accumulate});
}

// The combine's backward. On entry dstream_ holds dL/dy; on exit it holds the combine's part of
// dL/dx, and the returned buffer holds dL/dg. For b2t's skip, dL/d(block input) waits in dskip_.
template <class T>
const T* GPT<T>::combine_backward(int l, const SublayerPlan& p, const T* x, SublayerActs<T>& a) {
  const size_t n = size_t(N_) * dims_.C;
  switch (p.combine) {
    case Combine::Add:  // y = x + g: dx = dy (already in dstream_), dg = dy
      return dstream_;
    case Combine::NormAdd:  // y = N(z), z = alpha x + g (+ skip): dg = dz, dx = alpha dz
      norm_backward(p.combine_norm, l, dstream_, a.z, a.z_mean, a.z_rstd, T(1), dtmp_z_, false);
      if (p.skip_block_input) be_.scale({dskip_, dtmp_z_, T(1), n, false});
      be_.scale({dstream_, dtmp_z_, T(p.alpha), n, false});
      return dtmp_z_;
    case Combine::Geodesic: {
      const T* g = p.output_norm.active() ? a.out_norm : a.out;
      be_.geodesic_backward({dx_alt_, dtmp_g_, tensor(grads.data(), p.geo.a, l), tensor(grads.data(), p.geo.b, l),
                             dstream_, x, g, tensor(params.data(), p.geo.a, l), tensor(params.data(), p.geo.b, l),
                             p.geo.decay, p.geo.clamp, N_, dims_.C});
      std::swap(dstream_, dx_alt_);
      return dtmp_g_;
    }
  }
  return nullptr;
}

// On entry dstream_ holds dL/dy; on exit it holds dL/dx.
template <class T>
void GPT<T>::sublayer_backward(int l, const SublayerPlan& p, const T* x, SublayerActs<T>& a, bool attention) {
  const T* dg = combine_backward(l, p, x, a);
  const T* df = dg;
  if (p.output_norm.active()) {
    norm_backward(p.output_norm, l, dg, a.out, a.out_mean, a.out_rstd, T(1), dtmp_f_, false);
    df = dtmp_f_;
  }
  // Without an input norm u = x, so the core's input gradient adds straight into the stream.
  const bool in_norm = p.input_norm.active();
  const T* u = in_norm ? a.in_norm : x;
  T* du = in_norm ? dtmp_u_ : dstream_;
  attention ? attention_core_backward(l, df, u, du, !in_norm) : mlp_core_backward(l, df, u, du, !in_norm);
  if (in_norm) norm_backward(p.input_norm, l, dtmp_u_, x, a.in_mean, a.in_rstd, T(p.input_scale), dstream_, true);
}

template <class T>
void GPT<T>::backward(T loss_scale) {
  NG_CHECK(have_targets_, "backward() needs a forward() with targets");
  const int C = dims_.C;
  T *P = params.data(), *G = grads.data();
  // d(loss_scale * mean loss)/dlogits, written over the probabilities.
  be_.crossentropy_backward({logits_, logits_, targets_.data(), loss_scale / T(N_), N_, dims_.V, dims_.Vp});

  const T* xL = layers_[dims_.L - 1].mlp.y;
  const bool fnorm = plan_.final_norm.active();
  be_.matmul_backward({fnorm ? dtmp_f_ : dstream_, tensor(G, "wte"), nullptr, logits_, fnorm ? final_out_ : xL,
                       tensor(P, "wte"), N_, C, dims_.Vp, false});
  if (fnorm) norm_backward(plan_.final_norm, 0, dtmp_f_, xL, final_mean_, final_rstd_, T(1), dstream_, false);

  const T* x0 = plan_.embed_norm.active() ? embed_out_ : encoded_;
  for (int l = dims_.L - 1; l >= 0; --l) {
    LayerActs<T>& a = layers_[l];
    sublayer_backward(l, plan_.blocks[l].mlp, a.attn.y, a.mlp, false);
    sublayer_backward(l, plan_.blocks[l].attn, l == 0 ? x0 : layers_[l - 1].mlp.y, a.attn, true);
    if (plan_.blocks[l].mlp.skip_block_input) be_.scale({dstream_, dskip_, T(1), size_t(N_) * C, true});
  }
  const T* dencoded = dstream_;
  if (plan_.embed_norm.active()) {
    norm_backward(plan_.embed_norm, 0, dstream_, encoded_, embed_mean_, embed_rstd_, T(1), dtmp_f_, false);
    dencoded = dtmp_f_;
  }
  be_.encoder_backward({tensor(G, "wte"), tensor(G, "wpe"), dencoded, inputs_.data(), B_, T_, C});
}

template <class T>
void GPT<T>::zero_grad() {
  std::fill(grads.begin(), grads.end(), T(0));
}

template class GPT<float>;
template class GPT<double>;

}  // namespace ng
