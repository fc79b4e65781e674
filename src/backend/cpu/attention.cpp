// Causal multi-head attention forward/backward (ops/attention.hpp), parallel over (batch, head):
// each (b, h) pair reads and writes disjoint slices, so there are no races and no reductions
// whose order could vary. Logits, probabilities and gradients are computed in acc_t<T> row
// buffers and each output element is stored once, so a bf16 output is rounded once.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.hpp"

namespace ng::cpu {
namespace {

// The logit scale: the contract's 0 means GPT-2's 1/sqrt(hs); nGPT passes sqrt(hs) because its
// q and k are unit vectors, whose dot products would otherwise be too small for a sharp softmax.
template <class A>
A attention_scale(double scale, int hs) {
  return scale != 0 ? A(scale) : A(1) / std::sqrt(A(hs));
}

}  // namespace

template <class T>
void attention_forward(const AttentionForwardArgs<T>& a) {
  using A = acc_t<T>;
  const int B = a.B, Tn = a.T_, C = a.C, NH = a.NH, hs = C / NH, C3 = 3 * C;
  const A scale = attention_scale<A>(a.scale, hs);
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h) {
      std::vector<A> p(Tn), o(hs);  // one row of probabilities, one head's output
      const T* qkv = a.qkv + size_t(b) * Tn * C3;
      for (int t = 0; t < Tn; ++t) {
        const T* q = qkv + size_t(t) * C3 + h * hs;
        stat_t<T>* att = a.att + ((size_t(b) * NH + h) * Tn + t) * Tn;
        A maxv = -INFINITY;
        for (int s = 0; s <= t; ++s) {
          const T* k = qkv + size_t(s) * C3 + C + h * hs;
          A dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int i = 0; i < hs; ++i) dot += A(q[i]) * A(k[i]);
          p[s] = dot * scale;
          maxv = std::max(maxv, p[s]);
        }
        A sum = 0;
        for (int s = 0; s <= t; ++s) {
          p[s] = std::exp(p[s] - maxv);
          sum += p[s];
        }
        const A inv = A(1) / sum;
        for (int s = 0; s <= t; ++s) {
          p[s] *= inv;
          att[s] = p[s];
        }
        for (int s = t + 1; s < Tn; ++s) att[s] = 0;

        for (int i = 0; i < hs; ++i) o[i] = 0;
        for (int s = 0; s <= t; ++s) {
          const T* v = qkv + size_t(s) * C3 + 2 * C + h * hs;
          const A w = p[s];
#pragma omp simd
          for (int i = 0; i < hs; ++i) o[i] += w * v[i];
        }
        T* out = a.out + (size_t(b) * Tn + t) * C + h * hs;
        for (int i = 0; i < hs; ++i) out[i] = o[i];
      }
    }
}

template <class T>
void attention_backward(const AttentionBackwardArgs<T>& a) {
  using A = acc_t<T>;
  const int B = a.B, Tn = a.T_, C = a.C, NH = a.NH, hs = C / NH, C3 = 3 * C;
  const A scale = attention_scale<A>(a.scale, hs);
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h) {
      std::vector<A> datt(Tn);
      // This head's dq, dk, dv for all positions, (Tn, 3, hs): summed over t and s here, stored once.
      std::vector<A> grad(size_t(Tn) * 3 * hs, A(0));
      const T* qkv = a.qkv + size_t(b) * Tn * C3;
      for (int t = 0; t < Tn; ++t) {
        const stat_t<T>* att = a.att + ((size_t(b) * NH + h) * Tn + t) * Tn;
        const T* dout = a.dout + (size_t(b) * Tn + t) * C + h * hs;
        // out[t] = sum_s att[t,s] v[s]  ->  datt[t,s] = dout[t].v[s],  dv[s] += att[t,s] dout[t]
        A dot_att_datt = 0;
        for (int s = 0; s <= t; ++s) {
          const T* v = qkv + size_t(s) * C3 + 2 * C + h * hs;
          A* dv = grad.data() + (size_t(s) * 3 + 2) * hs;
          const A p = att[s];
          A d = 0;
#pragma omp simd reduction(+ : d)
          for (int i = 0; i < hs; ++i) {
            d += A(dout[i]) * A(v[i]);
            dv[i] += p * dout[i];
          }
          datt[s] = d;
          dot_att_datt += p * d;
        }
        // softmax backward: dpre[t,s] = att[t,s] (datt[t,s] - sum_s' att[t,s'] datt[t,s'])
        const T* q = qkv + size_t(t) * C3 + h * hs;
        A* dq = grad.data() + size_t(t) * 3 * hs;
        for (int s = 0; s <= t; ++s) {
          const A dpre = att[s] * (datt[s] - dot_att_datt) * scale;
          const T* k = qkv + size_t(s) * C3 + C + h * hs;
          A* dk = grad.data() + (size_t(s) * 3 + 1) * hs;
#pragma omp simd
          for (int i = 0; i < hs; ++i) {
            dq[i] += dpre * k[i];
            dk[i] += dpre * q[i];
          }
        }
      }
      T* dqkv = a.dqkv + size_t(b) * Tn * C3;
      for (int t = 0; t < Tn; ++t)
        for (int j = 0; j < 3; ++j)
          for (int i = 0; i < hs; ++i) dqkv[size_t(t) * C3 + j * C + h * hs + i] = grad[(size_t(t) * 3 + j) * hs + i];
    }
}

template void attention_forward<float>(const AttentionForwardArgs<float>&);
template void attention_forward<double>(const AttentionForwardArgs<double>&);
template void attention_forward<bf16>(const AttentionForwardArgs<bf16>&);
template void attention_backward<float>(const AttentionBackwardArgs<float>&);
template void attention_backward<double>(const AttentionBackwardArgs<double>&);
template void attention_backward<bf16>(const AttentionBackwardArgs<bf16>&);

}  // namespace ng::cpu
