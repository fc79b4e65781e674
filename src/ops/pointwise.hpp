// Elementwise ops.
//   gelu (tanh form, GPT-2): out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//     backward: dinp = (accumulate ? dinp : 0) + gelu'(inp) * dout
//   residual add: out = a + b; backward is the identity into both inputs (the model adds dout
//     to the stream gradient directly, so no kernel is needed).
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
struct AddArgs {
  T* out;  // may alias a
  const T* a;
  const T* b;
  size_t n;
};

}  // namespace ng
