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
  void upload(void* dst, const void* src, size_t bytes) const override {
    Open open(*this);
    std::memmove(dst, src, bytes);
  }
  void download(void* dst, const void* src, size_t bytes) const override {
    Open open(*this);
    std::memmove(dst, src, bytes);
  }
  void copy(void* dst, const void* src, size_t bytes) const override {
    Open open(*this);
    std::memmove(dst, src, bytes);
  }
  void fill_zero(void* dst, size_t bytes) const override {
    Open open(*this);
    std::memset(dst, 0, bytes);
  }

  // Every op of backend/op_list.hpp: the CPU kernel, with the memory open while it runs.
#define NG_OP(R, name, Args)                     \
  R name(const Args<T>& a) const override {      \
    Open open(*this);                            \
    return cpu_->name(a);                        \
  }
  NG_BACKEND_OPS(NG_OP)
#undef NG_OP

  size_t live_allocations() const {
    std::lock_guard<std::mutex> lock(mu_);
    return regions_.size();
  }

 private:
  static size_t round_up(size_t bytes) {
    const size_t page = size_t(::sysconf(_SC_PAGESIZE));
    return (bytes + page - 1) / page * page;
  }
  // Opens every region for the duration of one backend call (its lifetime), then closes them
  // again; holds the lock throughout, so calls from several threads take turns.
  class Open {
   public:
    explicit Open(const GuardedBackend& b) : b_(b), lock_(b.mu_) { b_.protect(PROT_READ | PROT_WRITE); }
    ~Open() { b_.protect(PROT_NONE); }
    Open(const Open&) = delete;
    Open& operator=(const Open&) = delete;

   private:
    const GuardedBackend& b_;
    std::lock_guard<std::mutex> lock_;
  };
  void protect(int prot) const {
    for (auto& [p, len] : regions_) ::mprotect(p, len, prot);
  }

  std::unique_ptr<Backend<T>> cpu_ = make_cpu_backend<T>();
  mutable std::mutex mu_;
  mutable std::map<void*, size_t> regions_;
};

}  // namespace ng::test
