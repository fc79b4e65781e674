// The CPU backend: the Backend interface over the reference kernels.
#include "backend/backend.hpp"
#include "backend/cpu/kernels.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

namespace ng {
namespace {

template <class T>
class CpuBackend final : public Backend<T> {
 public:
  std::string name() const override { return "cpu"; }

  // Host memory, 64-byte aligned (whole cache lines for the OpenMP kernels).
  bool host_accessible() const override { return true; }
  void* allocate(size_t bytes) const override {
    if (bytes == 0) return nullptr;
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    return p;
  }
  void release(void* p) const override { std::free(p); }
  void upload(void* dst, const void* src, size_t bytes) const override { std::memmove(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) const override { std::memmove(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) const override { std::memmove(dst, src, bytes); }
  void fill_zero(void* dst, size_t bytes) const override { std::memset(dst, 0, bytes); }

  void encoder_forward(const EncoderForwardArgs<T>& a) const override { cpu::encoder_forward(a); }
  void encoder_backward(const EncoderBackwardArgs<T>& a) const override { cpu::encoder_backward(a); }
  void norm_forward(const NormForwardArgs<T>& a) const override { cpu::norm_forward(a); }
  void norm_backward(const NormBackwardArgs<T>& a) const override { cpu::norm_backward(a); }
  void matmul_forward(const MatmulForwardArgs<T>& a) const override { cpu::matmul_forward(a); }
  void matmul_backward(const MatmulBackwardArgs<T>& a) const override { cpu::matmul_backward(a); }
  void attention_forward(const AttentionForwardArgs<T>& a) const override { cpu::attention_forward(a); }
  void attention_backward(const AttentionBackwardArgs<T>& a) const override { cpu::attention_backward(a); }
  void gelu_forward(const GeluForwardArgs<T>& a) const override { cpu::gelu_forward(a); }
  void gelu_backward(const GeluBackwardArgs<T>& a) const override { cpu::gelu_backward(a); }
  void residual(const ResidualArgs<T>& a) const override { cpu::residual(a); }
  void scale(const ScaleArgs<T>& a) const override { cpu::scale(a); }
  void geodesic_forward(const GeodesicForwardArgs<T>& a) const override { cpu::geodesic_forward(a); }
  void geodesic_backward(const GeodesicBackwardArgs<T>& a) const override { cpu::geodesic_backward(a); }
  void crossentropy_forward(const CrossEntropyForwardArgs<T>& a) const override { cpu::crossentropy_forward(a); }
  void crossentropy_backward(const CrossEntropyBackwardArgs<T>& a) const override { cpu::crossentropy_backward(a); }
  void rope(const RopeArgs<T>& a) const override { cpu::rope(a); }
  void swiglu_forward(const SwigluForwardArgs<T>& a) const override { cpu::swiglu_forward(a); }
  void swiglu_backward(const SwigluBackwardArgs<T>& a) const override { cpu::swiglu_backward(a); }
  void scale_columns_forward(const ScaleColumnsForwardArgs<T>& a) const override { cpu::scale_columns_forward(a); }
  void scale_columns_backward(const ScaleColumnsBackwardArgs<T>& a) const override {
    cpu::scale_columns_backward(a);
  }
  void copy2d(const Copy2dArgs<T>& a) const override { cpu::copy2d(a); }
  void lerp_forward(const LerpForwardArgs<T>& a) const override { cpu::lerp_forward(a); }
  void lerp_backward(const LerpBackwardArgs<T>& a) const override { cpu::lerp_backward(a); }
  void adamw_update(const AdamWArgs<T>& a) const override { cpu::adamw_update(a); }
  double sum_squares(const SumSquaresArgs<T>& a) const override { return cpu::sum_squares(a); }
};

}  // namespace

template <class T>
std::unique_ptr<Backend<T>> make_cpu_backend() {
  return std::make_unique<CpuBackend<T>>();
}

template std::unique_ptr<Backend<float>> make_cpu_backend<float>();
template std::unique_ptr<Backend<double>> make_cpu_backend<double>();
template std::unique_ptr<Backend<bf16>> make_cpu_backend<bf16>();

}  // namespace ng
