// Embedding: out[b,t,:] = wte[tokens[b,t], :] + wpe[t, :]
//   shapes: tokens (B,T) int32 < V; wte (Vp,C); wpe (maxT,C) with T <= maxT; out (B,T,C)
//   wpe (and dwpe) may be null: no position table (model.pos rope), out = wte[tokens]
//   saves nothing (backward needs only the tokens)
//   backward: dwte[tokens[b,t]] += dout[b,t]; dwpe[t] += dout[b,t]   (always accumulates)
#pragma once

#include "core/precision.hpp"

#include <cstdint>

namespace ng {

template <class T>
struct EncoderForwardArgs {
  T* out;
  const int32_t* tokens;
  const T* wte;
  const T* wpe;
  int B, T_, C;
};

template <class T>
struct EncoderBackwardArgs {
  grad_t<T>* dwte;
  grad_t<T>* dwpe;
  const T* dout;
  const int32_t* tokens;
  int B, T_, C;
};

}  // namespace ng
