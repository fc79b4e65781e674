// One block's sublayers, forward next to backward, as the plan says (norm/plan.hpp):
//   u = in(x); f = core(u); g = out(f); y = combine(x or u, g)
// and the two cores (attention with its optional q/k/v norms and RoPE; the GELU or SwiGLU MLP).
#include <utility>

#include "core/errors.hpp"
#include "model/gpt.hpp"

namespace ng {

// ---- norms at a plan's sites -----------------------------------------------------------------

template <class T>
void GPT<T>::norm_forward(const NormSite& site, int l, const T* x, T* out, Stat* mean, Stat* rstd, A scale) {
  T* P = params.data();
  NormForwardArgs<T> a{out, mean, rstd, x, nullptr, nullptr, N_, dims_.C, plan_.eps, plan_.function,
                       A(scale * site.gain_scale)};
  a.group = site.per_head ? dims_.hs() : 0;
  if (site.l2) {
    a.fn = NormFunction::L2;
    if (!site.l2_gain.empty()) a.weight = tensor(P, site.l2_gain, l);
  } else {
    a.weight = tensor(P, site.tensor + "w", l);
    a.bias = tensor(P, site.tensor + "b", l);
    if (plan_.function == NormFunction::DyT) a.alpha = tensor(P, site.tensor + "a", l);
  }
  be_.norm_forward(a);
}

template <class T>
void GPT<T>::norm_backward(const NormSite& site, int l, const T* dout, const T* x, const Stat* mean,
                           const Stat* rstd, A scale, T* dx, bool accumulate) {
  T* P = params.data();
  Grad* G = grads.data();
  NormBackwardArgs<T> a{dx, nullptr, nullptr, dout, x, nullptr, mean, rstd, N_, dims_.C, plan_.function,
                        A(scale * site.gain_scale), accumulate};
  a.group = site.per_head ? dims_.hs() : 0;
  if (site.l2) {
    a.fn = NormFunction::L2;
    if (!site.l2_gain.empty()) {
      a.weight = tensor(P, site.l2_gain, l);
      a.dweight = tensor(G, site.l2_gain, l);
    }
  } else {
    a.weight = tensor(P, site.tensor + "w", l);
    a.dweight = tensor(G, site.tensor + "w", l);
    a.dbias = tensor(G, site.tensor + "b", l);
    if (plan_.function == NormFunction::DyT) {
      a.alpha = tensor(P, site.tensor + "a", l);
      a.dalpha = tensor(G, site.tensor + "a", l);
    }
  }
  be_.norm_backward(a);
}

// ---- attention core --------------------------------------------------------------------------

// q, k, v out of the packed projection, each through its norm (if any), q and k rotated (RoPE),
// and packed again for the attention op.
template <class T>
void GPT<T>::qkv_transform_forward(int l) {
  LayerActs<T>& a = layers_[l];
  const QkvPlan& q = plan_.blocks[l].qkv;
  const int C = dims_.C;
  const size_t NC = size_t(N_) * C, stats = size_t(N_) * dims_.NH;
  const NormSite* sites[3] = {&q.q, &q.k, &q.v};
  for (int p = 0; p < 3; ++p) {
    T* raw = a.qkv_split + p * NC;
    be_.copy2d({raw, C, a.qkv_raw + p * C, 3 * C, N_, C});
    T* v = raw;
    if (sites[p]->active()) {
      v = a.qkv_normed + p * NC;
      norm_forward(*sites[p], l, raw, v, a.qkv_mean + p * stats, a.qkv_rstd + p * stats, A(1));
    }
    if (dims_.arch.rope && p < 2) be_.rope({v, v, B_, T_, C, dims_.NH, dims_.arch.rope_theta, false});
    be_.copy2d({a.qkv + p * C, 3 * C, v, C, N_, C});
  }
}

// dqkv_ in place: from d(attention input) to d(projection output).
template <class T>
void GPT<T>::qkv_transform_backward(int l) {
  LayerActs<T>& a = layers_[l];
  const QkvPlan& q = plan_.blocks[l].qkv;
  const int C = dims_.C;
  const size_t NC = size_t(N_) * C, stats = size_t(N_) * dims_.NH;
  const NormSite* sites[3] = {&q.q, &q.k, &q.v};
  for (int p = 0; p < 3; ++p) {
    T* d = dqkv_part_;
    be_.copy2d({d, C, dqkv_ + p * C, 3 * C, N_, C});
    if (dims_.arch.rope && p < 2) be_.rope({d, d, B_, T_, C, dims_.NH, dims_.arch.rope_theta, true});
    if (sites[p]->active()) {
      norm_backward(*sites[p], l, d, a.qkv_split + p * NC, a.qkv_mean + p * stats, a.qkv_rstd + p * stats, A(1),
                    dqkv_part2_, false);
      d = dqkv_part2_;
    }
    be_.copy2d({dqkv_ + p * C, 3 * C, d, C, N_, C});
  }
}

template <class T>
void GPT<T>::attention_core_forward(int l, const T* u) {
  LayerActs<T>& a = layers_[l];
  const int C = dims_.C;
  T* P = params.data();
  be_.matmul_forward({a.qkv_raw ? a.qkv_raw : a.qkv, u, tensor(P, "qkvw", l), optional_tensor(P, "qkvb", l), N_, C,
                      3 * C});
  if (a.qkv_raw) qkv_transform_forward(l);
  be_.attention_forward({a.atty, a.att, a.qkv, B_, T_, C, dims_.NH, plan_.blocks[l].qkv.softmax_scale});
  be_.matmul_forward({a.attn.out, a.atty, tensor(P, "attprojw", l), optional_tensor(P, "attprojb", l), N_, C, C});
}

template <class T>
void GPT<T>::attention_core_backward(int l, const T* df, const T* u, T* du, bool accumulate) {
  LayerActs<T>& a = layers_[l];
  const int C = dims_.C;
  T* P = params.data();
  Grad* G = grads.data();
  be_.matmul_backward({datty_, tensor(G, "attprojw", l), optional_tensor(G, "attprojb", l), df, a.atty,
                       tensor(P, "attprojw", l), N_, C, C, false});
  be_.attention_backward(
      {dqkv_, datt_scratch_, datty_, a.qkv, a.att, B_, T_, C, dims_.NH, plan_.blocks[l].qkv.softmax_scale, a.atty});
  if (a.qkv_raw) qkv_transform_backward(l);
  be_.matmul_backward({du, tensor(G, "qkvw", l), optional_tensor(G, "qkvb", l), dqkv_, u, tensor(P, "qkvw", l), N_,
                       C, 3 * C, accumulate});
}

// ---- MLP core --------------------------------------------------------------------------------
// up = c_fc W u (+ nGPT's learned per-channel scale); act = c_act act(up); f = c_down W act.
// The constant factors are anGPT's (1 otherwise, and then skipped).

template <class T>
void GPT<T>::mlp_core_forward(int l, const T* u) {
  LayerActs<T>& a = layers_[l];
  const int C = dims_.C, H = dims_.H(), F = dims_.fc_rows();
  const Factors& k = plan_.factors;
  T* P = params.data();
  T* up = a.fch_raw ? a.fch_raw : a.fch;
  be_.matmul_forward({up, u, tensor(P, "fcw", l), optional_tensor(P, "fcb", l), N_, C, F});
  scale_in_place(up, size_t(N_) * F, k.fc);
  if (a.fch_raw)
    be_.scale_columns_forward({a.fch, a.fch_raw, tensor(P, plan_.mlp_in_scale, l), A(plan_.mlp_in_scale_k), N_, F});
  if (dims_.arch.swiglu) {
    be_.swiglu_forward({a.fch_act, a.fch, N_, H});
  } else {
    be_.gelu_forward({a.fch_act, a.fch, size_t(N_) * H});
  }
  scale_in_place(a.fch_act, size_t(N_) * H, k.act);
  be_.matmul_forward({a.mlp.out, a.fch_act, tensor(P, "fcprojw", l), optional_tensor(P, "fcprojb", l), N_, H, C});
  scale_in_place(a.mlp.out, size_t(N_) * C, k.fcproj);
}

template <class T>
void GPT<T>::mlp_core_backward(int l, const T* df, const T* u, T* du, bool accumulate) {
  LayerActs<T>& a = layers_[l];
  const int C = dims_.C, H = dims_.H(), F = dims_.fc_rows();
  const Factors& k = plan_.factors;
  T* P = params.data();
  Grad* G = grads.data();
  if (k.fcproj != 1.0) {
    be_.scale({dtmp_o_, df, A(k.fcproj), size_t(N_) * C, false});
    df = dtmp_o_;
  }
  be_.matmul_backward({dact_, tensor(G, "fcprojw", l), optional_tensor(G, "fcprojb", l), df, a.fch_act,
                       tensor(P, "fcprojw", l), N_, H, C, false});
  scale_in_place(dact_, size_t(N_) * H, k.act);
  if (dims_.arch.swiglu) {
    be_.swiglu_backward({dfch_, a.fch, dact_, N_, H});
  } else {
    be_.gelu_backward({dfch_, a.fch, dact_, size_t(N_) * H, false});
  }
  if (a.fch_raw)
    be_.scale_columns_backward({dfch_, tensor(G, plan_.mlp_in_scale, l), dfch_, a.fch_raw,
                                tensor(P, plan_.mlp_in_scale, l), A(plan_.mlp_in_scale_k), N_, F, false});
  scale_in_place(dfch_, size_t(N_) * F, k.fc);
  be_.matmul_backward({du, tensor(G, "fcw", l), optional_tensor(G, "fcb", l), dfch_, u, tensor(P, "fcw", l), N_, C,
                       F, accumulate});
}

// ---- sublayer --------------------------------------------------------------------------------

template <class T>
const T* GPT<T>::sublayer_forward(int l, const SublayerPlan& p, const T* x, const T* block_in, SublayerActs<T>& a,
                                  bool attention) {
  T* P = params.data();
  const T* u = x;
  if (p.input_norm.active()) {
    norm_forward(p.input_norm, l, x, a.in_norm, a.in_mean, a.in_rstd, A(p.input_scale));
    u = a.in_norm;
  }
  attention ? attention_core_forward(l, u) : mlp_core_forward(l, u);
  const T* g = a.out;
  if (p.output_norm.active()) {
    norm_forward(p.output_norm, l, a.out, a.out_norm, a.out_mean, a.out_rstd, A(1));
    g = a.out_norm;
  }
  const T* s = p.residual_from_input ? u : x;  // the stream the combine continues from
  const size_t n = size_t(N_) * dims_.C;
  switch (p.combine) {
    case Combine::Add: be_.residual({a.y, s, g, nullptr, A(1), n}); break;
    case Combine::NormAdd:
      be_.residual({a.z, s, g, p.skip_block_input ? block_in : nullptr, A(p.alpha), n});
      norm_forward(p.combine_norm, l, a.z, a.y, a.z_mean, a.z_rstd, A(1));
      break;
    case Combine::Geodesic:
      be_.geodesic_forward({a.y, a.angle, a.clamped, s, g, tensor(P, p.geo.a, l), tensor(P, p.geo.b, l), p.geo.decay,
                            p.geo.clamp, N_, dims_.C});
      break;
    case Combine::Lerp: {
      const bool normed = p.combine_norm.active();
      be_.lerp_forward({normed ? a.z : a.y, s, g, tensor(P, p.lerp.alpha, l), A(p.lerp.alpha_scale),
                        p.lerp.abs_alpha, p.lerp.nu, N_, dims_.C});
      if (normed) norm_forward(p.combine_norm, l, a.z, a.y, a.z_mean, a.z_rstd, A(1));
      break;
    }
  }
  if (p.dual) be_.residual({dual_, dual_, g, nullptr, A(1), n});
  return a.y;
}

// The combine's backward. On entry dstream_ holds dL/dy; on exit it holds the combine's part of
// dL/ds (s: the stream the combine continued from), and the returned buffer holds dL/dg. For
// b2t's skip, dL/d(block input) waits in dskip_.
template <class T>
const T* GPT<T>::combine_backward(int l, const SublayerPlan& p, const T* s, SublayerActs<T>& a) {
  const size_t n = size_t(N_) * dims_.C;
  T* P = params.data();
  Grad* G = grads.data();
  const T* g = p.output_norm.active() ? a.out_norm : a.out;
  switch (p.combine) {
    case Combine::Add:  // y = s + g: ds = dy (already in dstream_), dg = dy
      return dstream_;
    case Combine::NormAdd:  // y = N(z), z = alpha s + g (+ skip): dg = dz, ds = alpha dz
      norm_backward(p.combine_norm, l, dstream_, a.z, a.z_mean, a.z_rstd, A(1), dtmp_z_, false);
      if (p.skip_block_input) be_.scale({dskip_, dtmp_z_, A(1), n, false});
      be_.scale({dstream_, dtmp_z_, A(p.alpha), n, false});
      return dtmp_z_;
    case Combine::Geodesic:
      be_.geodesic_backward({dx_alt_, dtmp_g_, tensor(G, p.geo.a, l), tensor(G, p.geo.b, l), dstream_, s, g,
                             tensor(P, p.geo.a, l), tensor(P, p.geo.b, l), p.geo.decay, p.geo.clamp, N_, dims_.C});
      std::swap(dstream_, dx_alt_);
      return dtmp_g_;
    case Combine::Lerp: {
      const T* dz = dstream_;
      if (p.combine_norm.active()) {
        norm_backward(p.combine_norm, l, dstream_, a.z, a.z_mean, a.z_rstd, A(1), dtmp_z_, false);
        dz = dtmp_z_;
      }
      be_.lerp_backward({dx_alt_, dtmp_g_, tensor(G, p.lerp.alpha, l), dz, s, g, tensor(P, p.lerp.alpha, l),
                         A(p.lerp.alpha_scale), p.lerp.abs_alpha, p.lerp.nu, N_, dims_.C});
      std::swap(dstream_, dx_alt_);
      return dtmp_g_;
    }
  }
  return nullptr;
}

// On entry dstream_ holds dL/dy; on exit it holds dL/dx.
template <class T>
void GPT<T>::sublayer_backward(int l, const SublayerPlan& p, const T* x, SublayerActs<T>& a, bool attention) {
  const size_t n = size_t(N_) * dims_.C;
  const bool in_norm = p.input_norm.active();
  const T* u = in_norm ? a.in_norm : x;
  NG_CHECK(!p.residual_from_input || in_norm, "residual_from_input needs an input norm");
  const T* dg = combine_backward(l, p, p.residual_from_input ? u : x, a);
  if (p.dual) {  // g also fed the stream d: add d(dL), the same for every sublayer
    be_.scale({ddg_, dg, A(1), n, false});
    be_.scale({ddg_, ddual_, A(1), n, true});
    dg = ddg_;
  }
  const T* df = dg;
  if (p.output_norm.active()) {
    norm_backward(p.output_norm, l, dg, a.out, a.out_mean, a.out_rstd, A(1), dtmp_f_, false);
    df = dtmp_f_;
  }
  if (p.residual_from_input) {
    // dstream_ holds the combine's dL/du: start du from it, add the core's, then through the norm.
    be_.scale({dtmp_u_, dstream_, A(1), n, false});
    attention ? attention_core_backward(l, df, u, dtmp_u_, true) : mlp_core_backward(l, df, u, dtmp_u_, true);
    norm_backward(p.input_norm, l, dtmp_u_, x, a.in_mean, a.in_rstd, A(p.input_scale), dstream_, false);
    return;
  }
  // Without an input norm u = x, so the core's input gradient adds straight into the stream.
  T* du = in_norm ? dtmp_u_ : dstream_;
  attention ? attention_core_backward(l, df, u, du, !in_norm) : mlp_core_backward(l, df, u, du, !in_norm);
  if (in_norm) norm_backward(p.input_norm, l, dtmp_u_, x, a.in_mean, a.in_rstd, A(p.input_scale), dstream_, true);
}

// The members defined in this file, for both scalar types (the class itself is instantiated in
// gpt.cpp, which defines the rest).
#define NG_INSTANTIATE(T)                                                                                         \
  template void GPT<T>::norm_forward(const NormSite&, int, const T*, T*, stat_t<T>*, stat_t<T>*, acc_t<T>);      \
  template void GPT<T>::norm_backward(const NormSite&, int, const T*, const T*, const stat_t<T>*, const stat_t<T>*, \
                                      acc_t<T>, T*, bool);                                                        \
  template void GPT<T>::qkv_transform_forward(int);                                                               \
  template void GPT<T>::qkv_transform_backward(int);                                                              \
  template void GPT<T>::attention_core_forward(int, const T*);                                                    \
  template void GPT<T>::attention_core_backward(int, const T*, const T*, T*, bool);                               \
  template void GPT<T>::mlp_core_forward(int, const T*);                                                          \
  template void GPT<T>::mlp_core_backward(int, const T*, const T*, T*, bool);                                     \
  template const T* GPT<T>::sublayer_forward(int, const SublayerPlan&, const T*, const T*, SublayerActs<T>&, bool); \
  template const T* GPT<T>::combine_backward(int, const SublayerPlan&, const T*, SublayerActs<T>&);              \
  template void GPT<T>::sublayer_backward(int, const SublayerPlan&, const T*, SublayerActs<T>&, bool);
NG_INSTANTIATE(float)
NG_INSTANTIATE(double)
NG_INSTANTIATE(bf16)
#undef NG_INSTANTIATE

}  // namespace ng
