// The CUDA backend: Backend<float> and Backend<bf16> over the launchers in this folder, device
// memory through runtime.hpp. Plain C++ (compiled by the host compiler into normgpt_cuda), so it may use the
// project's error helpers; the .cu files stay free of spdlog/json.
#pragma once

#include <memory>

#include "backend/backend.hpp"
#include "backend/op_clock.hpp"

namespace ng {

// Selects GPU cuda::device_for_local_rank(local_rank) and returns a backend bound to it.
std::unique_ptr<Backend<float>> make_cuda_backend(int local_rank);

// The same in bf16 storage (device.precision bf16): bf16 activations and weights, fp32 master
// weights (AdamWArgs::master), parameter gradients, statistics and attention state.
std::unique_ptr<Backend<bf16>> make_cuda_backend_bf16(int local_rank);

// The per-op clock for device runs (event_clock.cpp): CUDA events on the default stream, read
// once per step.
std::unique_ptr<OpClock> make_cuda_op_clock();

// Registers the CUDA backend (fp32 and bf16) with backend/registry.hpp (called from main and the
// CUDA tests).
void register_cuda_backend();

}  // namespace ng
