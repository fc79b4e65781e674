// CUDA geodesic residual update (contract: ops/geodesic.hpp), fp32 storage, row math in double
// exactly as the CPU reference (backend/cpu/geodesic.cpp), device pointers, default stream.
// Plain C++ declarations (no CUDA types) so any host file can include this header.
#pragma once

#include "ops/geodesic.hpp"

namespace ng::cuda {

// Writes out (N,C), angle (N) and clamped (N). a and b are device scalars.
template <class T> void geodesic_forward(const GeodesicForwardArgs<T>& p);

// Overwrites dx, dg; accumulates into the device scalars da, db. The scalar gradients are summed
// per block over a fixed row partition, then in block order by one thread: bitwise deterministic
// run to run and device to device (the partition depends only on N).
template <class T> void geodesic_backward(const GeodesicBackwardArgs<T>& p);

}  // namespace ng::cuda
