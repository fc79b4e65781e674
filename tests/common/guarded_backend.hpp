// A stand-in for a device backend on machines without a GPU: the CPU kernels over memory the host
// cannot touch. Every allocation is its own mapping, kept PROT_NONE except while an op, an upload
// or a download runs. Host code that dereferences backend memory directly (which would read
// garbage or fault on a real GPU) dies with SIGSEGV here, and host_accessible() is false, so the
// model, trainer and checkpoint paths take exactly the branches the CUDA backend makes them take.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>

#include "backend/backend.hpp"

namespace ng::test {

template <class T>
class GuardedBackend final : public Backend<T> {
 public:
  std::string name() const override { return "guarded"; }

  bool host_accessible() const override { return false; }
  void* allocate(size_t bytes) const override {
    if (bytes == 0) return nullptr;
    const size_t len = round_up(bytes);
    void* p = ::mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);  // zero-filled
    if (p == MAP_FAILED) throw std::bad_alloc();
    std::lock_guard<std::mutex> lock(mu_);
    regions_[p] = len;
    return p;
  }
  void release(void* p) const override {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = regions_.find(p);
    if (it == regions_.end()) return;
    ::munmap(p, it->second);
    regions_.erase(it);
  }
  void upload(void* dst, const void* src, size_t bytes) const override { run([&] { std::memmove(dst, src, bytes); }); }
  void download(void* dst, const void* src, size_t bytes) const override { run([&] { std::memmove(dst, src, bytes); }); }
  void copy(void* dst, const void* src, size_t bytes) const override { run([&] { std::memmove(dst, src, bytes); }); }
  void fill_zero(void* dst, size_t bytes) const override { run([&] { std::memset(dst, 0, bytes); }); }

  void encoder_forward(const EncoderForwardArgs<T>& a) const override { run([&] { cpu_->encoder_forward(a); }); }
  void encoder_backward(const EncoderBackwardArgs<T>& a) const override { run([&] { cpu_->encoder_backward(a); }); }
  void norm_forward(const NormForwardArgs<T>& a) const override { run([&] { cpu_->norm_forward(a); }); }
  void norm_backward(const NormBackwardArgs<T>& a) const override { run([&] { cpu_->norm_backward(a); }); }
  void matmul_forward(const MatmulForwardArgs<T>& a) const override { run([&] { cpu_->matmul_forward(a); }); }
  void matmul_backward(const MatmulBackwardArgs<T>& a) const override { run([&] { cpu_->matmul_backward(a); }); }
  void attention_forward(const AttentionForwardArgs<T>& a) const override { run([&] { cpu_->attention_forward(a); }); }
  void attention_backward(const AttentionBackwardArgs<T>& a) const override {
    run([&] { cpu_->attention_backward(a); });
  }
  void gelu_forward(const GeluForwardArgs<T>& a) const override { run([&] { cpu_->gelu_forward(a); }); }
  void gelu_backward(const GeluBackwardArgs<T>& a) const override { run([&] { cpu_->gelu_backward(a); }); }
  void residual(const ResidualArgs<T>& a) const override { run([&] { cpu_->residual(a); }); }
  void scale(const ScaleArgs<T>& a) const override { run([&] { cpu_->scale(a); }); }
  void geodesic_forward(const GeodesicForwardArgs<T>& a) const override { run([&] { cpu_->geodesic_forward(a); }); }
  void geodesic_backward(const GeodesicBackwardArgs<T>& a) const override { run([&] { cpu_->geodesic_backward(a); }); }
  void crossentropy_forward(const CrossEntropyForwardArgs<T>& a) const override {
    run([&] { cpu_->crossentropy_forward(a); });
  }
  void crossentropy_backward(const CrossEntropyBackwardArgs<T>& a) const override {
    run([&] { cpu_->crossentropy_backward(a); });
  }
  void rope(const RopeArgs<T>& a) const override { run([&] { cpu_->rope(a); }); }
  void swiglu_forward(const SwigluForwardArgs<T>& a) const override { run([&] { cpu_->swiglu_forward(a); }); }
  void swiglu_backward(const SwigluBackwardArgs<T>& a) const override { run([&] { cpu_->swiglu_backward(a); }); }
  void scale_columns_forward(const ScaleColumnsForwardArgs<T>& a) const override {
    run([&] { cpu_->scale_columns_forward(a); });
  }
  void scale_columns_backward(const ScaleColumnsBackwardArgs<T>& a) const override {
    run([&] { cpu_->scale_columns_backward(a); });
  }
  void copy2d(const Copy2dArgs<T>& a) const override { run([&] { cpu_->copy2d(a); }); }
  void lerp_forward(const LerpForwardArgs<T>& a) const override { run([&] { cpu_->lerp_forward(a); }); }
  void lerp_backward(const LerpBackwardArgs<T>& a) const override { run([&] { cpu_->lerp_backward(a); }); }
  void adamw_update(const AdamWArgs<T>& a) const override { run([&] { cpu_->adamw_update(a); }); }
  double sum_squares(const SumSquaresArgs<T>& a) const override {
    double s = 0;
    run([&] { s = cpu_->sum_squares(a); });
    return s;
  }

  size_t live_allocations() const {
    std::lock_guard<std::mutex> lock(mu_);
    return regions_.size();
  }

 private:
  static size_t round_up(size_t bytes) {
    const size_t page = size_t(::sysconf(_SC_PAGESIZE));
    return (bytes + page - 1) / page * page;
  }
  // Opens every region for the duration of one backend call, then closes them again.
  template <class F>
  void run(F&& f) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [p, len] : regions_) ::mprotect(p, len, PROT_READ | PROT_WRITE);
    f();
    for (auto& [p, len] : regions_) ::mprotect(p, len, PROT_NONE);
  }

  std::unique_ptr<Backend<T>> cpu_ = make_cpu_backend<T>();
  mutable std::mutex mu_;
  mutable std::map<void*, size_t> regions_;
};

}  // namespace ng::test
