// Where a backend's tensors live. The model allocates its parameters, gradients and activation
// arena through this interface, so one model code runs over host memory (CPU backend) or device
// memory (CUDA backend). Host code (init, checkpoints, statistics) moves data with upload/download
// and never dereferences a backend pointer unless host_accessible() says it may.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace ng {

class Memory {
 public:
  virtual ~Memory() = default;
  // True when pointers from allocate() may be read and written by host code directly.
  virtual bool host_accessible() const = 0;
  virtual void* allocate(size_t bytes) const = 0;  // zero-filled; nullptr for 0 bytes
  virtual void release(void* ptr) const = 0;
  virtual void upload(void* dst, const void* host_src, size_t bytes) const = 0;
  virtual void download(void* host_dst, const void* src, size_t bytes) const = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) const = 0;  // both in this memory
  virtual void fill_zero(void* dst, size_t bytes) const = 0;
};

// A typed array in a backend's memory that frees itself. Element access ([], begin/end) is for
// host-accessible memory only (the CPU backend, tests); everything else goes through to_host /
// from_host.
template <class E>
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Memory& mem, size_t n) : mem_(&mem), n_(n), ptr_(static_cast<E*>(mem.allocate(n * sizeof(E)))) {}
  ~Buffer() { reset(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      reset();
      std::swap(mem_, o.mem_);
      std::swap(n_, o.n_);
      std::swap(ptr_, o.ptr_);
    }
    return *this;
  }

  E* data() { return ptr_; }
  const E* data() const { return ptr_; }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  E& operator[](size_t i) { return ptr_[i]; }
  const E& operator[](size_t i) const { return ptr_[i]; }
  E* begin() { return ptr_; }
  E* end() { return ptr_ + n_; }
  const E* begin() const { return ptr_; }
  const E* end() const { return ptr_ + n_; }

  std::vector<E> to_host() const { return to_host(0, n_); }
  std::vector<E> to_host(size_t offset, size_t count) const {
    std::vector<E> h(count);
    if (count) mem_->download(h.data(), ptr_ + offset, count * sizeof(E));
    return h;
  }
  void from_host(const E* src, size_t count, size_t offset = 0) {
    if (count) mem_->upload(ptr_ + offset, src, count * sizeof(E));
  }
  void from_host(const std::vector<E>& src) { from_host(src.data(), std::min(src.size(), n_)); }
  void zero() {
    if (n_) mem_->fill_zero(ptr_, n_ * sizeof(E));
  }

 private:
  void reset() {
    if (mem_ && ptr_) mem_->release(ptr_);
    ptr_ = nullptr;
    n_ = 0;
  }
  const Memory* mem_ = nullptr;
  size_t n_ = 0;
  E* ptr_ = nullptr;
};

// A host copy of n elements at a backend pointer (for statistics and tests).
template <class E>
std::vector<E> download_vector(const Memory& mem, const E* src, size_t n) {
  std::vector<E> h(n);
  if (n) mem.download(h.data(), src, n * sizeof(E));
  return h;
}

}  // namespace ng
