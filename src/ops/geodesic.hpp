// Geodesic residual update (GeoNorm, NORMS.md), per row of C values, x the stream, g the update:
//   r = ||x||;  v = g - (<x,g>/r^2) x;  u = v / (||v|| + 1e-8)
//   t0 = min(||v|| / (r + 1e-8), c);  t1 = a t0 + b;  t = min(decay * t1, c)
//   out = cos(t) x + sin(t) r u              (rows with r < 1e-6: out = x + g)
//   a, b: learnable scalars of this sublayer; decay, c: constants of the plan.
//   saves angle[n] = t and clamped[n] = 1 when either clamp is active (for layer statistics);
//   backward recomputes the rest from x and g. Where a clamp is active its gradient is zero.
//   backward: dx, dg overwritten; da, db accumulate. Row reductions and cos/sin in at least fp32.
#pragma once

#include "core/precision.hpp"

namespace ng {

template <class T>
struct GeodesicForwardArgs {
  T* out;
  stat_t<T>* angle;    // (N)
  stat_t<T>* clamped;  // (N)
  const T* x;
  const T* g;
  const T* a;  // scalar
  const T* b;  // scalar
  double decay, clamp;
  int N, C;
};

template <class T>
struct GeodesicBackwardArgs {
  T* dx;
  T* dg;
  grad_t<T>* da;  // scalar, accumulated
  grad_t<T>* db;  // scalar, accumulated
  const T* dout;
  const T* x;
  const T* g;
  const T* a;
  const T* b;
  double decay, clamp;
  int N, C;
};

}  // namespace ng
