// Causal multi-head attention forward/backward (ops/attention.hpp), parallel over (batch, head):
// each (b, h) pair reads and writes disjoint slices, so there are no races and no reductions
// whose order could vary.
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.hpp"

namespace ng::cpu {
namespace {

// The logit scale: the contract's 0 means GPT-2's 1/sqrt(hs); nGPT passes sqrt(hs) because its
// q and k are unit vectors, whose dot products would otherwise be too small for a sharp softmax.
template <class T>
T attention_scale(double scale, int hs) {
  return scale != 0 ? T(scale) : T(1) / std::sqrt(T(hs));
}

}  // namespace

template <class T>
void attention_forward(const AttentionForwardArgs<T>& a) {
  const int B = a.B, Tn = a.T_, C = a.C, NH = a.NH, hs = C / NH, C3 = 3 * C;
  const T scale = attention_scale<T>(a.scale, hs);
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h) {
      const T* qkv = a.qkv + size_t(b) * Tn * C3;
      for (int t = 0; t < Tn; ++t) {
        const T* q = qkv + size_t(t) * C3 + h * hs;
        T* att = a.att + ((size_t(b) * NH + h) * Tn + t) * Tn;
        T maxv = -INFINITY;
        for (int s = 0; s <= t; ++s) {
          const T* k = qkv + size_t(s) * C3 + C + h * hs;
          T dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int i = 0; i < hs; ++i) dot += q[i] * k[i];
          att[s] = dot * scale;
          maxv = std::max(maxv, att[s]);
        }
        T sum = 0;
        for (int s = 0; s <= t; ++s) {
          att[s] = std::exp(att[s] - maxv);
          sum += att[s];
        }
        const T inv = T(1) / sum;
        for (int s = 0; s <= t; ++s) att[s] *= inv;
        for (int s = t + 1; s < Tn; ++s) att[s] = 0;

        T* out = a.out + (size_t(b) * Tn + t) * C + h * hs;
        for (int i = 0; i < hs; ++i) out[i] = 0;
        for (int s = 0; s <= t; ++s) {
          const T* v = qkv + size_t(s) * C3 + 2 * C + h * hs;
          const T w = att[s];
#pragma omp simd
          for (int i = 0; i < hs; ++i) out[i] += w * v[i];
        }
      }
    }
}

template <class T>
void attention_backward(const AttentionBackwardArgs<T>& a) {
  const int B = a.B, Tn = a.T_, C = a.C, NH = a.NH, hs = C / NH, C3 = 3 * C;
  const T scale = attention_scale<T>(a.scale, hs);
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h) {
      std::vector<T> datt(Tn);
      const T* qkv = a.qkv + size_t(b) * Tn * C3;
      T* dqkv = a.dqkv + size_t(b) * Tn * C3;
      for (int t = 0; t < Tn; ++t)
        for (int j = 0; j < 3; ++j)
          for (int i = 0; i < hs; ++i) dqkv[size_t(t) * C3 + j * C + h * hs + i] = 0;
      for (int t = 0; t < Tn; ++t) {
        const T* att = a.att + ((size_t(b) * NH + h) * Tn + t) * Tn;
        const T* dout = a.dout + (size_t(b) * Tn + t) * C + h * hs;
        // out[t] = sum_s att[t,s] v[s]  ->  datt[t,s] = dout[t].v[s],  dv[s] += att[t,s] dout[t]
        T dot_att_datt = 0;
        for (int s = 0; s <= t; ++s) {
          const T* v = qkv + size_t(s) * C3 + 2 * C + h * hs;
          T* dv = dqkv + size_t(s) * C3 + 2 * C + h * hs;
          T d = 0;
#pragma omp simd reduction(+ : d)
          for (int i = 0; i < hs; ++i) {
            d += dout[i] * v[i];
            dv[i] += att[s] * dout[i];
          }
          datt[s] = d;
          dot_att_datt += att[s] * d;
        }
        // softmax backward: dpre[t,s] = att[t,s] (datt[t,s] - sum_s' att[t,s'] datt[t,s'])
        const T* q = qkv + size_t(t) * C3 + h * hs;
        T* dq = dqkv + size_t(t) * C3 + h * hs;
        for (int s = 0; s <= t; ++s) {
          const T dpre = att[s] * (datt[s] - dot_att_datt) * scale;
          const T* k = qkv + size_t(s) * C3 + C + h * hs;
          T* dk = dqkv + size_t(s) * C3 + C + h * hs;
#pragma omp simd
          for (int i = 0; i < hs; ++i) {
            dq[i] += dpre * k[i];
            dk[i] += dpre * q[i];
          }
        }
      }
    }
}

template void attention_forward<float>(const AttentionForwardArgs<float>&);
template void attention_forward<double>(const AttentionForwardArgs<double>&);
template void attention_backward<float>(const AttentionBackwardArgs<float>&);
template void attention_backward<double>(const AttentionBackwardArgs<double>&);

}  // namespace ng::cpu
