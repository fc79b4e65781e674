// Geodesic residual update kernels (ops/geodesic.hpp), a line-by-line mirror of the CPU reference
// (backend/cpu/geodesic.cpp): one block per row, row reductions and cos/sin in double, the same
// clamps, the same r < 1e-6 fallback and the same float rounding points in the outputs.
// bf16 storage: values are read exactly into double (through float), each output is rounded to
// float where the fp32 kernel rounds and then stored once (bf16: rounded again, once); angle and
// clamped (stat_t) and da, db (grad_t) are fp32.
#include <cmath>

#include "backend/cuda/check.cuh"
#include "backend/cuda/convert.cuh"
#include "backend/cuda/geodesic.hpp"
#include "backend/cuda/reduce.cuh"

namespace ng::cuda {
namespace {

constexpr double kEps = 1e-8;    // NORMS.md's guards on ||v|| and r
constexpr double kTinyR = 1e-6;  // below this radius: plain residual add
constexpr int kThreads = 256;    // per row; a multiple of 32 (block_sum needs it)
constexpr int kMaxWarps = 32;
// Backward grid: at most this many blocks, each owning rows n = block, block + grid, ... Fixed
// (depends on N only), so the da/db summation order never changes.
constexpr int kMaxPartials = 1024;

// Per-block partial sums of da, db (2 per block). Static device storage: no allocation per call;
// launches on the default stream are serialized, so one buffer suffices.
__device__ double g_partials[2 * kMaxPartials];

struct GeoRow {
  double r, s, k, n, t0, t1, t;
  bool fallback, clamp0, clamp1;
};

// A stored value in double (exact for float and bf16).
template <class T>
__device__ __forceinline__ double ld(const T* p, int i) {
  return double(to_float(p[i]));
}

// The CPU's geo_row with block reductions. Every thread gets the same values, so the early return
// (and every later branch on these values) is uniform across the block: no divergent barriers.
template <class T>
__device__ GeoRow geo_row(const T* x, const T* g, int C, double a, double b, double decay, double c, double* sh) {
  GeoRow q{};
  double xx = 0, xg = 0;
  for (int i = threadIdx.x; i < C; i += blockDim.x) {
    const double xi = ld(x, i);
    xx += xi * xi;
    xg += xi * ld(g, i);
  }
  xx = block_sum(xx, sh);
  xg = block_sum(xg, sh);
  q.r = sqrt(xx);
  q.fallback = q.r < kTinyR;
  if (q.fallback) return q;
  q.s = xg;
  q.k = xg / xx;
  double vv = 0;
  for (int i = threadIdx.x; i < C; i += blockDim.x) {
    const double v = ld(g, i) - q.k * ld(x, i);
    vv += v * v;
  }
  q.n = sqrt(block_sum(vv, sh));
  const double ratio = q.n / (q.r + kEps);
  q.clamp0 = ratio > c;
  q.t0 = q.clamp0 ? c : ratio;
  q.t1 = a * q.t0 + b;
  q.clamp1 = decay * q.t1 > c;
  q.t = q.clamp1 ? c : decay * q.t1;
  return q;
}

template <class T>
__global__ void geodesic_forward_kernel(GeodesicForwardArgs<T> p) {
  __shared__ double sh[kMaxWarps];
  const int n = blockIdx.x, C = p.C;
  const T* x = p.x + size_t(n) * C;
  const T* g = p.g + size_t(n) * C;
  T* y = p.out + size_t(n) * C;
  const GeoRow q = geo_row(x, g, C, ld(p.a, 0), ld(p.b, 0), p.decay, p.clamp, sh);
  if (q.fallback) {
    for (int i = threadIdx.x; i < C; i += blockDim.x) y[i] = from_float<T>(to_float(x[i]) + to_float(g[i]));
    if (threadIdx.x == 0) p.angle[n] = p.clamped[n] = 0;
    return;
  }
  const double ct = cos(q.t), st = sin(q.t), scale_u = st * q.r / (q.n + kEps);
  for (int i = threadIdx.x; i < C; i += blockDim.x) {
    const double xi = ld(x, i);
    y[i] = from_float<T>(float(ct * xi + scale_u * (ld(g, i) - q.k * xi)));
  }
  if (threadIdx.x == 0) {
    p.angle[n] = float(q.t);
    p.clamped[n] = q.clamp0 || q.clamp1 ? 1.0f : 0.0f;
  }
}

// Rows n = blockIdx.x + j * gridDim.x in increasing j; thread 0 adds each row's (dt1 t0, dt1) to
// the block's partials in that order. dx and dg are written once per element, in the last pass (its
// first term recomputed there, rather than stored and re-read: a bf16 store would round it twice),
// so only the reductions need barriers.
template <class T>
__global__ void geodesic_backward_kernel(GeodesicBackwardArgs<T> p) {
  __shared__ double sh[kMaxWarps];
  const int C = p.C;
  const double a = ld(p.a, 0), b = ld(p.b, 0);
  double acc_a = 0, acc_b = 0;
  for (int n = blockIdx.x; n < p.N; n += gridDim.x) {
    const T* x = p.x + size_t(n) * C;
    const T* g = p.g + size_t(n) * C;
    const T* dy = p.dout + size_t(n) * C;
    T* dx = p.dx + size_t(n) * C;
    T* dg = p.dg + size_t(n) * C;
    const GeoRow q = geo_row(x, g, C, a, b, p.decay, p.clamp, sh);
    if (q.fallback) {
      for (int i = threadIdx.x; i < C; i += blockDim.x) dx[i] = dg[i] = dy[i];
      continue;
    }
    const double ct = cos(q.t), st = sin(q.t), ne = q.n + kEps;
    // y = cos(t) x + sin(t) r u,  u = v / ne,  v = g - k x
    double dy_x = 0, dy_v = 0;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
      const double dyi = ld(dy, i), xi = ld(x, i);
      dy_x += dyi * xi;
      dy_v += dyi * (ld(g, i) - q.k * xi);
    }
    dy_x = block_sum(dy_x, sh);
    dy_v = block_sum(dy_v, sh);
    const double dy_u = dy_v / ne;
    const double dt = -st * dy_x + ct * q.r * dy_u;  // dL/dt
    double dr = st * dy_u;                          // explicit r in sin(t) r u
    // t = min(decay t1, c);  t1 = a t0 + b;  t0 = min(n / (r + eps), c)
    const double dt1 = q.clamp1 ? 0.0 : p.decay * dt;
    // The CPU rounds each row's contribution to grad_t before summing; so do we.
    acc_a += double(float(dt1 * q.t0));
    acc_b += double(float(dt1));
    const double dt0 = a * dt1;
    double dn = 0;
    if (!q.clamp0) {
      dn += dt0 / (q.r + kEps);
      dr -= dt0 * q.n / ((q.r + kEps) * (q.r + kEps));
    }
    // u = v / (n + eps): dv = du/ne - v <du, v> / (n ne^2), du = sin(t) r dy; n = ||v||: dv += dn v / n
    const double du_scale = st * q.r;
    const double du_v = du_scale * dy_v;
    const double coef_v = (q.n > 0 ? (dn - du_v / (ne * ne)) / q.n : 0.0);
    // v = g - k x, k = s / r^2, s = <x, g>. dx and dg are each two terms rounded to float, summed
    // in float and stored once (the CPU's rounding points).
    double dk = 0;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
      const double v = ld(g, i) - q.k * ld(x, i);
      const double dv = du_scale * ld(dy, i) / ne + coef_v * v;
      dk -= dv * ld(x, i);
    }
    dk = block_sum(dk, sh);
    const double ds = dk / (q.r * q.r);
    dr -= 2.0 * q.s * dk / (q.r * q.r * q.r);
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
      const double xi = ld(x, i), gi = ld(g, i), dyi = ld(dy, i);
      const double dv = du_scale * dyi / ne + coef_v * (gi - q.k * xi);
      const float dg0 = float(dv), dx0 = float(ct * dyi - q.k * dv);
      dx[i] = from_float<T>(dx0 + float(ds * gi + dr * xi / q.r));
      dg[i] = from_float<T>(dg0 + float(ds * xi));
    }
  }
  if (threadIdx.x == 0) {
    g_partials[2 * blockIdx.x] = acc_a;
    g_partials[2 * blockIdx.x + 1] = acc_b;
  }
}

