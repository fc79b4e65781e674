// The communicator interface: how ranks agree on gradients and metrics. The trainer calls it at
// fixed points of every step; the local implementation (one process) does nothing. The MPI
// implementation (dist/mpi_communicator.cpp) serves CPU processes; the NCCL one
// (dist/nccl_communicator.cpp) GPU processes. Collectives are blocking and called in the same
// order on every rank. Buffers: float data lives where the backend keeps its tensors (host memory
// for the CPU backend, device memory for NCCL); double data is always host memory (losses, metrics).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace ng {

// The slice [begin, end) of a flat buffer of n elements that rank r owns under ZeRO-1: contiguous,
// sizes differing by at most one, rank order.
struct Shard {
  size_t begin = 0, end = 0;
  size_t size() const { return end - begin; }
  static Shard of(size_t n, int rank, int world) { return {n * size_t(rank) / size_t(world), n * size_t(rank + 1) / size_t(world)}; }
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  virtual int local_rank() const = 0;  // rank among the processes on this machine (GPU choice)
  virtual std::string name() const = 0;
  // Element-wise mean / sum over ranks, in place.
  virtual void allreduce_mean(float* data, size_t n) = 0;
  virtual void allreduce_mean(double* data, size_t n) = 0;
  virtual void allreduce_sum(double* data, size_t n) = 0;
  // ZeRO-1: `out` (Shard::of(n, rank, world).size() elements) receives the mean over ranks of
  // this rank's shard of `in` (n elements).
  virtual void reduce_scatter_mean(const float* in, float* out, size_t n) = 0;
  // ZeRO-1: every rank's shard of `data` (n elements) is sent to every rank, in place.
  virtual void allgather_shards(float* data, size_t n) = 0;
  virtual void barrier() = 0;
  // Overlap (dist.overlap): start averaging `data` (float, the backend's memory) over ranks and
  // return; finish_pending() waits for every started one, after which the data may be read or
  // written. The default runs the average at once (nothing to overlap).
  virtual void allreduce_mean_start(float* data, size_t n) { allreduce_mean(data, n); }
  virtual void finish_pending() {}
  // Rank 0's `n` bytes (host memory) to every rank, in place: how NCCL's unique id travels over
  // MPI. The default serves one rank; multi-rank host communicators override it.
  virtual void broadcast_bytes(char* data, size_t n);
  bool is_root() const { return rank() == 0; }
};

// One process, world size 1.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string name() const override { return "local"; }
  void allreduce_mean(float*, size_t) override {}
  void allreduce_mean(double*, size_t) override {}
  void allreduce_sum(double*, size_t) override {}
  void reduce_scatter_mean(const float* in, float* out, size_t n) override {
    for (size_t i = 0; i < n; ++i) out[i] = in[i];
  }
  void allgather_shards(float*, size_t) override {}
  void barrier() override {}
};

// The process's communicator, created on first use from the launcher's environment: MPI when
// started by mpirun/srun with MPI support built in, else local. UserError when launched with
// several ranks but built without MPI. It lives until finalize_communicator() (normal exit) or
// abort_all_ranks() (error): never torn down while an exception unwinds, because an MPI finalize
// would wait for ranks that are still inside a collective.
Communicator& process_communicator(double timeout_s);
void finalize_communicator();

// Ends every rank of a multi-rank job after a fatal error on this one (no-op for one process).
// main() calls it so that a failing rank never leaves the others waiting in a collective.
void abort_all_ranks(int exit_code);

}  // namespace ng
