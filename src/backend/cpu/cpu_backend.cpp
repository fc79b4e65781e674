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

  // Every op is the reference kernel of the same name (backend/cpu/kernels.hpp).
#define NG_OP(R, name, Args) \
  R name(const Args<T>& a) const override { return cpu::name(a); }
  NG_BACKEND_OPS(NG_OP)
#undef NG_OP
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
