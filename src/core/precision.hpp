// Storage precisions and the types that travel with them.
//   T        the type parameters and activations are stored in on the backend (float, double for
//            tests, or bf16 for device.precision bf16)
//   grad_t   parameter gradients: fp32 accumulation under bf16 (micro-batches and layers sum into
//            them), else T
//   stat_t   saved statistics (norm mean/rstd, losses, geodesic angles): at least fp32
//   acc_t    arithmetic and op constants (scales, loss weight, AdamW hyperparameters, moments and
//            master weights): at least fp32
// For float and double all four are T, so the fp32 path is exactly what it was.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace ng {

// bfloat16 on the host: the top 16 bits of an IEEE float, rounded to nearest even from float
// (NaN kept quiet). Layout-compatible with CUDA's __nv_bfloat16, so buffers pass between them.
// Arithmetic converts to float (implicitly) and rounds back on assignment, which is exactly a bf16
// store of an fp32 computation: the CPU reference of the device's bf16 kernels.
struct bf16 {
  uint16_t bits = 0;

  bf16() = default;
  bf16(float f) : bits(round(f)) {}  // NOLINT: implicit, like the built-in conversions
  bf16(double d) : bf16(float(d)) {}
  bf16(int i) : bf16(float(i)) {}
  operator float() const {
    const uint32_t u = uint32_t(bits) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
  bf16& operator+=(float x) { return *this = bf16(float(*this) + x); }
  bf16& operator-=(float x) { return *this = bf16(float(*this) - x); }
  bf16& operator*=(float x) { return *this = bf16(float(*this) * x); }

  static bf16 from_bits(uint16_t b) {
    bf16 h;
    h.bits = b;
    return h;
  }

 private:
  static uint16_t round(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return uint16_t((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
    return uint16_t(u >> 16);
  }
};

template <class T>
struct PrecisionOf {
  using grad = T;
  using stat = T;
  using acc = T;
};

template <>
struct PrecisionOf<bf16> {
  using grad = float;
  using stat = float;
  using acc = float;
};

template <class T>
using grad_t = typename PrecisionOf<T>::grad;
template <class T>
using stat_t = typename PrecisionOf<T>::stat;
template <class T>
using acc_t = typename PrecisionOf<T>::acc;

// True when T is stored in less than the precision it is computed in (master weights needed).
template <class T>
constexpr bool is_mixed_precision = !std::is_same_v<T, acc_t<T>>;

}  // namespace ng
