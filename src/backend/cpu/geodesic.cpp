// Geodesic residual update (ops/geodesic.hpp). Forward and backward share one per-row
// computation of the intermediate quantities, so the backward is the forward's exact mirror.
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.hpp"
#include "backend/cpu/reduce.hpp"

namespace ng::cpu {
namespace {

constexpr double kEps = 1e-8;      // NORMS.md's guards on ||v|| and r
constexpr double kTinyR = 1e-6;    // below this radius: plain residual add

// Row quantities, accumulated in double whatever T is (fp32 at least, as the contract asks).
struct GeoRow {
  double r, s, k, n, t0, t1, t;
  bool fallback, clamp0, clamp1;
};

template <class T>
GeoRow geo_row(const T* x, const T* g, int C, double a, double b, double decay, double c) {
  GeoRow q{};
  double xx = 0, xg = 0;
  for (int i = 0; i < C; ++i) {
    xx += double(x[i]) * x[i];
    xg += double(x[i]) * g[i];
  }
  q.r = std::sqrt(xx);
  q.fallback = q.r < kTinyR;
  if (q.fallback) return q;
  q.s = xg;
  q.k = xg / xx;
  double vv = 0;
  for (int i = 0; i < C; ++i) {
    const double v = g[i] - q.k * x[i];
    vv += v * v;
  }
  q.n = std::sqrt(vv);
  const double ratio = q.n / (q.r + kEps);
  q.clamp0 = ratio > c;
  q.t0 = q.clamp0 ? c : ratio;
  q.t1 = a * q.t0 + b;
  q.clamp1 = decay * q.t1 > c;
  q.t = q.clamp1 ? c : decay * q.t1;
  return q;
}

}  // namespace

template <class T>
void geodesic_forward(const GeodesicForwardArgs<T>& p) {
  const double a = *p.a, b = *p.b;
#pragma omp parallel for
  for (int n = 0; n < p.N; ++n) {
    const T* x = p.x + size_t(n) * p.C;
    const T* g = p.g + size_t(n) * p.C;
    T* y = p.out + size_t(n) * p.C;
    const GeoRow q = geo_row(x, g, p.C, a, b, p.decay, p.clamp);
    if (q.fallback) {
      for (int i = 0; i < p.C; ++i) y[i] = x[i] + g[i];
      p.angle[n] = 0;
      p.clamped[n] = 0;
      continue;
    }
    const double ct = std::cos(q.t), st = std::sin(q.t), scale_u = st * q.r / (q.n + kEps);
    for (int i = 0; i < p.C; ++i) y[i] = T(ct * x[i] + scale_u * (g[i] - q.k * x[i]));
    p.angle[n] = stat_t<T>(q.t);
    p.clamped[n] = stat_t<T>(q.clamp0 || q.clamp1 ? 1 : 0);
  }
}

template <class T>
void geodesic_backward(const GeodesicBackwardArgs<T>& p) {
  const double a = *p.a, b = *p.b;
  const int C = p.C;
  using A = acc_t<T>;
  using G = grad_t<T>;
  // Per-row scalar gradients of a and b go through the deterministic row accumulator.
  G dab[2] = {0, 0};
  accumulate_rows<G>(dab, p.N, 2, [&](int n, G* acc) {
    const T* x = p.x + size_t(n) * C;
    const T* g = p.g + size_t(n) * C;
    const T* dy = p.dout + size_t(n) * C;
    T* dx = p.dx + size_t(n) * C;
    T* dg = p.dg + size_t(n) * C;
    const GeoRow q = geo_row(x, g, C, a, b, p.decay, p.clamp);
    if (q.fallback) {
      for (int i = 0; i < C; ++i) dx[i] = dg[i] = dy[i];
      return;
    }
    const double ct = std::cos(q.t), st = std::sin(q.t), ne = q.n + kEps;
    // y = cos(t) x + sin(t) r u,  u = v / ne,  v = g - k x
    double dy_x = 0, dy_v = 0;
    for (int i = 0; i < C; ++i) {
      dy_x += double(dy[i]) * x[i];
      dy_v += double(dy[i]) * (g[i] - q.k * x[i]);
    }
    const double dy_u = dy_v / ne;
    const double dt = -st * dy_x + ct * q.r * dy_u;  // dL/dt
    double dr = st * dy_u;                          // explicit r in sin(t) r u
    // t = min(decay t1, c);  t1 = a t0 + b;  t0 = min(n / (r + eps), c)
    const double dt1 = q.clamp1 ? 0.0 : p.decay * dt;
    acc[0] += G(dt1 * q.t0);
    acc[1] += G(dt1);
    const double dt0 = a * dt1;
    double dn = 0;
    if (!q.clamp0) {
      dn += dt0 / (q.r + kEps);
      dr -= dt0 * q.n / ((q.r + kEps) * (q.r + kEps));
    }
    // u = v / (n + eps): dv = du/ne - v <du, v> / (n ne^2), with du = sin(t) r dy; plus n = ||v||: dv += dn v / n
    const double du_scale = st * q.r;
    const double du_v = du_scale * dy_v;
    const double coef_v = (q.n > 0 ? (dn - du_v / (ne * ne)) / q.n : 0.0);
    // v = g - k x, k = s / r^2, s = <x, g>. Each of dx, dg is a sum of two terms, each term
    // rounded to acc_t<T> (as fp32 always did), the sum held in acc_t<T> and stored once.
    std::vector<A> dx0(C), dg0(C);
    double dk = 0;
    for (int i = 0; i < C; ++i) {
      const double v = g[i] - q.k * x[i];
      const double dv = du_scale * dy[i] / ne + coef_v * v;
      dg0[i] = A(dv);
      dx0[i] = A(ct * dy[i] - q.k * dv);
      dk -= dv * x[i];
    }
    const double ds = dk / (q.r * q.r);
    dr -= 2.0 * q.s * dk / (q.r * q.r * q.r);
    for (int i = 0; i < C; ++i) {
      dx[i] = dx0[i] + A(ds * g[i] + dr * x[i] / q.r);
      dg[i] = dg0[i] + A(ds * x[i]);
    }
  });
  *p.da += dab[0];
  *p.db += dab[1];
}

template void geodesic_forward<float>(const GeodesicForwardArgs<float>&);
template void geodesic_forward<double>(const GeodesicForwardArgs<double>&);
template void geodesic_forward<bf16>(const GeodesicForwardArgs<bf16>&);
template void geodesic_backward<float>(const GeodesicBackwardArgs<float>&);
template void geodesic_backward<double>(const GeodesicBackwardArgs<double>&);
template void geodesic_backward<bf16>(const GeodesicBackwardArgs<bf16>&);

}  // namespace ng::cpu
