// The model's frame: the activation arena, the embedding and the head, and the walk over the
// blocks. What a block computes is in gpt_blocks.cpp.
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
  NG_REQUIRE(!dims.arch.rope || dims.hs() % 2 == 0, "model.pos rope needs an even head size, got {}", dims.hs());
  params = Buffer<T>(backend, table_.total());
  grads = Buffer<Grad>(backend, table_.total());

  // Carve the activation arena in two passes: size it, then hand out pointers.
  const size_t N = size_t(N_), C = size_t(dims.C), Vp = size_t(dims.Vp), H = size_t(dims.H()),
               F = size_t(dims.fc_rows()), NH = size_t(dims.NH);
  const size_t att = backend.attention_state_size(B, Tn, dims.C, dims.NH);
  std::vector<std::pair<T**, size_t>> slots;
  std::vector<std::pair<Stat**, size_t>> stat_slots;
  auto want = [&](T*& p, size_t n) { slots.push_back({&p, n}); };
  auto want_stat = [&](Stat*& p, size_t n) { stat_slots.push_back({&p, n}); };
  auto want_norm = [&](bool on, T*& out, Stat*& mean, Stat*& rstd) {
    if (!on) return;
    want(out, N * C);
    want_stat(mean, N * NH);  // per-head statistics need N*NH; whole-row ones use the first N
    want_stat(rstd, N * NH);
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
      want_norm(sp.combine == Combine::NormAdd || sp.combine_norm.active(), sa.z, sa.z_mean, sa.z_rstd);
      if (sp.combine == Combine::Geodesic) {
        want_stat(sa.angle, N);
        want_stat(sa.clamped, N);
      }
      want(sa.y, N * C);
    };
    want_sublayer(p.attn, a.attn);
    want_sublayer(p.mlp, a.mlp);
    want(a.qkv, N * 3 * C);
    if (p.qkv.any() || dims.arch.rope) {
      want(a.qkv_raw, N * 3 * C);
      want(a.qkv_split, 3 * N * C);
      want(a.qkv_normed, 3 * N * C);
      want_stat(a.qkv_mean, 3 * N * NH);
      want_stat(a.qkv_rstd, 3 * N * NH);
    }
    want_stat(a.att, att);
    want(a.atty, N * C);
    if (!plan.mlp_in_scale.empty()) want(a.fch_raw, N * F);
    want(a.fch, N * F);
    want(a.fch_act, N * H);
  }
  want_norm(plan.final_norm.active(), final_out_, final_mean_, final_rstd_);
  if (plan.dual_stream) {
    want(dual_, N * C);
    want(final_sum_, N * C);
    want(ddual_, N * C);
    want(ddg_, N * C);
  }
  if (!plan.logit_scale.empty()) want(logits_raw_, N * Vp);
  want(logits_, N * Vp);
  want_stat(losses_, N);
  want(dstream_, N * C);
  want(dtmp_f_, N * C);
  want(dtmp_u_, N * C);
  want(datty_, N * C);
  want(dqkv_, N * 3 * C);
  want(dqkv_part_, N * C);
  want(dqkv_part2_, N * C);
  want(dfch_, N * F);
  want(dact_, N * H);
  want(dtmp_o_, N * C);
  want_stat(datt_scratch_, backend.attention_scratch_size(B, Tn, dims.C, dims.NH));
  want(dtmp_z_, N * C);
  want(dtmp_g_, N * C);
  want(dx_alt_, N * C);
  want(dskip_, N * C);
  auto carve = [&](auto& list, auto& buffer) {
    size_t total = 0;
    for (auto& [p, n] : list) total += n;
    buffer = std::remove_reference_t<decltype(buffer)>(backend, total);
    size_t off = 0;
    for (auto& [p, n] : list) {
      *p = buffer.data() + off;
      off += n;
    }
  };
  carve(slots, arena_);
  carve(stat_slots, stats_);
  inputs_ = Buffer<int32_t>(backend, N);
  targets_ = Buffer<int32_t>(backend, N);
  losses_host_.resize(N);
}

