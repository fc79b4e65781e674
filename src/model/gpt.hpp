// GPT forward and backward over a per-block plan (norm/plan.hpp), through a Backend.
//
// Memory follows llm.c: one buffer of parameters, one of gradients (same layout, see params.hpp),
// one arena of activations sized for a fixed micro-batch (B, T), all allocated through the
// backend (host memory on the CPU, device memory on CUDA; backend/memory.hpp). The model never branches on a
// strategy's name: each sublayer runs  u = in(x); f = core(u); g = out(f); y = combine(x, g)
// as its SublayerPlan says.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "model/dims.hpp"
#include "model/params.hpp"
#include "norm/plan.hpp"

namespace ng {

template <class T>
struct SublayerActs {
  T* in_norm = nullptr;  // u when the input transform normalizes (N,C)
  stat_t<T>* in_mean = nullptr;
  stat_t<T>* in_rstd = nullptr;
  T* out = nullptr;      // f: the core's output (N,C)
  T* out_norm = nullptr; // g when the output transform normalizes (N,C)
  stat_t<T>* out_mean = nullptr;
  stat_t<T>* out_rstd = nullptr;
  T* z = nullptr;        // NormAdd, Lerp + norm: the value before the combine's norm (N,C)
  stat_t<T>* z_mean = nullptr;
  stat_t<T>* z_rstd = nullptr;
  stat_t<T>* angle = nullptr;    // Geodesic: the update angle t per token (N)
  stat_t<T>* clamped = nullptr;  // Geodesic: 1 where a clamp was active (N)
  T* y = nullptr;        // the stream after the combine (N,C)
};

template <class T>
struct LayerActs {
  SublayerActs<T> attn, mlp;
  T* qkv = nullptr;       // (N,3C) attention's input [q | k | v]
  T* qkv_raw = nullptr;   // (N,3C) the projection's output when q, k, v are transformed (norms, RoPE)
  T* qkv_split = nullptr; // (3,N,C) q, k, v copied out of qkv_raw: the norms' inputs
  T* qkv_normed = nullptr;// (3,N,C) after the norms (q, k then rotated in place)
  stat_t<T>* qkv_mean = nullptr;  // (3,N*NH)
  stat_t<T>* qkv_rstd = nullptr;  // (3,N*NH)
  stat_t<T>* att = nullptr;  // attention's saved state: (B,NH,T,T) probabilities on the CPU, (B,NH,T) under flash
  T* atty = nullptr;      // (N,C) attention output before the projection
  T* fch_raw = nullptr;   // (N,F) up projection before a learned input scale (nGPT's suv), if any
  T* fch = nullptr;       // (N,F) activation input (F = H, or 2H [gate | up] under swiglu)
  T* fch_act = nullptr;   // (N,H) activation output
};

template <class T>
class GPT {
 public:
  using Grad = grad_t<T>;  // parameter gradients (fp32 under bf16)
  using Stat = stat_t<T>;  // saved statistics (at least fp32)
  using A = acc_t<T>;      // op constants and arithmetic (at least fp32)

  // B, T: the micro-batch this instance runs (activations are sized for it); T <= dims.maxT.
  GPT(const ModelDims& dims, const ModelPlan& plan, const Backend<T>& backend, int B, int T_len);

  const ModelDims& dims() const { return dims_; }
  const ModelPlan& plan() const { return plan_; }
  const ParamTable& table() const { return table_; }
  int batch() const { return B_; }
  int seq_len() const { return T_; }

  const Backend<T>& backend() const { return be_; }

  // The weights as host values in full precision (acc_t<T>), and back (rounded to T). Under
  // mixed precision the optimizer's master copy, not these, is the weights of record.
  std::vector<A> params_to_host() const;
  void params_from_host(const std::vector<A>& host);

  Buffer<T> params;    // table().total() elements, in the backend's memory
  Buffer<Grad> grads;  // same layout
  // Bytes of activations, backward scratch and saved statistics.
  size_t activation_bytes() const { return arena_.size() * sizeof(T) + stats_.size() * sizeof(Stat); }

  // Runs the model on inputs (B,T). With targets (B,T) returns the mean cross-entropy and keeps
  // the probabilities for backward(); without, leaves the logits readable through logits().
  double forward(const int32_t* inputs, const int32_t* targets);
  // Accumulates d(loss_scale * mean loss)/d(params) into grads. Requires forward with targets.
  void backward(double loss_scale);
  void zero_grad();
  // Called by backward() as soon as block `layer`'s parameter gradients are final (layers
  // descending), then with -1 when the rest (embeddings, final norm, head) are: data parallelism
  // starts averaging a block while the pass goes on (dist.overlap). Empty: no calls.
  void set_grads_ready_hook(std::function<void(int layer)> hook) { grads_ready_ = std::move(hook); }

