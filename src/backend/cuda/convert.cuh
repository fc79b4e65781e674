// Storage <-> arithmetic conversions for the kernels, so one kernel template serves float, double
// and bf16 storage. ng::bf16 (core/precision.hpp) is layout-compatible with __nv_bfloat16 but its
// converting members are host code; kernels read and write its bits through these helpers instead:
// a bf16 load is exact in float (the top 16 bits of the float), a store rounds to nearest even once
// (__float2bfloat16_rn, the host bf16's rounding). For float and double they are the identity
// conversions the kernels wrote before (float(x), T(x)), so the fp32 and fp64 code is unchanged.
#pragma once

#include <cuda_bf16.h>

#include <cstddef>
#include <type_traits>

#include "core/precision.hpp"

namespace ng::cuda {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(double x) { return float(x); }
__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(__ushort_as_bfloat16(x.bits)); }

// A float result stored as T: the one rounding of a bf16 store.
template <class T>
__device__ __forceinline__ T from_float(float x) {
  if constexpr (std::is_same_v<T, bf16>) {
    T r;
    r.bits = __bfloat16_as_ushort(__float2bfloat16_rn(x));
    return r;
  } else {
    return T(x);
  }
}

// Any storage type to any arithmetic type and back (flash attention computes in acc_t<T>: double
// for double, float otherwise). bf16 goes through float, as on the host.
template <class To, class From>
__device__ __forceinline__ To convert(From x) {
  if constexpr (std::is_same_v<From, To>) {
    return x;
  } else if constexpr (std::is_same_v<From, bf16>) {
    return To(to_float(x));
  } else if constexpr (std::is_same_v<To, bf16>) {
    return from_float<bf16>(float(x));
  } else {
    return To(x);
  }
}

}  // namespace ng::cuda
