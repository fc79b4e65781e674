// LayerNorm / RMSNorm / L2 / DyT forward and backward (ops/norm.hpp).
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.hpp"
#include "backend/cpu/reduce.hpp"
#include "core/errors.hpp"

namespace ng::cpu {
namespace {

// DyT: out = scale * (g * tanh(alpha x) + b); no statistics (mean 0, rstd 1 are written).
template <class T>
void dyt_forward(const NormForwardArgs<T>& a) {
  using A = acc_t<T>;
  const A alpha = *a.alpha;
#pragma omp parallel for
  for (int n = 0; n < a.N; ++n) {
    const T* x = a.inp + size_t(n) * a.C;
    T* out = a.out + size_t(n) * a.C;
    for (int c = 0; c < a.C; ++c) {
      // a null gain is 1 and a null bias 0 (ops/norm.hpp)
      const A g = a.weight ? A(a.weight[c]) : A(1), b = a.bias ? A(a.bias[c]) : A(0);
      out[c] = a.scale * (g * std::tanh(alpha * x[c]) + b);
    }
    if (a.mean) a.mean[n] = 0;
    if (a.rstd) a.rstd[n] = 1;
  }
}

// With th = tanh(alpha x) and u = dout * scale:
//   dx = u g alpha (1 - th^2);  dg += u th;  db += u;  dalpha += sum u g x (1 - th^2)
template <class T>
void dyt_backward(const NormBackwardArgs<T>& a) {
  using A = acc_t<T>;
  const A alpha = *a.alpha;
  const int C = a.C;
#pragma omp parallel for
  for (int n = 0; n < a.N; ++n) {
    const T* x = a.inp + size_t(n) * C;
    const T* dy = a.dout + size_t(n) * C;
    T* dx = a.dinp + size_t(n) * C;
    for (int c = 0; c < C; ++c) {
      const A th = std::tanh(alpha * x[c]);
      const A w = a.weight ? A(a.weight[c]) : A(1);
      const A g = dy[c] * a.scale * w * alpha * (A(1) - th * th);
      dx[c] = a.accumulate ? dx[c] + g : g;
    }
  }
  // gains, biases (C columns) and alpha (one more column) through the deterministic accumulator
  std::vector<A> sums(size_t(2 * C + 1), A(0));
  accumulate_rows<A>(sums.data(), a.N, 2 * C + 1, [&](int n, A* acc) {
    const T* x = a.inp + size_t(n) * C;
    const T* dy = a.dout + size_t(n) * C;
    for (int c = 0; c < C; ++c) {
      const A u = dy[c] * a.scale, th = std::tanh(alpha * x[c]);
      acc[c] += u * th;
      acc[C + c] += u;
      acc[2 * C] += u * (a.weight ? A(a.weight[c]) : A(1)) * x[c] * (A(1) - th * th);
    }
  });
  for (int c = 0; c < C; ++c) {
    if (a.dweight) a.dweight[c] += sums[c];
    if (a.dbias) a.dbias[c] += sums[C + c];
  }
  if (a.dalpha) *a.dalpha += sums[2 * C];
}

// Width of one statistics group. Each group is then a "virtual row" of G contiguous values (the
// groups of row n are rows n*(C/G) .. of a (N*C/G, G) view), so one loop serves the whole-row and
// the per-head cases; only the gain/bias offset (j*G within the row) differs.
inline int group_width(int C, int group) {
  const int G = group > 0 ? group : C;
  NG_CHECK(C % G == 0, "norm: group {} does not divide C = {}", G, C);
  return G;
}

}  // namespace

template <class T>
void norm_forward(const NormForwardArgs<T>& a) {
  using A = acc_t<T>;
  if (a.fn == NormFunction::DyT) return dyt_forward(a);  // no statistics, so group is moot
  const bool layernorm = a.fn == NormFunction::LayerNorm;
  const bool l2 = a.fn == NormFunction::L2;
  const int G = group_width(a.C, a.group), ng = a.C / G;
  const int rows = a.N * ng;
#pragma omp parallel for
  for (int r = 0; r < rows; ++r) {
    const int off = (r % ng) * G;  // this group's first column within its row: gain offset
    const T* x = a.inp + size_t(r) * G;
    T* out = a.out + size_t(r) * G;
    A m = 0;
    if (layernorm) {
      for (int c = 0; c < G; ++c) m += x[c];
      m /= G;
    }
    A v = 0;
    for (int c = 0; c < G; ++c) v += (x[c] - m) * (x[c] - m);
    if (!l2) v /= G;  // l2 normalizes by the norm itself (unit sphere), not the RMS
    const A s = A(1) / std::sqrt(v + A(a.eps));
    for (int c = 0; c < G; ++c) {
      A y = (x[c] - m) * s;
      if (a.weight) y *= a.weight[off + c];
      if (layernorm && a.bias) y += a.bias[off + c];
      out[c] = a.scale * y;
    }
    a.mean[r] = m;
    a.rstd[r] = s;
  }
}

template <class T>
void norm_backward(const NormBackwardArgs<T>& a) {
  using A = acc_t<T>;
  if (a.fn == NormFunction::DyT) return dyt_backward(a);
  const bool layernorm = a.fn == NormFunction::LayerNorm;
  const bool l2 = a.fn == NormFunction::L2;
  const int C = a.C, G = group_width(C, a.group), ng = C / G;
  const int rows = a.N * ng;
  // Input gradient, group by group: with xhat = (x - mean) * rstd and dn = dout * scale * g,
  //   layernorm: dx = rstd * (dn - mean(dn) - xhat * mean(dn * xhat))
  //   rmsnorm:   dx = rstd * (dn - xhat * mean(dn * xhat))
  //   l2:        dx = rstd * (dn - xhat * sum(dn * xhat))   (rstd has sum, not mean, of x^2)
#pragma omp parallel for
  for (int r = 0; r < rows; ++r) {
    const int off = (r % ng) * G;
    const T* x = a.inp + size_t(r) * G;
    const T* dy = a.dout + size_t(r) * G;
    T* dx = a.dinp + size_t(r) * G;
    const A m = a.mean[r], s = a.rstd[r];
    A mean_dn = 0, mean_dn_xhat = 0;
    for (int c = 0; c < G; ++c) {
      A dn = dy[c] * a.scale;
      if (a.weight) dn *= a.weight[off + c];
      mean_dn += dn;
      mean_dn_xhat += dn * (x[c] - m) * s;
    }
    mean_dn = layernorm ? mean_dn / G : A(0);
    if (!l2) mean_dn_xhat /= G;
    for (int c = 0; c < G; ++c) {
      A xhat = (x[c] - m) * s;
      A dn = dy[c] * a.scale;
      if (a.weight) dn *= a.weight[off + c];
      A g = s * (dn - mean_dn - xhat * mean_dn_xhat);
      dx[c] = a.accumulate ? dx[c] + g : g;
    }
  }
  // Gain and bias gradients: column sums over the N real rows (each column c uses the statistics
  // of its group c / G).
  const T* inp = a.inp;
  const T* dout = a.dout;
  if (a.dweight) {
    accumulate_rows<grad_t<T>>(a.dweight, a.N, C, [&](int n, grad_t<T>* acc) {
      const T* x = inp + size_t(n) * C;
      const T* dy = dout + size_t(n) * C;
      const stat_t<T>* m = a.mean + size_t(n) * ng;
      const stat_t<T>* s = a.rstd + size_t(n) * ng;
      for (int c = 0; c < C; ++c) {
        const int j = c / G;
        acc[c] += dy[c] * a.scale * (x[c] - m[j]) * s[j];
      }
    });
  }
  if (layernorm && a.dbias) {
    accumulate_rows<grad_t<T>>(a.dbias, a.N, C, [&](int n, grad_t<T>* acc) {
      const T* dy = dout + size_t(n) * C;
      for (int c = 0; c < C; ++c) acc[c] += dy[c] * a.scale;
    });
  }
}

template void norm_forward<float>(const NormForwardArgs<float>&);
template void norm_forward<double>(const NormForwardArgs<double>&);
template void norm_forward<bf16>(const NormForwardArgs<bf16>&);
template void norm_backward<float>(const NormBackwardArgs<float>&);
template void norm_backward<double>(const NormBackwardArgs<double>&);
template void norm_backward<bf16>(const NormBackwardArgs<bf16>&);

}  // namespace ng::cpu
