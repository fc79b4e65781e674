// CUDA causal multi-head attention (contract: ops/attention.hpp), fp32 arithmetic over float or
// bf16 storage, device pointers, default stream. Plain C++ declarations so host code that includes
// spdlog can call them (DESIGN.md trap).
// Unfused and simple: one block per (b, h, t) row for the softmax, then gather kernels for the
// gradients; a fused flash-attention path is a later optimization tested against this one.
#pragma once

#include "ops/attention.hpp"

namespace ng::cuda {

// att and scratch are stat_t<T>: fp32 values whatever the storage T is.

// Writes out (B,T,C) and att (B,NH,T,T), att exactly 0 for s > t. Scores are scaled by a.scale
// (0: 1/sqrt(hs)).
template <class T> void attention_forward(const AttentionForwardArgs<T>& a);

// Overwrites every element of dqkv (B,T,3C); scratch (B,NH,T,T) receives dpre (pre-softmax
// gradient, already multiplied by the score scale: a.scale, or 1/sqrt(hs) when it is 0). No atomics: bitwise deterministic.
template <class T> void attention_backward(const AttentionBackwardArgs<T>& a);

}  // namespace ng::cuda
