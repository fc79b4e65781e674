#include "backend/cuda/cuda_backend.hpp"

#include "backend/cuda/attention.hpp"
#include "backend/cuda/encoder.hpp"
#include "backend/cuda/flash_attention.hpp"
#include "backend/cuda/geodesic.hpp"
#include "backend/cuda/lerp.hpp"
#include "backend/cuda/linear.hpp"
#include "backend/cuda/loss.hpp"
#include "backend/cuda/norm.hpp"
#include "backend/cuda/optim.hpp"
#include "backend/cuda/pointwise.hpp"
#include "backend/cuda/rope.hpp"
#include "backend/cuda/runtime.hpp"
#include "backend/registry.hpp"
#include "core/errors.hpp"
#ifdef NORMGPT_HAVE_NCCL
#include "dist/nccl_communicator.hpp"
#endif

namespace ng {
namespace {

// One class for both storage precisions: fp32 (device.precision fp32) and bf16 (fp32 master
// weights in AdamW, fp32 parameter gradients, statistics and attention state; the launchers'
// headers say what each keeps in fp32). Every call is on the default stream, so host reads
// (download) see finished results without explicit synchronization.
template <class T>
class CudaBackend final : public Backend<T> {
 public:
  std::string name() const override { return "cuda"; }

  bool host_accessible() const override { return false; }
  void* allocate(size_t bytes) const override {
    void* p = cuda::device_alloc(bytes);
    cuda::fill_bytes(p, 0, bytes);
    return p;
  }
  void release(void* p) const override { cuda::device_free(p); }
  void upload(void* dst, const void* src, size_t bytes) const override { cuda::copy_to_device(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) const override { cuda::copy_to_host(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) const override { cuda::copy_on_device(dst, src, bytes); }
  void fill_zero(void* dst, size_t bytes) const override { cuda::fill_bytes(dst, 0, bytes); }

  void encoder_forward(const EncoderForwardArgs<T>& a) const override { cuda::encoder_forward(a); }
  void encoder_backward(const EncoderBackwardArgs<T>& a) const override { cuda::encoder_backward(a); }
  void norm_forward(const NormForwardArgs<T>& a) const override { cuda::norm_forward(a); }
  void norm_backward(const NormBackwardArgs<T>& a) const override { cuda::norm_backward(a); }
  void matmul_forward(const MatmulForwardArgs<T>& a) const override { cuda::matmul_forward(a); }
  void matmul_backward(const MatmulBackwardArgs<T>& a) const override { cuda::matmul_backward(a); }
  // Attention: the fused flash kernels (state = one log-sum-exp per row) for head sizes they
  // take, else the naive kernels with materialized probabilities. The choice depends only on the
  // shapes, so the sizes, forward and backward always agree. State and scratch are stat_t<T>
  // (fp32 under bf16).
  static bool flash(int C, int NH) { return NH > 0 && C % NH == 0 && C / NH <= cuda::kFlashMaxHeadSize; }
  static size_t state_values(int B, int T_len, int C, int NH) {
    return flash(C, NH) ? size_t(B) * NH * T_len : size_t(B) * NH * T_len * T_len;
  }
  size_t attention_state_size(int B, int T_len, int C, int NH) const override {
    return state_values(B, T_len, C, NH);
  }
  size_t attention_scratch_size(int B, int T_len, int C, int NH) const override {
    return state_values(B, T_len, C, NH);
  }
  void attention_forward(const AttentionForwardArgs<T>& a) const override {
    if (!flash(a.C, a.NH)) return cuda::attention_forward(a);
    cuda::flash_attention_forward<T>({a.out, a.att, a.qkv, a.B, a.T_, a.C, a.NH, a.scale});
  }
  void attention_backward(const AttentionBackwardArgs<T>& a) const override {
    if (!flash(a.C, a.NH)) return cuda::attention_backward(a);
    NG_CHECK(a.out != nullptr, "flash attention backward needs the forward's output");
    cuda::flash_attention_backward<T>({a.dqkv, a.scratch, a.dout, a.out, a.att,
                                       a.qkv, a.B, a.T_, a.C, a.NH, a.scale});
  }
  void gelu_forward(const GeluForwardArgs<T>& a) const override { cuda::gelu_forward(a); }
  void gelu_backward(const GeluBackwardArgs<T>& a) const override { cuda::gelu_backward(a); }
  void residual(const ResidualArgs<T>& a) const override { cuda::residual(a); }
  void scale(const ScaleArgs<T>& a) const override { cuda::scale(a); }
  void geodesic_forward(const GeodesicForwardArgs<T>& a) const override { cuda::geodesic_forward(a); }
  void geodesic_backward(const GeodesicBackwardArgs<T>& a) const override { cuda::geodesic_backward(a); }
  void crossentropy_forward(const CrossEntropyForwardArgs<T>& a) const override { cuda::crossentropy_forward(a); }
  void crossentropy_backward(const CrossEntropyBackwardArgs<T>& a) const override { cuda::crossentropy_backward(a); }
  void rope(const RopeArgs<T>& a) const override { cuda::rope(a); }
  void swiglu_forward(const SwigluForwardArgs<T>& a) const override { cuda::swiglu_forward(a); }
  void swiglu_backward(const SwigluBackwardArgs<T>& a) const override { cuda::swiglu_backward(a); }
  void scale_columns_forward(const ScaleColumnsForwardArgs<T>& a) const override { cuda::scale_columns_forward(a); }
  void scale_columns_backward(const ScaleColumnsBackwardArgs<T>& a) const override {
    cuda::scale_columns_backward(a);
  }
  void copy2d(const Copy2dArgs<T>& a) const override { cuda::copy2d(a); }
  void lerp_forward(const LerpForwardArgs<T>& a) const override { cuda::lerp_forward(a); }
  void lerp_backward(const LerpBackwardArgs<T>& a) const override { cuda::lerp_backward(a); }
  void adamw_update(const AdamWArgs<T>& a) const override { cuda::adamw_update(a); }
  double sum_squares(const SumSquaresArgs<T>& a) const override { return cuda::sum_squares(a); }
};

template <class T>
std::unique_ptr<Backend<T>> make_on_device(int local_rank) {
  const int count = cuda::device_count();
  cuda::set_device(count > 0 ? local_rank % count : 0);
  return std::make_unique<CudaBackend<T>>();
}

}  // namespace

std::unique_ptr<Backend<float>> make_cuda_backend(int local_rank) { return make_on_device<float>(local_rank); }

std::unique_ptr<Backend<bf16>> make_cuda_backend_bf16(int local_rank) { return make_on_device<bf16>(local_rank); }

void register_cuda_backend() {
  DeviceBackendFactory f{"cuda", &cuda::device_count, &make_cuda_backend};
  f.make_bf16 = &make_cuda_backend_bf16;
#ifdef NORMGPT_HAVE_NCCL
  f.unique_id = &nccl_unique_id;
  f.make_communicator = &make_nccl_communicator;
#endif
  register_device_backend(f);
}

}  // namespace ng
