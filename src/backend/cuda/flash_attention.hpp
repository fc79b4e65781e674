// Fused flash-style causal attention (same math as ops/attention.hpp), device pointers, default
// stream. Instead of the (B,NH,T,T) probabilities it saves one log-sum-exp per row, so memory is
// O(B*NH*T) beyond the inputs and outputs, and backward recomputes the probabilities tile by tile:
//   lse[b,h,t] = log sum_{s<=t} exp(scale * q[b,t,h].k[b,s,h])       lse (B,NH,T)
//   P[t,s]     = exp(scale * q[t].k[s] - lse[t])                      (s <= t, else 0)
//   delta[t]   = dout[t].out[t]  (= sum_s P[t,s] dP[t,s], dP[t,s] = dout[t].v[s])
//   dS[t,s]    = P[t,s] (dP[t,s] - delta[t])
//   dq[t] = scale sum_s dS[t,s] k[s]   dk[s] = scale sum_t dS[t,s] q[t]   dv[s] = sum_t P[t,s] dout[t]
// Head size hs = C/NH at most kFlashMaxHeadSize; any T. Deterministic: every output element is
// written by one thread that sums in a fixed order (no atomics), so two runs are bitwise equal.
// Plain C++ declarations (no CUDA headers) so host code that includes spdlog can call them.
// Arithmetic, lse and delta are in acc_t<T>: fp32 for float and bf16 storage, double for double.
#pragma once

#include "core/precision.hpp"

namespace ng::cuda {

constexpr int kFlashMaxHeadSize = 128;

template <class T>
struct FlashAttentionForwardArgs {
  T* out;               // (B,T,C), overwritten
  acc_t<T>* lse;        // (B,NH,T), overwritten: log-sum-exp of the scaled scores, saved for backward
  const T* qkv;         // (B,T,3C) = [q | k | v]
  int B, T_, C, NH;
  double scale = 0;  // 0: 1/sqrt(hs)
};

template <class T>
struct FlashAttentionBackwardArgs {
  T* dqkv;              // (B,T,3C), overwritten (every element)
  acc_t<T>* delta;      // (B,NH,T) workspace: dout[t].out[t] per head
  const T* dout;        // (B,T,C)
  const T* out;         // (B,T,C), from the forward
  const acc_t<T>* lse;  // (B,NH,T), from the forward
  const T* qkv;         // (B,T,3C)
  int B, T_, C, NH;
  double scale = 0;  // the forward's
};

// Instantiated for float, double (computes in double throughout) and bf16 (fp32 arithmetic).
template <class T> void flash_attention_forward(const FlashAttentionForwardArgs<T>& a);
template <class T> void flash_attention_backward(const FlashAttentionBackwardArgs<T>& a);

}  // namespace ng::cuda
