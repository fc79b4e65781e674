// Row normalization, per row n of C values (NORMS.md):
//   layernorm: out = scale * (g * (x - mean) * rstd + b),  rstd = 1/sqrt(var + eps) (biased var)
//   rmsnorm:   out = scale * (g * x * rstd),               rstd = 1/sqrt(mean(x^2) + eps), mean := 0
//   dyt:       out = scale * (g * tanh(alpha * x) + b), alpha a learned scalar (mean, rstd unused: 0, 1)
//   l2:        out = scale * (g * x * rstd),               rstd = 1/sqrt(sum(x^2) + eps), mean := 0
//              (nGPT's and anGPT's exact normalization to the unit sphere; g may be null = all ones)
//   group: the statistics are taken over each group of `group` consecutive columns of a row (per
//   attention head for model.qk_norm head; 0 = the whole row); mean/rstd then hold N * (C/group)
//   values, row-major. Gains and biases always have C entries. dyt ignores group.
//   `scale` is a constant (1 except LayerNorm Scaling's 1/sqrt(l+1)); the bias is not read under rmsnorm.
//   shapes: inp, out (N,C); g, b (C); saves mean, rstd (N, or N*C/group) for backward. Statistics in
//   at least fp32. A null weight means gain 1 (then dweight is null too).
//   backward: dinp = accumulate ? dinp + dx : dx; dg += ...; db += ... (parameter grads always
//   accumulate, so micro-batches and layers sharing nothing can sum into one gradient buffer).
#pragma once

#include "core/precision.hpp"

#include "norm/plan.hpp"

namespace ng {

template <class T>
struct NormForwardArgs {
  T* out;
  stat_t<T>* mean;   // (N, or N*C/group); written as 0 under rmsnorm and l2
  stat_t<T>* rstd;   // (N, or N*C/group)
  const T* inp;
  const T* weight;
  const T* bias;  // may be null under rmsnorm
  int N, C;
  float eps;
  NormFunction fn;
  acc_t<T> scale = 1;
  const T* alpha = nullptr;  // dyt only: the site's scalar
  int group = 0;             // 0: statistics over the whole row
};

template <class T>
struct NormBackwardArgs {
  T* dinp;
  grad_t<T>* dweight;
  grad_t<T>* dbias;  // may be null under rmsnorm
  const T* dout;
  const T* inp;
  const T* weight;
  const stat_t<T>* mean;
  const stat_t<T>* rstd;
  int N, C;
  NormFunction fn;
  acc_t<T> scale = 1;
  bool accumulate = false;  // into dinp
  const T* alpha = nullptr;  // dyt only
  grad_t<T>* dalpha = nullptr;  // dyt only, accumulated
  int group = 0;
};

}  // namespace ng
