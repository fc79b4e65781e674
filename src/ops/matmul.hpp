// Linear map (PyTorch's nn.Linear layout, as llm.c):
//   out[n, o] = sum_i inp[n, i] * weight[o, i] + bias[o]
//   shapes: inp (N,C); weight (OC,C); bias (OC) or null; out (N,OC). Saves nothing (backward reads inp).
//   backward: dinp = accumulate ? dinp + dout.W : dout.W;  dweight += dout^T.inp;  dbias += sum_n dout
#pragma once

#include "core/precision.hpp"

namespace ng {

template <class T>
struct MatmulForwardArgs {
  T* out;
  const T* inp;
  const T* weight;
  const T* bias;  // may be null
  int N, C, OC;
};

template <class T>
struct MatmulBackwardArgs {
  T* dinp;     // may be null: no input gradient wanted
  grad_t<T>* dweight;
  grad_t<T>* dbias;    // may be null
  const T* dout;
  const T* inp;
  const T* weight;
  int N, C, OC;
  bool accumulate = false;  // into dinp
};

}  // namespace ng
