// LayerNorm / RMSNorm forward and backward (ops/norm.hpp).
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.hpp"
#include "backend/cpu/reduce.hpp"

namespace ng::cpu {
namespace {

// DyT: out = scale * (g * tanh(alpha x) + b); no statistics (mean 0, rstd 1 are written).
template <class T>
void dyt_forward(const NormForwardArgs<T>& a) {
  const T alpha = *a.alpha;
#pragma omp parallel for
  for (int n = 0; n < a.N; ++n) {
    const T* x = a.inp + size_t(n) * a.C;
    T* out = a.out + size_t(n) * a.C;
    for (int c = 0; c < a.C; ++c) out[c] = a.scale * (a.weight[c] * std::tanh(alpha * x[c]) + a.bias[c]);
    a.mean[n] = 0;
    a.rstd[n] = 1;
  }
}

// With th = tanh(alpha x) and u = dout * scale:
//   dx = u g alpha (1 - th^2);  dg += u th;  db += u;  dalpha += sum u g x (1 - th^2)
template <class T>
void dyt_backward(const NormBackwardArgs<T>& a) {
  const T alpha = *a.alpha;
  const int C = a.C;
#pragma omp parallel for
  for (int n = 0; n < a.N; ++n) {
    const T* x = a.inp + size_t(n) * C;
    const T* dy = a.dout + size_t(n) * C;
    T* dx = a.dinp + size_t(n) * C;
    for (int c = 0; c < C; ++c) {
      const T th = std::tanh(alpha * x[c]);
      const T g = dy[c] * a.scale * a.weight[c] * alpha * (T(1) - th * th);
      dx[c] = a.accumulate ? dx[c] + g : g;
    }
  }
  // gains, biases (C columns) and alpha (one more column) through the deterministic accumulator
  std::vector<T> sums(size_t(2 * C + 1), T(0));
  accumulate_rows<T>(sums.data(), a.N, 2 * C + 1, [&](int n, T* acc) {
    const T* x = a.inp + size_t(n) * C;
    const T* dy = a.dout + size_t(n) * C;
    for (int c = 0; c < C; ++c) {
      const T u = dy[c] * a.scale, th = std::tanh(alpha * x[c]);
      acc[c] += u * th;
      acc[C + c] += u;
      acc[2 * C] += u * a.weight[c] * x[c] * (T(1) - th * th);
    }
  });
  for (int c = 0; c < C; ++c) {
    a.dweight[c] += sums[c];
    a.dbias[c] += sums[C + c];
  }
  *a.dalpha += sums[2 * C];
}

}  // namespace

template <class T>
void norm_forward(const NormForwardArgs<T>& a) {
  if (a.fn == NormFunction::DyT) return dyt_forward(a);
  const bool layernorm = a.fn == NormFunction::LayerNorm;
  const int C = a.C;
#pragma omp parallel for
  for (int n = 0; n < a.N; ++n) {
    const T* x = a.inp + size_t(n) * C;
    T* out = a.out + size_t(n) * C;
    T m = 0;
    if (layernorm) {
      for (int c = 0; c < C; ++c) m += x[c];
      m /= C;
    }
    T v = 0;
    for (int c = 0; c < C; ++c) v += (x[c] - m) * (x[c] - m);
    v /= C;
    const T s = T(1) / std::sqrt(v + T(a.eps));
    for (int c = 0; c < C; ++c) {
      T y = (x[c] - m) * s * a.weight[c];
      if (layernorm) y += a.bias[c];
      out[c] = a.scale * y;
    }
    a.mean[n] = m;
    a.rstd[n] = s;
  }
}

template <class T>
void norm_backward(const NormBackwardArgs<T>& a) {
  if (a.fn == NormFunction::DyT) return dyt_backward(a);
  const bool layernorm = a.fn == NormFunction::LayerNorm;
  const int C = a.C;
  // Input gradient, row by row: with xhat = (x - mean) * rstd and dn = dout * scale * g,
  //   layernorm: dx = rstd * (dn - mean(dn) - xhat * mean(dn * xhat))
  //   rmsnorm:   dx = rstd * (dn - xhat * mean(dn * xhat))
#pragma omp parallel for
  for (int n = 0; n < a.N; ++n) {
    const T* x = a.inp + size_t(n) * C;
    const T* dy = a.dout + size_t(n) * C;
    T* dx = a.dinp + size_t(n) * C;
    const T m = a.mean[n], s = a.rstd[n];
    T mean_dn = 0, mean_dn_xhat = 0;
    for (int c = 0; c < C; ++c) {
      T dn = dy[c] * a.scale * a.weight[c];
      mean_dn += dn;
      mean_dn_xhat += dn * (x[c] - m) * s;
    }
    mean_dn = layernorm ? mean_dn / C : T(0);
    mean_dn_xhat /= C;
    for (int c = 0; c < C; ++c) {
      T xhat = (x[c] - m) * s;
      T g = s * (dy[c] * a.scale * a.weight[c] - mean_dn - xhat * mean_dn_xhat);
      dx[c] = a.accumulate ? dx[c] + g : g;
    }
  }
  // Gain and bias gradients: column sums over rows.
  const T* inp = a.inp;
  const T* dout = a.dout;
  accumulate_rows<T>(a.dweight, a.N, C, [&](int n, T* acc) {
    const T* x = inp + size_t(n) * C;
    const T* dy = dout + size_t(n) * C;
    const T m = a.mean[n], s = a.rstd[n];
    for (int c = 0; c < C; ++c) acc[c] += dy[c] * a.scale * (x[c] - m) * s;
  });
  if (layernorm && a.dbias) {
    accumulate_rows<T>(a.dbias, a.N, C, [&](int n, T* acc) {
      const T* dy = dout + size_t(n) * C;
      for (int c = 0; c < C; ++c) acc[c] += dy[c] * a.scale;
    });
  }
}

template void norm_forward<float>(const NormForwardArgs<float>&);
template void norm_forward<double>(const NormForwardArgs<double>&);
template void norm_backward<float>(const NormBackwardArgs<float>&);
template void norm_backward<double>(const NormBackwardArgs<double>&);

}  // namespace ng::cpu
