// Token + position embedding (ops/encoder.hpp).
#include "backend/cpu/kernels.hpp"

namespace ng::cpu {

template <class T>
void encoder_forward(const EncoderForwardArgs<T>& a) {
#pragma omp parallel for collapse(2)
  for (int b = 0; b < a.B; ++b)
    for (int t = 0; t < a.T_; ++t) {
      T* out = a.out + (size_t(b) * a.T_ + t) * a.C;
      const T* e = a.wte + size_t(a.tokens[size_t(b) * a.T_ + t]) * a.C;
      if (!a.wpe) {  // RoPE: no position table
        for (int c = 0; c < a.C; ++c) out[c] = e[c];
        continue;
      }
      const T* p = a.wpe + size_t(t) * a.C;
      for (int c = 0; c < a.C; ++c) out[c] = acc_t<T>(e[c]) + acc_t<T>(p[c]);
    }
}

template <class T>
void encoder_backward(const EncoderBackwardArgs<T>& a) {
  // Serial over positions: two positions with the same token add into the same wte row, and a
  // fixed order keeps the sum deterministic. The cost is B*T*C adds, negligible next to matmuls.
  // The gradients are grad_t<T> (fp32 under bf16), so repeated tokens sum in fp32.
  for (int b = 0; b < a.B; ++b)
    for (int t = 0; t < a.T_; ++t) {
      const T* d = a.dout + (size_t(b) * a.T_ + t) * a.C;
      grad_t<T>* de = a.dwte + size_t(a.tokens[size_t(b) * a.T_ + t]) * a.C;
      for (int c = 0; c < a.C; ++c) de[c] += d[c];
      if (a.dwpe) {
        grad_t<T>* dp = a.dwpe + size_t(t) * a.C;
        for (int c = 0; c < a.C; ++c) dp[c] += d[c];
      }
    }
}

template void encoder_forward<float>(const EncoderForwardArgs<float>&);
template void encoder_forward<double>(const EncoderForwardArgs<double>&);
template void encoder_forward<bf16>(const EncoderForwardArgs<bf16>&);
template void encoder_backward<float>(const EncoderBackwardArgs<float>&);
template void encoder_backward<double>(const EncoderBackwardArgs<double>&);
template void encoder_backward<bf16>(const EncoderBackwardArgs<bf16>&);

}  // namespace ng::cpu
