// Which backend runs a job. The CPU backend is always built; the CUDA backend lives in a separate
// library (normgpt_cuda, nvcc-compiled) and registers itself from main() when the build has it,
// so normgpt_lib never links CUDA and CPU-only builds need no stubs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/op_clock.hpp"
#include "dist/communicator.hpp"

namespace ng {

struct DeviceBackendFactory {
  std::string name;                                // "cuda"
  int (*device_count)() = nullptr;                 // usable devices; 0 without driver or GPU
  std::unique_ptr<Backend<float>> (*make)(int local_rank) = nullptr;  // one process per GPU
  // The same device in bf16 storage (device.precision bf16); null when the build has none.
  std::unique_ptr<Backend<bf16>> (*make_bf16)(int local_rank) = nullptr;
  // The device collectives (NCCL), when built: a unique id made on rank 0, then one communicator
  // per rank from it. Null when the build has none.
  std::vector<char> (*unique_id)() = nullptr;
  std::unique_ptr<Communicator> (*make_communicator)(int rank, int world, int local_rank,
                                                     const std::vector<char>& unique_id) = nullptr;
  // The clock of the per-op timing (log.op_timing) for this device's asynchronous calls; null:
  // the host's wall clock, right for a device whose calls return when their work is done.
  std::unique_ptr<OpClock> (*make_op_clock)() = nullptr;
};

void register_device_backend(const DeviceBackendFactory& factory);

// The backend for config key `device`: "cpu"; "cuda" (a user error naming the reason when this
// build or machine has none); "auto" = cuda when registered and a device is present, else cpu.
// local_rank picks the GPU (device local_rank % count, backend/cuda/runtime.hpp) in multi-process
// runs.
std::unique_ptr<Backend<float>> make_backend(const std::string& device, int local_rank = 0);

// The communicator for the gradients of a model on `backend`: `process` itself for host memory or
// a single process; for device memory and several ranks, the device collectives (NCCL), set up
// with their unique id broadcast over `process`. Null means: use `process`. A user error when the
// build has no device collectives.
std::unique_ptr<Communicator> make_gradient_communicator(const Memory& backend, Communicator& process);

// The bf16 backend for `device` (precision bf16): the device's when registered, the CPU's
// emulation for device cpu (a reference for tests, slow).
std::unique_ptr<Backend<bf16>> make_backend_bf16(const std::string& device, int local_rank = 0);

// The per-op clock for a backend of `resolved_device` (resolve_device's answer): the registered
// device's clock, else the host's wall clock.
std::unique_ptr<OpClock> make_op_clock(const std::string& resolved_device);

// What make_backend would pick, without creating it ("cpu" or "cuda").
std::string resolve_device(const std::string& device);

// The storage precision for config key `precision` on a resolved device: "fp32" or "bf16"
// (auto: bf16 on a GPU, fp32 on the CPU).
std::string resolve_precision(const std::string& precision, const std::string& resolved_device);

}  // namespace ng
