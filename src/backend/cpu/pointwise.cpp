// GELU, residual add, scale, SwiGLU, column scaling and strided 2-d copy (ops/pointwise.hpp).
// Under bf16 the element reads widen to fp32 (bf16 has no arithmetic of its own: a bf16 operand
// converts to float) and each store rounds once; `+=` on a bf16 element is one fp32 add, rounded.
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.hpp"
#include "backend/cpu/reduce.hpp"

namespace ng::cpu {

namespace {
constexpr double kGeluC = 0.7978845608028654;  // sqrt(2/pi)
}

template <class T>
void gelu_forward(const GeluForwardArgs<T>& a) {
  using A = acc_t<T>;
#pragma omp parallel for simd
  for (size_t i = 0; i < a.n; ++i) {
    const A x = a.inp[i];
    a.out[i] = A(0.5) * x * (A(1) + std::tanh(A(kGeluC) * (x + A(0.044715) * x * x * x)));
  }
}

template <class T>
void gelu_backward(const GeluBackwardArgs<T>& a) {
  using A = acc_t<T>;
#pragma omp parallel for simd
  for (size_t i = 0; i < a.n; ++i) {
    const A x = a.inp[i];
    const A u = A(kGeluC) * (x + A(0.044715) * x * x * x);
    const A th = std::tanh(u);
    const A sech2 = A(1) - th * th;
    const A grad = A(0.5) * (A(1) + th) + A(0.5) * x * sech2 * A(kGeluC) * (A(1) + A(3 * 0.044715) * x * x);
    const A g = grad * a.dout[i];
    a.dinp[i] = a.accumulate ? a.dinp[i] + g : g;
  }
}

template <class T>
void residual(const ResidualArgs<T>& a) {
  if (a.skip) {
#pragma omp parallel for simd
    for (size_t i = 0; i < a.n; ++i) a.out[i] = a.alpha * a.x[i] + a.g[i] + a.skip[i];
  } else {
#pragma omp parallel for simd
    for (size_t i = 0; i < a.n; ++i) a.out[i] = a.alpha * a.x[i] + a.g[i];
  }
}

template <class T>
void scale(const ScaleArgs<T>& a) {
  using A = acc_t<T>;
#pragma omp parallel for simd
  for (size_t i = 0; i < a.n; ++i) a.dst[i] = (a.accumulate ? A(a.dst[i]) : A(0)) + a.alpha * a.src[i];
}

// silu(z) = z sig(z), silu'(z) = sig(z) (1 + z (1 - sig(z))). 1/(1 + exp(-z)) is safe for any z:
// exp(-z) overflows to inf for very negative z, giving sig = 0 rather than NaN.
template <class T>
void swiglu_forward(const SwigluForwardArgs<T>& a) {
  using A = acc_t<T>;
  const int H = a.H;
#pragma omp parallel for schedule(static)
  for (int n = 0; n < a.N; ++n) {
    const T* gate = a.inp + size_t(n) * 2 * H;
    const T* up = gate + H;
    T* out = a.out + size_t(n) * H;
    for (int h = 0; h < H; ++h) {
      const A z = gate[h];
      out[h] = z / (A(1) + std::exp(-z)) * up[h];
    }
  }
}

template <class T>
void swiglu_backward(const SwigluBackwardArgs<T>& a) {
  using A = acc_t<T>;
  const int H = a.H;
#pragma omp parallel for schedule(static)
  for (int n = 0; n < a.N; ++n) {
    const T* gate = a.inp + size_t(n) * 2 * H;
    const T* up = gate + H;
    const T* dy = a.dout + size_t(n) * H;
    T* dgate = a.dinp + size_t(n) * 2 * H;
    T* dup = dgate + H;
    for (int h = 0; h < H; ++h) {
      const A z = gate[h];
      const A sig = A(1) / (A(1) + std::exp(-z));
      dgate[h] = dy[h] * up[h] * sig * (A(1) + z * (A(1) - sig));
      dup[h] = dy[h] * z * sig;
    }
  }
}

template <class T>
void scale_columns_forward(const ScaleColumnsForwardArgs<T>& a) {
  const int W = a.W;
#pragma omp parallel for schedule(static)
  for (int n = 0; n < a.N; ++n) {
    const T* x = a.x + size_t(n) * W;
    T* out = a.out + size_t(n) * W;
    for (int c = 0; c < W; ++c) out[c] = a.k * a.s[c] * x[c];
  }
}

template <class T>
void scale_columns_backward(const ScaleColumnsBackwardArgs<T>& a) {
  using A = acc_t<T>;
  const int W = a.W;
  // ds before dx: dx may alias dout, and ds needs the original dout.
  if (a.ds) {
    std::vector<A> sums(size_t(W), A(0));
    accumulate_rows<A>(sums.data(), a.N, W, [&](int n, A* acc) {
      const T* x = a.x + size_t(n) * W;
      const T* dy = a.dout + size_t(n) * W;
      for (int c = 0; c < W; ++c) acc[c] += dy[c] * x[c];
    });
    for (int c = 0; c < W; ++c) a.ds[c] += a.k * sums[c];
  }
#pragma omp parallel for schedule(static)
  for (int n = 0; n < a.N; ++n) {
    const T* dy = a.dout + size_t(n) * W;
    T* dx = a.dx + size_t(n) * W;
    for (int c = 0; c < W; ++c) {
      const A g = a.k * a.s[c] * dy[c];  // read before the (possibly aliased) write
      dx[c] = a.accumulate ? A(dx[c]) + g : g;
    }
  }
}

template <class T>
void copy2d(const Copy2dArgs<T>& a) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < a.rows; ++r) {
    const T* src = a.src + size_t(r) * a.ld_src;
    T* dst = a.dst + size_t(r) * a.ld_dst;
    if (a.accumulate) {
      for (int c = 0; c < a.width; ++c) dst[c] += src[c];
    } else {
      for (int c = 0; c < a.width; ++c) dst[c] = src[c];
    }
  }
}