// One thread: da += sum of partials in block order (the fixed-order final pass).
__global__ void geodesic_dab_kernel(float* da, float* db, int blocks) {
  double sa = 0, sb = 0;
  for (int i = 0; i < blocks; ++i) {
    sa += g_partials[2 * i];
    sb += g_partials[2 * i + 1];
  }
  *da += float(sa);
  *db += float(sb);
}

}  // namespace

template <class T>
void geodesic_forward(const GeodesicForwardArgs<T>& p) {
  if (p.N <= 0) return;
  geodesic_forward_kernel<T><<<p.N, kThreads>>>(p);
  NG_CUDA_LAUNCHED();
}

template <class T>
void geodesic_backward(const GeodesicBackwardArgs<T>& p) {
  if (p.N <= 0) return;
  const int blocks = p.N < kMaxPartials ? p.N : kMaxPartials;
  geodesic_backward_kernel<T><<<blocks, kThreads>>>(p);
  NG_CUDA_LAUNCHED();
  geodesic_dab_kernel<<<1, 1>>>(p.da, p.db, blocks);
  NG_CUDA_LAUNCHED();
}

template void geodesic_forward<float>(const GeodesicForwardArgs<float>&);
template void geodesic_backward<float>(const GeodesicBackwardArgs<float>&);
template void geodesic_forward<bf16>(const GeodesicForwardArgs<bf16>&);
template void geodesic_backward<bf16>(const GeodesicBackwardArgs<bf16>&);

}  // namespace ng::cuda
