// CUDA optimizer ops (ops/optim.hpp): the same contract and argument structs as ng::cpu, every
// pointer a DEVICE pointer, default stream; instantiated for float, double and bf16 (fp32 master
// weights, moments and gradients: the arithmetic is the fp32 kernel's, then params[i] = bf16(master[i])).
#pragma once

#include "ops/optim.hpp"

namespace ng::cuda {

// One thread per element (grid-stride, size_t indices), so params, m and v may be updated in
// place with no ordering hazard; grads is only read. Every operation is a correctly rounded IEEE
// op in T, in the contract's order, never fused into an FMA: the bits are then a function of the
// inputs alone, equal to any backend that evaluates the same expression without contraction.
// bf16: a.master is required (InternalError if null); master, m and v get the fp32 kernel's bits.
template <class T>
void adamw_update(const AdamWArgs<T>& a);

// sum_i double(x[i])^2, returned to the host: a SYNC point (the result is copied back with a
// blocking cudaMemcpy, which waits for all prior default-stream work). Deterministic: the grid
// and each thread's strided index set depend on n only, and both reduction passes add in a fixed
// order (no float atomics), so two calls on the same data and GPU model give the same bits. The
// order differs from the CPU's, so the two agree to double rounding (~1e-16 relative), not bits.
// Scratch is static __device__ storage (one copy per device, no allocation per call), as in
// geodesic.cu: calls from several host threads on one device must not overlap.
template <class T>
double sum_squares(const SumSquaresArgs<T>& a);

}  // namespace ng::cuda
