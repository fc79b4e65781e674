// Row normalization, per row n of C values (NORMS.md):
//   layernorm: out = scale * (g * (x - mean) * rstd + b),  rstd = 1/sqrt(var + eps) (biased var)
//   rmsnorm:   out = scale * (g * x * rstd),               rstd = 1/sqrt(mean(x^2) + eps), mean := 0
//   dyt:       out = scale * (g * tanh(alpha * x) + b), alpha a learned scalar (mean, rstd unused: 0, 1)
//   `scale` is a constant (1 except LayerNorm Scaling's 1/sqrt(l+1)); the bias is not read under rmsnorm.
//   shapes: inp, out (N,C); g, b (C); saves mean, rstd (N) for backward. Statistics in at least fp32.
//   backward: dinp = accumulate ? dinp + dx : dx; dg += ...; db += ... (parameter grads always
//   accumulate, so micro-batches and layers sharing nothing can sum into one gradient buffer).
#pragma once

#include "norm/plan.hpp"

namespace ng {

template <class T>
struct NormForwardArgs {
  T* out;
  T* mean;   // (N); written as 0 under rmsnorm
  T* rstd;   // (N)
  const T* inp;
  const T* weight;
  const T* bias;  // may be null under rmsnorm
  int N, C;
  float eps;
  NormFunction fn;
  T scale = T(1);
  const T* alpha = nullptr;  // dyt only: the site's scalar
};

template <class T>
struct NormBackwardArgs {
  T* dinp;
  T* dweight;
  T* dbias;  // may be null under rmsnorm
  const T* dout;
  const T* inp;
  const T* weight;
  const T* mean;
  const T* rstd;
  int N, C;
  NormFunction fn;
  T scale = T(1);
  bool accumulate = false;  // into dinp
  const T* alpha = nullptr;  // dyt only
  T* dalpha = nullptr;       // dyt only, accumulated
};

}  // namespace ng
