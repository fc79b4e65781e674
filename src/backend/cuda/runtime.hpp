// CUDA runtime helpers behind a plain C++ interface (DESIGN.md: no spdlog/json in .cu files, and
// no CUDA headers in files that include them). Every call is checked; a failure raises
// ng::InternalError naming file, line and the CUDA call.
#pragma once

#include <cstddef>
#include <string>

namespace ng::cuda {

// Number of usable CUDA devices; 0 when there is no driver or no device (never throws).
int device_count();

void* device_alloc(size_t bytes);
void device_free(void* ptr);
void copy_to_device(void* dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const void* src, size_t bytes);
void fill_bytes(void* dst, int value, size_t bytes);  // e.g. poison outputs before a test
void copy_on_device(void* dst, const void* src, size_t bytes);
void synchronize();
void set_device(int index);

// The GPU a process uses: local_rank % device_count (device 0 when none is counted), so that
// several processes per node share the node's GPUs round-robin. The one rule for the backend
// (cuda_backend.cpp) and the NCCL communicator (dist/nccl_communicator.cpp), which must agree.
inline int device_for_local_rank(int local_rank, int device_count) {
  return device_count > 0 ? local_rank % device_count : 0;
}
int device_for_local_rank(int local_rank);  // with device_count()

// Timing events on the default stream (the per-op clock, event_clock.cpp). An Event is a
// cudaEvent_t, opaque here so that this header needs no CUDA include.
using Event = void*;
Event event_create();
void event_destroy(Event e);  // null is ignored
void event_record(Event e);   // queued on the default stream
void event_synchronize(Event e);
float event_elapsed_ms(Event start, Event end);  // both recorded and complete

struct DeviceInfo {
  int index = 0;
  std::string name;
  int sm_major = 0, sm_minor = 0;
  size_t total_bytes = 0, free_bytes = 0;
};
DeviceInfo device_info();  // the current device

// A typed device array that frees itself.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n), ptr_(static_cast<T*>(device_alloc(n * sizeof(T)))) {}
  ~DeviceArray() { device_free(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return ptr_; }
  size_t size() const { return n_; }

 private:
  size_t n_;
  T* ptr_;
};

}  // namespace ng::cuda
