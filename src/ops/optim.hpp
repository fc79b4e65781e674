// Optimizer ops over flat parameter buffers (train/adamw.hpp runs them range by range).
//   adamw_update (PyTorch's AdamW, decoupled decay), for i < n:
//     g = grad_scale * grads[i]                      (grad_scale: the clipping factor; grads unchanged)
//     m = b1 m + (1-b1) g;   v = b2 v + (1-b2) g^2
//     p -= decay * p;        p -= lr * (m / bc1) / (sqrt(v / bc2) + eps)
//   with bc1 = 1 - b1^t, bc2 = 1 - b2^t and decay = lr * weight_decay (0 for undecayed tensors),
//   all in acc_t<T> arithmetic in exactly this order, so every backend gives the CPU's bits in fp32.
//   Mixed precision (T = bf16): `master` (fp32, n) holds the weights the update applies to, and
//   params[i] = T(master[i]) afterwards; master is null when T is its own master (fp32, double).
//   sum_squares: sum_i x[i]^2 accumulated in double, in an order that depends only on n (and, on
//     the CPU, the thread count): the global gradient norm, reproducible run to run.
#pragma once

#include <cstddef>

#include "core/precision.hpp"

namespace ng {

template <class T>
struct AdamWArgs {
  T* params;
  const grad_t<T>* grads;
  acc_t<T>* m;
  acc_t<T>* v;
  size_t n;
  acc_t<T> lr, beta1, beta2, bc1, bc2, eps, decay, grad_scale;
  acc_t<T>* master = nullptr;  // mixed precision only
};

template <class T>
struct SumSquaresArgs {
  const grad_t<T>* x;
  size_t n;
};

}  // namespace ng
