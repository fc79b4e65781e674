// Elementwise ops.
//   gelu (tanh form, GPT-2): out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//     backward: dinp = (accumulate ? dinp : 0) + gelu'(inp) * dout
//   residual: out = alpha * x + g (+ skip when skip is not null); out may alias x or g.
//     Its backward is linear: dx = alpha * dout, dg = dskip = dout, done with `scale`.
//   scale: dst = (accumulate ? dst : 0) + alpha * src; dst may alias src.
//   swiglu (model.mlp swiglu): inp (N,2H) = [gate | up] per row, out (N,H) = silu(gate) * up,
//     silu(z) = z / (1 + exp(-z)). backward: dinp (N,2H) overwritten.
//   scale_columns: out[n,c] = k * s[c] * x[n,c] for a learned vector s (W) and a constant k
//     (nGPT's suv and sz with their reparameterization constant); out must not alias x.
//     backward: dx = (accumulate ? dx : 0) + k s dout (dx may alias dout); ds[c] += k sum_n dout x.
//   copy2d: dst[r*ld_dst + c] = (accumulate ? dst : 0) + src[r*ld_src + c] for c < width: moves
//     q, k, v between the packed (N,3C) qkv tensor and contiguous (N,C) buffers.
#pragma once

#include "core/precision.hpp"

#include <cstddef>

namespace ng {

template <class T>
struct GeluForwardArgs {
  T* out;
  const T* inp;
  size_t n;
};

template <class T>
struct GeluBackwardArgs {
  T* dinp;
  const T* inp;
  const T* dout;
  size_t n;
  bool accumulate = false;
};

template <class T>
struct ResidualArgs {
  T* out;
  const T* x;
  const T* g;
  const T* skip;  // may be null
  acc_t<T> alpha;
  size_t n;
};

template <class T>
struct ScaleArgs {
  T* dst;
  const T* src;
  acc_t<T> alpha;
  size_t n;
  bool accumulate = false;
};

template <class T>
struct SwigluForwardArgs {
  T* out;
  const T* inp;
  int N, H;
};

template <class T>
struct SwigluBackwardArgs {
  T* dinp;
  const T* inp;
  const T* dout;
  int N, H;
};

template <class T>
struct ScaleColumnsForwardArgs {
  T* out;
  const T* x;
  const T* s;  // (W)
  acc_t<T> k;
  int N, W;
};

template <class T>
struct ScaleColumnsBackwardArgs {
  T* dx;
  grad_t<T>* ds;  // (W), accumulated
  const T* dout;
  const T* x;
  const T* s;
  acc_t<T> k;
  int N, W;
  bool accumulate = false;
};

template <class T>
struct Copy2dArgs {
  T* dst;
  int ld_dst;
  const T* src;
  int ld_src;
  int rows, width;
  bool accumulate = false;
};

}  // namespace ng
