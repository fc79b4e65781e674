// NCCL communicator for GPU data parallelism (one process per GPU, the GPU picked by local rank).
// Plain C++ header: no NCCL or CUDA types. Built into normgpt_cuda when NCCL is found.
//
// Buffer contract (communicator.hpp): float buffers are device memory (gradients, parameters);
// double buffers are host memory (losses and metrics), copied through a small device scratch.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dist/communicator.hpp"

namespace ng {

// NCCL's unique id, made by rank 0 and shared with the others (MPI broadcast or
// tcp_broadcast_from_root) before make_nccl_communicator.
std::vector<char> nccl_unique_id();

std::unique_ptr<Communicator> make_nccl_communicator(int rank, int world, int local_rank,
                                                     const std::vector<char>& unique_id);

}  // namespace ng
