#include <cstdint>

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

void copy_on_device(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) NG_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}

void synchronize() { NG_CUDA(cudaDeviceSynchronize()); }

void set_device(int index) {
  NG_CUDA(cudaSetDevice(index));
  // Keep the memory that cudaFreeAsync returns in the default pool: the per-call scratch of the
  // norm and column-sum kernels is then reused, not handed back to the driver at every sync.
  cudaMemPool_t pool = nullptr;
  NG_CUDA(cudaDeviceGetDefaultMemPool(&pool, index));
  uint64_t keep = UINT64_MAX;
  NG_CUDA(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
}

int device_for_local_rank(int local_rank) { return device_for_local_rank(local_rank, device_count()); }

Event event_create() {
  cudaEvent_t e = nullptr;
  NG_CUDA(cudaEventCreate(&e));
  return e;
}

void event_destroy(Event e) {
  if (e) cudaEventDestroy(static_cast<cudaEvent_t>(e));
}

void event_record(Event e) { NG_CUDA(cudaEventRecord(static_cast<cudaEvent_t>(e), 0)); }

void event_synchronize(Event e) { NG_CUDA(cudaEventSynchronize(static_cast<cudaEvent_t>(e))); }

float event_elapsed_ms(Event start, Event end) {
  float ms = 0;
  NG_CUDA(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)));
  return ms;
}

DeviceInfo device_info() {
  int dev = 0;
  NG_CUDA(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  NG_CUDA(cudaGetDeviceProperties(&prop, dev));
  size_t free_b = 0, total_b = 0;
  NG_CUDA(cudaMemGetInfo(&free_b, &total_b));
  DeviceInfo info;
  info.index = dev;
  info.name = prop.name;
  info.sm_major = prop.major;
  info.sm_minor = prop.minor;
  info.total_bytes = total_b;
  info.free_bytes = free_b;
  return info;
}

}  // namespace ng::cuda