template <class T>
size_t GPT<T>::tensor_offset(const std::string& name, int layer) const {
  const ParamTensor& t = table_.get(name);
  size_t off = t.offset;
  if (t.per_layer) off += size_t(layer) * (t.numel / size_t(dims_.L));
  return off;
}

template <class T>
void GPT<T>::scale_in_place(T* x, size_t n, double factor) const {
  if (factor != 1.0) be_.scale({x, x, A(factor), n, false});
}

template <class T>
double GPT<T>::forward(const int32_t* inputs, const int32_t* targets) {
  const int C = dims_.C;
  const size_t n = size_t(N_) * C;
  for (int i = 0; i < N_; ++i) {
    NG_REQUIRE(inputs[i] >= 0 && inputs[i] < dims_.V, "token id {} out of range for vocab_size {}", inputs[i], dims_.V);
    if (targets) NG_REQUIRE(targets[i] >= 0 && targets[i] < dims_.V, "target id {} out of range", targets[i]);
  }
  inputs_.from_host(inputs, size_t(N_));
  T* P = params.data();
  be_.encoder_forward({encoded_, inputs_.data(), tensor(P, "wte"), optional_tensor(P, "wpe", 0), B_, T_, C});
  scale_in_place(encoded_, n, plan_.factors.embed);
  const T* x = encoded_;
  if (plan_.embed_norm.active()) {
    norm_forward(plan_.embed_norm, 0, encoded_, embed_out_, embed_mean_, embed_rstd_, A(1));
    x = embed_out_;
  }
  if (plan_.dual_stream) be_.scale({dual_, x, A(1), n, false});  // d0 = h0
  for (int l = 0; l < dims_.L; ++l) {
    const T* block_in = x;
    x = sublayer_forward(l, plan_.blocks[l].attn, x, block_in, layers_[l].attn, true);
    x = sublayer_forward(l, plan_.blocks[l].mlp, x, block_in, layers_[l].mlp, false);
  }
  const T* d_or_x = plan_.dual_stream ? dual_ : x;  // what the final norm reads
  const T* fin = d_or_x;
  if (plan_.final_norm.active()) {
    norm_forward(plan_.final_norm, 0, d_or_x, final_out_, final_mean_, final_rstd_, A(1));
    fin = final_out_;
  }
  if (plan_.dual_stream) {
    be_.residual({final_sum_, x, fin, nullptr, A(1), n});  // xL + Nf(dL)
    fin = final_sum_;
  }
  // The head: logits = h . W^T over all Vp rows (W = wte when tied); the loss reads the first V.
  const T* head = tensor(P, dims_.arch.tied ? "wte" : "lmheadw");
  const bool scaled = !plan_.logit_scale.empty();
  be_.matmul_forward({scaled ? logits_raw_ : logits_, fin, head, nullptr, N_, C, dims_.Vp});
  if (scaled)
    be_.scale_columns_forward({logits_, logits_raw_, tensor(P, plan_.logit_scale), A(plan_.logit_scale_k), N_,
                               dims_.Vp});
  have_targets_ = targets != nullptr;
  if (!targets) return 0.0;
  targets_.from_host(targets, size_t(N_));
  be_.crossentropy_forward({losses_, logits_, logits_, targets_.data(), N_, dims_.V, dims_.Vp});
  // The mean on the host, in token order: the same sum on every backend.
  be_.download(losses_host_.data(), losses_, size_t(N_) * sizeof(Stat));
  double sum = 0;
  for (int i = 0; i < N_; ++i) sum += double(losses_host_[i]);
  return sum / N_;
}

template <class T>
std::vector<typename GPT<T>::A> GPT<T>::params_to_host() const {
  const std::vector<T> h = params.to_host();
  return std::vector<A>(h.begin(), h.end());
}

template <class T>
void GPT<T>::params_from_host(const std::vector<A>& host) {
  NG_CHECK(host.size() == params.size(), "{} host weights for a model of {}", host.size(), params.size());
  if constexpr (std::is_same_v<T, A>) {
    params.from_host(host);
  } else {
    const std::vector<T> rounded(host.begin(), host.end());
    params.from_host(rounded);
  }
}