template void gelu_forward<float>(const GeluForwardArgs<float>&);
template void gelu_forward<double>(const GeluForwardArgs<double>&);
template void gelu_forward<bf16>(const GeluForwardArgs<bf16>&);
template void gelu_backward<float>(const GeluBackwardArgs<float>&);
template void gelu_backward<double>(const GeluBackwardArgs<double>&);
template void gelu_backward<bf16>(const GeluBackwardArgs<bf16>&);
template void residual<float>(const ResidualArgs<float>&);
template void residual<double>(const ResidualArgs<double>&);
template void residual<bf16>(const ResidualArgs<bf16>&);
template void scale<float>(const ScaleArgs<float>&);
template void scale<double>(const ScaleArgs<double>&);
template void scale<bf16>(const ScaleArgs<bf16>&);
template void swiglu_forward<float>(const SwigluForwardArgs<float>&);
template void swiglu_forward<double>(const SwigluForwardArgs<double>&);
template void swiglu_forward<bf16>(const SwigluForwardArgs<bf16>&);
template void swiglu_backward<float>(const SwigluBackwardArgs<float>&);
template void swiglu_backward<double>(const SwigluBackwardArgs<double>&);
template void swiglu_backward<bf16>(const SwigluBackwardArgs<bf16>&);
template void scale_columns_forward<float>(const ScaleColumnsForwardArgs<float>&);
template void scale_columns_forward<double>(const ScaleColumnsForwardArgs<double>&);
template void scale_columns_forward<bf16>(const ScaleColumnsForwardArgs<bf16>&);
template void scale_columns_backward<float>(const ScaleColumnsBackwardArgs<float>&);
template void scale_columns_backward<double>(const ScaleColumnsBackwardArgs<double>&);
template void scale_columns_backward<bf16>(const ScaleColumnsBackwardArgs<bf16>&);
template void copy2d<float>(const Copy2dArgs<float>&);
template void copy2d<double>(const Copy2dArgs<double>&);
template void copy2d<bf16>(const Copy2dArgs<bf16>&);

}  // namespace ng::cpu
