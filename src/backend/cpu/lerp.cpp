// Scaled interpolation toward a sublayer's output (ops/lerp.hpp).
// The per-channel quantities (a, w and their derivatives) depend only on alpha, so they are
// computed once per call and shared by all rows; rows are then independent.
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.hpp"
#include "backend/cpu/reduce.hpp"

namespace ng::cpu {
namespace {

// Per-channel coefficients, in the arithmetic type A = acc_t<T>. a is the effective interpolation
// weight, w the nu(a) factor, dw = dw/da, and chain = da/dalpha (the reparameterization constant
// times the sign of |.|).
template <class A>
struct LerpCoef {
  std::vector<A> a, w, dw, chain;
};

template <class T>
LerpCoef<acc_t<T>> lerp_coef(const T* alpha, acc_t<T> alpha_scale, bool abs_alpha, bool nu, int C) {
  using A = acc_t<T>;
  LerpCoef<A> k{std::vector<A>(C), std::vector<A>(C), std::vector<A>(C), std::vector<A>(C)};
  for (int c = 0; c < C; ++c) {
    const A raw = alpha_scale * alpha[c];
    // d|u|/du = sign(u); at u = 0 we take +1 (a subgradient), so a parameter initialized at 0
    // still receives a gradient and can move away from it.
    const A sgn = abs_alpha && raw < A(0) ? A(-1) : A(1);
    const A a = abs_alpha ? std::abs(raw) : raw;
    k.a[c] = a;
    k.chain[c] = alpha_scale * sgn;
    if (nu) {
      // w = q^(-1/2) with q = a^2 + (1-a)^2, dq/da = 4a - 2, so dw/da = -(1/2) q^(-3/2) (4a - 2)
      // = (1 - 2a) w^3. q >= 1/2 for every a, so w never blows up.
      const A w = A(1) / std::sqrt(a * a + (A(1) - a) * (A(1) - a));
      k.w[c] = w;
      k.dw[c] = (A(1) - A(2) * a) * w * w * w;
    } else {
      k.w[c] = A(1);
      k.dw[c] = A(0);
    }
  }
  return k;
}

}  // namespace

template <class T>
void lerp_forward(const LerpForwardArgs<T>& p) {
  using A = acc_t<T>;
  const int C = p.C;
  const LerpCoef<A> k = lerp_coef(p.alpha, p.alpha_scale, p.abs_alpha, p.nu, C);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < p.N; ++n) {
    const T* x = p.x + size_t(n) * C;
    const T* g = p.g + size_t(n) * C;
    T* y = p.out + size_t(n) * C;
    for (int c = 0; c < C; ++c) y[c] = k.w[c] * ((A(1) - k.a[c]) * x[c] + k.a[c] * g[c]);
  }
}

// out = w(a) ((1-a) x + a g), so
//   dx = w (1-a) dout,  dg = w a dout,
//   d out / da = dw ((1-a) x + a g) + w (g - x),  dalpha = chain * sum_n dout * d out / da.
template <class T>
void lerp_backward(const LerpBackwardArgs<T>& p) {
  using A = acc_t<T>;
  const int C = p.C;
  const LerpCoef<A> k = lerp_coef(p.alpha, p.alpha_scale, p.abs_alpha, p.nu, C);
  // dalpha first, through the deterministic column accumulator (it reads only dout, x, g).
  std::vector<A> sums(size_t(C), A(0));
  accumulate_rows<A>(sums.data(), p.N, C, [&](int n, A* acc) {
    const T* x = p.x + size_t(n) * C;
    const T* g = p.g + size_t(n) * C;
    const T* dy = p.dout + size_t(n) * C;
    for (int c = 0; c < C; ++c) {
      const A a = k.a[c];
      acc[c] += dy[c] * (k.dw[c] * ((A(1) - a) * x[c] + a * g[c]) + k.w[c] * (g[c] - x[c]));
    }
  });
  for (int c = 0; c < C; ++c) p.dalpha[c] += k.chain[c] * sums[c];
#pragma omp parallel for schedule(static)
  for (int n = 0; n < p.N; ++n) {
    const T* dy = p.dout + size_t(n) * C;
    T* dx = p.dx + size_t(n) * C;
    T* dg = p.dg + size_t(n) * C;
    for (int c = 0; c < C; ++c) {
      const A wd = k.w[c] * dy[c];
      dx[c] = (A(1) - k.a[c]) * wd;
      dg[c] = k.a[c] * wd;
    }
  }
}

template void lerp_forward<float>(const LerpForwardArgs<float>&);
template void lerp_forward<double>(const LerpForwardArgs<double>&);
template void lerp_forward<bf16>(const LerpForwardArgs<bf16>&);
template void lerp_backward<float>(const LerpBackwardArgs<float>&);
template void lerp_backward<double>(const LerpBackwardArgs<double>&);
template void lerp_backward<bf16>(const LerpBackwardArgs<bf16>&);

}  // namespace ng::cpu
