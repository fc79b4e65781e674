// CUDA rotary position embedding (ops/rope.hpp): the same contract and argument struct as
// ng::cpu::rope, every pointer a DEVICE pointer, default stream. Plain C++ declaration (no CUDA
// headers) so host code that includes spdlog can call it.
#pragma once

#include "ops/rope.hpp"

namespace ng::cuda {

// out = R(phi) inp per (i, i + hs/2) pair of every head (R(-phi) when inverse: the backward);
// angles and their cos/sin in double, rounded to float once. out may alias inp.
template <class T>
void rope(const RopeArgs<T>& a);

}  // namespace ng::cuda
