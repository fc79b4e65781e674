// Causal multi-head self-attention on a packed qkv tensor:
//   qkv (B,T,3C) = [q | k | v], each split into NH heads of width hs = C/NH (head h = columns h*hs..)
//   att[b,h,t,s] = softmax_s<=t( scale * q[b,t,h].k[b,s,h] )         (s > t: exactly 0)
//   scale = 1/sqrt(hs) by default (0 below); nGPT's unit-norm q, k use sqrt(hs).
//   out[b,t,h*hs + i] = sum_s att[b,h,t,s] * v[b,s,h,i]             out (B,T,C)
//   saves att (B,NH,T,T) probabilities for backward.
//   backward: dqkv is overwritten (every element, including the masked ones' zero contributions);
//   scratch (B,NH,T,T) is workspace.
#pragma once

namespace ng {

template <class T>
struct AttentionForwardArgs {
  T* out;
  T* att;
  const T* qkv;
  int B, T_, C, NH;
  double scale = 0;  // 0: 1/sqrt(hs)
};

template <class T>
struct AttentionBackwardArgs {
  T* dqkv;
  T* scratch;
  const T* dout;
  const T* qkv;
  const T* att;
  int B, T_, C, NH;
  double scale = 0;
};

}  // namespace ng
