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

// Every op of backend/op_list.hpp as the launcher of the same name in ng::cuda (this folder's
// headers). CudaBackend below overrides the ops whose choice of kernel is not a plain forward.
template <class T>
class CudaLaunchers : public Backend<T> {
 public:
#define NG_OP(R, name, Args) \
  R name(const Args<T>& a) const override { return cuda::name(a); }
  NG_BACKEND_OPS(NG_OP)
#undef NG_OP
};

// One class for both storage precisions: fp32 (device.precision fp32) and bf16 (fp32 master
// weights in AdamW, fp32 parameter gradients, statistics and attention state; the launchers'
// headers say what each keeps in fp32). Every call is on the default stream, so host reads
// (download) see finished results without explicit synchronization.
template <class T>
class CudaBackend final : public CudaLaunchers<T> {
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

  // Attention (overrides the plain forwards): the fused flash kernels (state = one log-sum-exp
  // per row) for head sizes they take, else the naive kernels with materialized probabilities.
  // The choice depends only on the shapes, so the sizes, forward and backward always agree. State
  // and scratch are stat_t<T> (fp32 under bf16).
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
};

template <class T>
std::unique_ptr<Backend<T>> make_on_device(int local_rank) {
  cuda::set_device(cuda::device_for_local_rank(local_rank));
  return std::make_unique<CudaBackend<T>>();
}

}  // namespace

std::unique_ptr<Backend<float>> make_cuda_backend(int local_rank) { return make_on_device<float>(local_rank); }

std::unique_ptr<Backend<bf16>> make_cuda_backend_bf16(int local_rank) { return make_on_device<bf16>(local_rank); }

void register_cuda_backend() {
  DeviceBackendFactory f{"cuda", &cuda::device_count, &make_cuda_backend};
  f.make_bf16 = &make_cuda_backend_bf16;
  f.make_op_clock = &make_cuda_op_clock;
#ifdef NORMGPT_HAVE_NCCL
  f.unique_id = &nccl_unique_id;
  f.make_communicator = &make_nccl_communicator;
#endif
  register_device_backend(f);
}

}  // namespace ng
