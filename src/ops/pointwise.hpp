// Elementwise ops.
//   gelu (tanh form, GPT-2): out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//     backward: dinp = (accumulate ? dinp : 0) + gelu'(inp) * dout
//   residual: out = alpha * x + g (+ skip when skip is not null); out may alias x or g.
//     Its backward is linear: dx = alpha * dout, dg = dskip = dout, done with `scale`.
//   scale: dst = (accumulate ? dst : 0) + alpha * src; dst may alias src.
#pragma once

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
  T alpha;
  size_t n;
};

template <class T>
struct ScaleArgs {
  T* dst;
  const T* src;
  T alpha;
  size_t n;
  bool accumulate = false;
};

}  // namespace ng
