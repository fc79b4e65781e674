// Scaled interpolation toward a sublayer's output (ops/lerp.hpp).
// The per-channel quantities (a, w and their derivatives) depend only on alpha, so they are
// computed once per call and shared by all rows; rows are then independent.
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.hpp"
#include "backend/cpu/reduce.hpp"

namespace ng::cpu {
namespace {

// Per-channel coefficients. a is the effective interpolation weight, w the nu(a) factor,
// dw = dw/da, and chain = da/dalpha (the reparameterization constant times the sign of |.|).
template <class T>
struct LerpCoef {
  std::vector<T> a, w, dw, chain;
};

template <class T>
LerpCoef<T> lerp_coef(const T* alpha, T alpha_scale, bool abs_alpha, bool nu, int C) {
  LerpCoef<T> k{std::vector<T>(C), std::vector<T>(C), std::vector<T>(C), std::vector<T>(C)};
  for (int c = 0; c < C; ++c) {
    const T raw = alpha_scale * alpha[c];
    // d|u|/du = sign(u); at u = 0 we take +1 (a subgradient), so a parameter initialized at 0
    // still receives a gradient and can move away from it.
    const T sgn = abs_alpha && raw < T(0) ? T(-1) : T(1);
    const T a = abs_alpha ? std::abs(raw) : raw;
    k.a[c] = a;
    k.chain[c] = alpha_scale * sgn;
    if (nu) {
      // w = q^(-1/2) with q = a^2 + (1-a)^2, dq/da = 4a - 2, so dw/da = -(1/2) q^(-3/2) (4a - 2)
      // = (1 - 2a) w^3. q >= 1/2 for every a, so w never blows up.
      const T w = T(1) / std::sqrt(a * a + (T(1) - a) * (T(1) - a));
      k.w[c] = w;
      k.dw[c] = (T(1) - T(2) * a) * w * w * w;
    } else {
      k.w[c] = T(1);
      k.dw[c] = T(0);
    }
  }
  return k;
}

}  // namespace

template <class T>
void lerp_forward(const LerpForwardArgs<T>& p) {
  const int C = p.C;
  const LerpCoef<T> k = lerp_coef(p.alpha, p.alpha_scale, p.abs_alpha, p.nu, C);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < p.N; ++n) {
    const T* x = p.x + size_t(n) * C;
    const T* g = p.g + size_t(n) * C;
    T* y = p.out + size_t(n) * C;
    for (int c = 0; c < C; ++c) y[c] = k.w[c] * ((T(1) - k.a[c]) * x[c] + k.a[c] * g[c]);
  }
}

// out = w(a) ((1-a) x + a g), so
//   dx = w (1-a) dout,  dg = w a dout,
//   d out / da = dw ((1-a) x + a g) + w (g - x),  dalpha = chain * sum_n dout * d out / da.
template <class T>
void lerp_backward(const LerpBackwardArgs<T>& p) {
  const int C = p.C;
  const LerpCoef<T> k = lerp_coef(p.alpha, p.alpha_scale, p.abs_alpha, p.nu, C);
  // dalpha first, through the deterministic column accumulator (it reads only dout, x, g).
  std::vector<T> sums(size_t(C), T(0));
  accumulate_rows<T>(sums.data(), p.N, C, [&](int n, T* acc) {
    const T* x = p.x + size_t(n) * C;
    const T* g = p.g + size_t(n) * C;
    const T* dy = p.dout + size_t(n) * C;
    for (int c = 0; c < C; ++c) {
      const T a = k.a[c];
      acc[c] += dy[c] * (k.dw[c] * ((T(1) - a) * x[c] + a * g[c]) + k.w[c] * (g[c] - x[c]));
    }
  });
  for (int c = 0; c < C; ++c) p.dalpha[c] += k.chain[c] * sums[c];
#pragma omp parallel for schedule(static)
  for (int n = 0; n < p.N; ++n) {
    const T* dy = p.dout + size_t(n) * C;
    T* dx = p.dx + size_t(n) * C;
    T* dg = p.dg + size_t(n) * C;
    for (int c = 0; c < C; ++c) {
      const T wd = k.w[c] * dy[c];
      dx[c] = (T(1) - k.a[c]) * wd;
      dg[c] = k.a[c] * wd;
    }
  }
}

template void lerp_forward<float>(const LerpForwardArgs<float>&);
template void lerp_forward<double>(const LerpForwardArgs<double>&);
template void lerp_backward<float>(const LerpBackwardArgs<float>&);
template void lerp_backward<double>(const LerpBackwardArgs<double>&);

}  // namespace ng::cpu
