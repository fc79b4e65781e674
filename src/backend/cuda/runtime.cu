#include "backend/cuda/check.cuh"
#include "backend/cuda/runtime.hpp"

namespace ng::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  if (bytes > 0) NG_CUDA(cudaMalloc(&p, bytes));
  return p;
}

void device_free(void* ptr) {
  if (ptr) cudaFree(ptr);
}

void copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) NG_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) NG_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void fill_bytes(void* dst, int value, size_t bytes) {
  if (bytes > 0) NG_CUDA(cudaMemset(dst, value, bytes));
}

void synchronize() { NG_CUDA(cudaDeviceSynchronize()); }

}  // namespace ng::cuda
