// Rotary position embedding (ops/rope.hpp), parallel over the B*T rows: each row is rotated
// independently, so rows are disjoint and there is nothing to reduce.
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.hpp"
#include "core/errors.hpp"

namespace ng::cpu {

template <class T>
void rope(const RopeArgs<T>& a) {
  using A = acc_t<T>;
  const int C = a.C, NH = a.NH;
  NG_CHECK(NH > 0 && C % NH == 0, "rope: C = {} is not a multiple of NH = {}", C, NH);
  const int hs = C / NH, h2 = hs / 2;
  NG_CHECK(hs % 2 == 0, "rope: head size {} is odd", hs);
  // The frequencies depend only on the pair index; computing them once in double keeps every
  // backend's angle the same to rounding (the contract asks for double angles).
  std::vector<double> freq(h2);
  for (int i = 0; i < h2; ++i) freq[i] = std::pow(a.theta, -2.0 * i / hs);
  // The backward is the rotation by -phi (R is orthogonal), i.e. the same map with sin negated.
  const double sign = a.inverse ? -1.0 : 1.0;
  const int rows = a.B * a.T_;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; ++r) {
    const int t = r % a.T_;  // position within the sequence
    const T* x = a.inp + size_t(r) * C;
    T* y = a.out + size_t(r) * C;
    for (int i = 0; i < h2; ++i) {
      const double phi = double(t) * freq[i];
      // Rounded to acc_t<T> once, so the same (cos, sin) pair is used for every head of the row.
      const A c = A(std::cos(phi)), s = A(sign * std::sin(phi));
      for (int h = 0; h < NH; ++h) {
        const size_t lo = size_t(h) * hs + i, hi = lo + h2;
        // Both halves are read before either is written: out may alias inp.
        const A x0 = x[lo], x1 = x[hi];
        y[lo] = x0 * c - x1 * s;
        y[hi] = x0 * s + x1 * c;
      }
    }
  }
}

template void rope<float>(const RopeArgs<float>&);
template void rope<double>(const RopeArgs<double>&);
template void rope<bf16>(const RopeArgs<bf16>&);

}  // namespace ng::cpu
