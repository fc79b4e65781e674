// The communicator interface: how ranks agree on gradients and metrics. The trainer calls it at
// fixed points of every step; the local implementation (one process) does nothing. MPI and NCCL
// implementations come with the data-parallel issue behind the same interface.
#pragma once

#include <cstddef>
#include <memory>

namespace ng {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  // Element-wise mean over ranks, in place.
  virtual void allreduce_mean(float* data, size_t n) = 0;
  virtual void allreduce_mean(double* data, size_t n) = 0;
  virtual void barrier() = 0;
  bool is_root() const { return rank() == 0; }
};

// One process, world size 1.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  void allreduce_mean(float*, size_t) override {}
  void allreduce_mean(double*, size_t) override {}
  void barrier() override {}
};

}  // namespace ng
