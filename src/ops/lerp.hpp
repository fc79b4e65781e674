// Scaled interpolation toward a sublayer's output, per row of C values (nGPT's and anGPT's
// residual update; NORMS.md wave 2). With a per-channel learned vector alpha:
//   a[c] = alpha_scale * alpha[c]          (abs_alpha: |alpha_scale * alpha[c]|, nGPT's |aA|)
//   w[c] = nu ? 1 / sqrt(a^2 + (1-a)^2) : 1   (anGPT's nu(a): keeps ||out|| near 1 for unit x, g)
//   out[n,c] = w[c] * ((1 - a[c]) x[n,c] + a[c] g[n,c])
//   alpha_scale is the reparameterization constant (nGPT: alpha_init / alpha_scale), so the
//   stored parameter and its effective value differ by a constant factor.
//   backward: dx = w (1-a) dout, dg = w a dout (overwritten; neither may alias dout);
//   dalpha[c] += d/dalpha[c] of sum_n dout[n,c] out[n,c] (accumulated over rows).
#pragma once

#include "core/precision.hpp"

namespace ng {

template <class T>
struct LerpForwardArgs {
  T* out;
  const T* x;
  const T* g;
  const T* alpha;  // (C)
  acc_t<T> alpha_scale;
  bool abs_alpha;
  bool nu;
  int N, C;
};

template <class T>
struct LerpBackwardArgs {
  T* dx;
  T* dg;
  grad_t<T>* dalpha;  // (C), accumulated
  const T* dout;
  const T* x;
  const T* g;
  const T* alpha;
  acc_t<T> alpha_scale;
  bool abs_alpha;
  bool nu;
  int N, C;
};

}  // namespace ng
