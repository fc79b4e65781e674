// RoPE kernel (ops/rope.hpp). One thread per rotated pair: it reads x[i] and x[i + h2] and then
// writes both, so in-place use is safe and every output element has exactly one writer. The angle
// phi = t * theta^(-2i/hs) and its cos/sin are computed in double, as on the CPU, and rounded to
// float once; the rotation itself is float arithmetic in the CPU's order (bf16 storage: loaded into
// float, each output rounded once).
#include "backend/cuda/check.cuh"
#include "backend/cuda/convert.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/rope.hpp"

namespace ng::cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void rope_kernel(T* out, const T* inp, int Tn, int C, int NH, double theta, bool inverse, size_t pairs) {
  const int hs = C / NH, h2 = hs / 2;
  for (size_t p = blockIdx.x * size_t(blockDim.x) + threadIdx.x; p < pairs; p += size_t(gridDim.x) * blockDim.x) {
    const int i = int(p % h2);
    const size_t head = p / h2;  // (row, h) with row = b*T + t
    const int h = int(head % NH);
    const size_t row = head / NH;
    const int t = int(row % Tn);
    const double phi = double(t) * pow(theta, -double(2 * i) / double(hs));
    double sd, cd;
    sincos(phi, &sd, &cd);
    const float cs = float(cd), sn = inverse ? -float(sd) : float(sd);
    const size_t off = row * C + size_t(h) * hs + i;
    const float x0 = to_float(inp[off]), x1 = to_float(inp[off + h2]);
    out[off] = from_float<T>(x0 * cs - x1 * sn);
    out[off + h2] = from_float<T>(x0 * sn + x1 * cs);
  }
}

}  // namespace

template <class T>
void rope(const RopeArgs<T>& a) {
  if (a.B <= 0 || a.T_ <= 0 || a.C <= 0) return;
  if (a.NH <= 0 || a.C % a.NH != 0 || (a.C / a.NH) % 2 != 0)
    throw_internal(__FILE__, __LINE__, "rope needs C divisible by NH and an even head size");
  const size_t pairs = size_t(a.B) * a.T_ * (a.C / 2);
  rope_kernel<T><<<grid_for(pairs, kThreads), kThreads>>>(a.out, a.inp, a.T_, a.C, a.NH, a.theta, a.inverse, pairs);
  NG_CUDA_LAUNCHED();
}

template void rope<float>(const RopeArgs<float>&);
template void rope<bf16>(const RopeArgs<bf16>&);

}  // namespace ng::cuda