  // (B,T,Vp) after forward without targets; backend memory (host memory on the CPU backend).
  const T* logits() const { return logits_; }
  // Host copy of the logits (Vp) at batch row b, position t, after forward without targets.
  std::vector<T> logits_at(int b, int t) const;
  // Activations of the last forward pass, for layer statistics (backend memory).
  const LayerActs<T>& layer_acts(int layer) const { return layers_[layer]; }

  // Pointer to tensor `name` (layer slice `layer` for per-layer tensors) in a buffer of the
  // table's layout: params.data() or grads.data().
  template <class E>
  E* tensor(E* buffer, const std::string& name, int layer = 0) const {
    return buffer + tensor_offset(name, layer);
  }
  size_t tensor_offset(const std::string& name, int layer = 0) const;

 private:
  const T* sublayer_forward(int l, const SublayerPlan& p, const T* x, const T* block_in, SublayerActs<T>& a,
                            bool attention);
  void sublayer_backward(int l, const SublayerPlan& p, const T* x, SublayerActs<T>& a, bool attention);
  const T* combine_backward(int l, const SublayerPlan& p, const T* x, SublayerActs<T>& a);
  void attention_core_forward(int l, const T* u);
  void mlp_core_forward(int l, const T* u);
  void attention_core_backward(int l, const T* df, const T* u, T* du, bool accumulate);
  void mlp_core_backward(int l, const T* df, const T* u, T* du, bool accumulate);
  void qkv_transform_forward(int l);
  void qkv_transform_backward(int l);
  void norm_forward(const NormSite& site, int l, const T* x, T* out, Stat* mean, Stat* rstd, A scale);
  void norm_backward(const NormSite& site, int l, const T* dout, const T* x, const Stat* mean, const Stat* rstd,
                     A scale, T* dx, bool accumulate);
  // A tensor's pointer, or null when it has no elements (biases under model.bias false, wpe under RoPE).
  template <class E>
  E* optional_tensor(E* buffer, const std::string& name, int layer) const {
    return table_.get(name).numel == 0 ? nullptr : tensor(buffer, name, layer);
  }
  void scale_in_place(T* x, size_t n, double factor) const;

  ModelDims dims_;
  ModelPlan plan_;
  const Backend<T>& be_;
  ParamTable table_;
  int B_, T_, N_;

  Buffer<T> arena_;     // every activation and backward scratch buffer
  Buffer<Stat> stats_;  // saved statistics: norm mean/rstd, geodesic angles, losses
  Buffer<int32_t> inputs_, targets_;
  std::vector<Stat> losses_host_;
  T* encoded_ = nullptr;
  T* embed_out_ = nullptr;
  stat_t<T>* embed_mean_ = nullptr;
  stat_t<T>* embed_rstd_ = nullptr;
  std::vector<LayerActs<T>> layers_;
  T* final_out_ = nullptr;
  stat_t<T>* final_mean_ = nullptr;
  stat_t<T>* final_rstd_ = nullptr;
  T* dual_ = nullptr;         // ResiDual's stream d (N,C)
  T* final_sum_ = nullptr;    // ResiDual's head input xL + Nf(dL) (N,C)
  T* logits_raw_ = nullptr;   // (N,Vp) logits before a learned logit scale, if any
  T* logits_ = nullptr;  // (N,Vp); holds probs, then dlogits, after a forward with targets
  stat_t<T>* losses_ = nullptr;
  // backward scratch
  T* dstream_ = nullptr;  // gradient of the residual stream, flowing down the blocks (N,C)
  T* dtmp_f_ = nullptr;   // (N,C)
  T* dtmp_u_ = nullptr;   // (N,C)
  T* datty_ = nullptr;    // (N,C)
  T* dqkv_ = nullptr;     // (N,3C)
  T* dqkv_part_ = nullptr;  // (N,C) one of q, k, v during the transform's backward
  T* dqkv_part2_ = nullptr; // (N,C)
  T* dfch_ = nullptr;     // (N,F)
  T* dact_ = nullptr;     // (N,H)
  T* dtmp_o_ = nullptr;   // (N,C) a core's output gradient times a constant factor
  T* ddual_ = nullptr;    // (N,C) ResiDual: gradient of dL, shared by every sublayer output
  T* ddg_ = nullptr;      // (N,C) ResiDual: a sublayer output's gradient from both streams
  stat_t<T>* datt_scratch_ = nullptr;
  T* dtmp_z_ = nullptr;   // (N,C) NormAdd: gradient of the pre-norm sum
  T* dtmp_g_ = nullptr;   // (N,C) Geodesic: gradient of the update
  T* dx_alt_ = nullptr;   // (N,C) Geodesic: dx, then swapped with dstream_
  T* dskip_ = nullptr;    // (N,C) b2t: gradient reaching the block input through the skip
  bool have_targets_ = false;
  std::function<void(int)> grads_ready_;
};

}  // namespace ng
