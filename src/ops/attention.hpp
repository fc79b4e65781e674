// Causal multi-head self-attention on a packed qkv tensor:
//   qkv (B,T,3C) = [q | k | v], each split into NH heads of width hs = C/NH (head h = columns h*hs..)
//   att[b,h,t,s] = softmax_s<=t( scale * q[b,t,h].k[b,s,h] )         (s > t: exactly 0)
//   scale = 1/sqrt(hs) by default (0 below); nGPT's unit-norm q, k use sqrt(hs).
//   out[b,t,h*hs + i] = sum_s att[b,h,t,s] * v[b,s,h,i]             out (B,T,C)
//   saves `att` for backward: a state whose layout is the backend's (Backend::attention_state_size).
//     The CPU keeps the probabilities (B,NH,T,T); a fused (flash) kernel keeps one log-sum-exp per
//     row (B,NH,T), so memory does not grow with T^2.
//   backward: dqkv is overwritten (every element, including the masked ones' zero contributions);
//   scratch (Backend::attention_scratch_size elements) is workspace; `out` is the forward's output
//   (a fused kernel needs rowsum(dout * out); the CPU ignores it).
#pragma once

#include "core/precision.hpp"

namespace ng {

template <class T>
struct AttentionForwardArgs {
  T* out;
  stat_t<T>* att;  // saved state, fp32 under bf16 (a bf16 log-sum-exp near 10 is off by 0.03)
  const T* qkv;
  int B, T_, C, NH;
  double scale = 0;  // 0: 1/sqrt(hs)
};

template <class T>
struct AttentionBackwardArgs {
  T* dqkv;
  stat_t<T>* scratch;
  const T* dout;
  const T* qkv;
  const stat_t<T>* att;
  int B, T_, C, NH;
  double scale = 0;
  const T* out = nullptr;  // the forward's output (B,T,C)
};

}  // namespace ng
