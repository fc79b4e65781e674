// Rotary position embedding (RoPE, Su et al.), applied to q and k per head:
//   inp, out (B,T,C) contiguous; head h = columns h*hs .. h*hs+hs-1, hs = C/NH even, h2 = hs/2.
//   Pairs are (i, i + h2) within a head (the "rotate half" convention), i < h2, with the angle
//     phi(t, i) = t * theta^(-2i/hs)            (t = position in the sequence, 0-based)
//   out[i]      = x[i] cos(phi) - x[i+h2] sin(phi)
//   out[i + h2] = x[i] sin(phi) + x[i+h2] cos(phi)
//   inverse = true rotates by -phi: that is the backward (dinp = R^T dout), since R is orthogonal.
//   out may alias inp. Angles are computed in double, so every backend agrees to rounding.
#pragma once

namespace ng {

template <class T>
struct RopeArgs {
  T* out;
  const T* inp;
  int B, T_, C, NH;
  double theta = 10000.0;
  bool inverse = false;
};

}  // namespace ng
