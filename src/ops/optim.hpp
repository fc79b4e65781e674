// Optimizer ops over flat parameter buffers (train/adamw.hpp runs them range by range).
//   adamw_update (PyTorch's AdamW, decoupled decay), for i < n:
//     g = grad_scale * grads[i]                      (grad_scale: the clipping factor; grads unchanged)
//     m = b1 m + (1-b1) g;   v = b2 v + (1-b2) g^2
//     p -= decay * p;        p -= lr * (m / bc1) / (sqrt(v / bc2) + eps)
//   with bc1 = 1 - b1^t, bc2 = 1 - b2^t and decay = lr * weight_decay (0 for undecayed tensors),
//   all in T arithmetic in exactly this order, so every backend gives the CPU's bits in fp32.
//   sum_squares: sum_i x[i]^2 accumulated in double, in an order that depends only on n (and, on
//     the CPU, the thread count): the global gradient norm, reproducible run to run.
#pragma once

#include <cstddef>

namespace ng {

template <class T>
struct AdamWArgs {
  T* params;
  const T* grads;
  T* m;
  T* v;
  size_t n;
  T lr, beta1, beta2, bc1, bc2, eps, decay, grad_scale;
};

template <class T>
struct SumSquaresArgs {
  const T* x;
  size_t n;
};

}  // namespace ng