template <class T>
std::vector<T> GPT<T>::logits_at(int b, int t) const {
  NG_CHECK(b >= 0 && b < B_ && t >= 0 && t < T_, "logits_at({}, {}) outside ({}, {})", b, t, B_, T_);
  return download_vector(be_, logits_ + (size_t(b) * T_ + t) * dims_.Vp, size_t(dims_.Vp));
}

template <class T>
void GPT<T>::backward(double loss_scale) {
  NG_CHECK(have_targets_, "backward() needs a forward() with targets");
  const int C = dims_.C;
  const size_t n = size_t(N_) * C;
  T* P = params.data();
  Grad* G = grads.data();
  // d(loss_scale * mean loss)/dlogits, written over the probabilities.
  be_.crossentropy_backward({logits_, logits_, targets_.data(), A(loss_scale) / A(N_), N_, dims_.V, dims_.Vp});
  if (!plan_.logit_scale.empty())
    be_.scale_columns_backward({logits_, tensor(G, plan_.logit_scale), logits_, logits_raw_,
                                tensor(P, plan_.logit_scale), A(plan_.logit_scale_k), N_, dims_.Vp, false});

  const T* xL = layers_[dims_.L - 1].mlp.y;
  const bool fnorm = plan_.final_norm.active(), dual = plan_.dual_stream;
  const char* head = dims_.arch.tied ? "wte" : "lmheadw";
  const T* head_in = dual ? final_sum_ : fnorm ? final_out_ : xL;
  // d(head input) lands where the next step reads it: dstream_ is dL/dxL for plain and dual heads.
  T* dhead_in = (fnorm && !dual) ? dtmp_f_ : dstream_;
  be_.matmul_backward({dhead_in, tensor(G, head), nullptr, logits_, head_in, tensor(P, head), N_, C, dims_.Vp, false});
  if (dual) {  // h = xL + Nf(dL): dxL = dh (in dstream_), d(dL) = Nf'(dh), shared by every sublayer output
    if (fnorm) {
      norm_backward(plan_.final_norm, 0, dstream_, dual_, final_mean_, final_rstd_, A(1), ddual_, false);
    } else {
      be_.scale({ddual_, dstream_, A(1), n, false});
    }
  } else if (fnorm) {
    norm_backward(plan_.final_norm, 0, dtmp_f_, xL, final_mean_, final_rstd_, A(1), dstream_, false);
  }

  const T* x0 = plan_.embed_norm.active() ? embed_out_ : encoded_;
  for (int l = dims_.L - 1; l >= 0; --l) {
    LayerActs<T>& a = layers_[l];
    sublayer_backward(l, plan_.blocks[l].mlp, a.attn.y, a.mlp, false);
    sublayer_backward(l, plan_.blocks[l].attn, l == 0 ? x0 : layers_[l - 1].mlp.y, a.attn, true);
    if (plan_.blocks[l].mlp.skip_block_input) be_.scale({dstream_, dskip_, A(1), n, true});
    if (grads_ready_) grads_ready_(l);  // nothing below writes block l's parameter gradients
  }
  if (dual) be_.scale({dstream_, ddual_, A(1), n, true});  // d0 = h0
  T* dencoded = dstream_;
  if (plan_.embed_norm.active()) {
    norm_backward(plan_.embed_norm, 0, dstream_, encoded_, embed_mean_, embed_rstd_, A(1), dtmp_f_, false);
    dencoded = dtmp_f_;
  }
  scale_in_place(dencoded, n, plan_.factors.embed);
  be_.encoder_backward({tensor(G, "wte"), optional_tensor(G, "wpe", 0), dencoded, inputs_.data(), B_, T_, C});
  if (grads_ready_) grads_ready_(-1);
}

template <class T>
void GPT<T>::zero_grad() {
  grads.zero();
}

template class GPT<float>;
template class GPT<double>;
template class GPT<bf16>;

}  // namespace ng
