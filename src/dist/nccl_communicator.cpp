// NCCL collectives on one stream per process. The stream does not synchronize implicitly with the
// default stream (the model's), so each collective first waits for the work queued there; every
// blocking call synchronizes before it returns. allreduce_mean_start queues the all-reduce and
// returns at once, so a block's gradients travel while the backward pass computes the next block
// (dist.overlap); finish_pending waits for them.
#include "dist/nccl_communicator.hpp"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>

#include "backend/cuda/check.cuh"
#include "backend/cuda/runtime.hpp"
#include "core/errors.hpp"

#define NG_NCCL(call)                                                                             \
  do {                                                                                             \
    ncclResult_t r_ = (call);                                                                      \
    if (r_ != ncclSuccess)                                                                         \
      ::ng::fail_internal(__FILE__, __LINE__, std::string(#call) + ": " + ncclGetErrorString(r_)); \
  } while (0)

namespace ng {
namespace {

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(int rank, int world, int local_rank, const std::vector<char>& id)
      : rank_(rank), world_(world), local_rank_(local_rank) {
    NG_CHECK(id.size() == sizeof(ncclUniqueId), "NCCL unique id of {} bytes", id.size());
    ncclUniqueId uid;
    std::memcpy(&uid, id.data(), sizeof(uid));
    NG_CUDA(cudaSetDevice(cuda::device_for_local_rank(local_rank)));  // the backend's device
    NG_NCCL(ncclCommInitRank(&comm_, world, uid, rank));
    NG_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    NG_CUDA(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    NG_CUDA(cudaMalloc(&scratch_, kScratch * sizeof(double)));
  }

  ~NcclCommunicator() override {
    cudaFree(scratch_);
    cudaEventDestroy(ready_);
    cudaStreamDestroy(stream_);
    ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int world() const override { return world_; }
  int local_rank() const override { return local_rank_; }
  std::string name() const override { return "nccl"; }

  void allreduce_mean(float* data, size_t n) override {
    allreduce_mean_start(data, n);
    sync();
  }

  void allreduce_mean_start(float* data, size_t n) override {
    after_model_work();
    NG_NCCL(ncclAllReduce(data, data, n, ncclFloat, ncclAvg, comm_, stream_));
  }

  void finish_pending() override { sync(); }

  void allreduce_mean(double* host, size_t n) override { host_allreduce(host, n, ncclAvg); }
  void allreduce_sum(double* host, size_t n) override { host_allreduce(host, n, ncclSum); }

  // NCCL's reduce-scatter gives every rank the same count, so ZeRO-1 over NCCL needs a parameter
  // buffer padded to a multiple of the world size (Shard::of then cuts equal shards).
  void reduce_scatter_mean(const float* in, float* out, size_t n) override {
    NG_CHECK(n % size_t(world_) == 0, "ZeRO-1 over NCCL needs n ({}) to be a multiple of the world size ({})", n,
             world_);
    after_model_work();
    NG_NCCL(ncclReduceScatter(in, out, n / size_t(world_), ncclFloat, ncclAvg, comm_, stream_));
    sync();
  }

  void allgather_shards(float* data, size_t n) override {
    NG_CHECK(n % size_t(world_) == 0, "ZeRO-1 over NCCL needs n ({}) to be a multiple of the world size ({})", n,
             world_);
    const size_t count = n / size_t(world_);
    after_model_work();
    NG_NCCL(ncclAllGather(data + size_t(rank_) * count, data, count, ncclFloat, comm_, stream_));  // in place
    sync();
  }

  void barrier() override {
    NG_NCCL(ncclAllReduce(scratch_, scratch_, 1, ncclDouble, ncclSum, comm_, stream_));
    sync();
  }

 private:
  static constexpr size_t kScratch = 4096;  // doubles: metrics vectors (layer statistics) fit

  // The collective that follows reads what the default stream wrote: wait for it on the GPU.
  void after_model_work() {
    NG_CUDA(cudaEventRecord(ready_, cudaStreamLegacy));
    NG_CUDA(cudaStreamWaitEvent(stream_, ready_, 0));
  }

  void host_allreduce(double* host, size_t n, ncclRedOp_t op) {
    for (size_t done = 0; done < n; done += kScratch) {
      const size_t k = std::min(kScratch, n - done);
      NG_CUDA(cudaMemcpyAsync(scratch_, host + done, k * sizeof(double), cudaMemcpyHostToDevice, stream_));
      NG_NCCL(ncclAllReduce(scratch_, scratch_, k, ncclDouble, op, comm_, stream_));
      NG_CUDA(cudaMemcpyAsync(host + done, scratch_, k * sizeof(double), cudaMemcpyDeviceToHost, stream_));
      sync();
    }
  }

  void sync() { NG_CUDA(cudaStreamSynchronize(stream_)); }

  int rank_, world_, local_rank_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  double* scratch_ = nullptr;
};

}  // namespace

std::vector<char> nccl_unique_id() {
  ncclUniqueId uid;
  NG_NCCL(ncclGetUniqueId(&uid));
  return std::vector<char>(uid.internal, uid.internal + sizeof(uid.internal));
}

std::unique_ptr<Communicator> make_nccl_communicator(int rank, int world, int local_rank,
                                                     const std::vector<char>& unique_id) {
  return std::make_unique<NcclCommunicator>(rank, world, local_rank, unique_id);
}

}  // namespace ng
