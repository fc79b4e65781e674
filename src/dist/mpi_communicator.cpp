// MPI collectives for CPU processes. A watchdog thread turns a collective that outlives
// dist.timeout_s into a clear message and an exit of this rank, which makes the launcher end the
// others (a rank that died mid-step would otherwise leave the rest waiting forever).
#include <mpi.h>

#include <deque>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <unistd.h>
#include <vector>

#include "core/errors.hpp"
#include "dist/communicator.hpp"

#define NG_MPI(call)                                                                                   \
  do {                                                                                                  \
    int rc_ = (call);                                                                                   \
    if (rc_ != MPI_SUCCESS) ::ng::fail_internal(__FILE__, __LINE__, std::string(#call) + " failed");   \
  } while (0)

namespace ng {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(double timeout_s) : timeout_s_(timeout_s) {
    int provided = 0;
    NG_MPI(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
    NG_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    NG_MPI(MPI_Comm_size(MPI_COMM_WORLD, &world_));
    MPI_Comm local;
    NG_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local));
    NG_MPI(MPI_Comm_rank(local, &local_rank_));
    MPI_Comm_free(&local);
    watchdog_ = std::thread([this] { watch(); });
  }

  ~MpiCommunicator() override {
    stop_ = true;
    watchdog_.join();
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int world() const override { return world_; }
  int local_rank() const override { return local_rank_; }
  std::string name() const override { return "mpi"; }

  void allreduce_mean(float* data, size_t n) override {
    Timed t(this, "all-reduce");
    NG_MPI(MPI_Allreduce(MPI_IN_PLACE, data, count(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    const float inv = 1.0f / float(world_);
    for (size_t i = 0; i < n; ++i) data[i] *= inv;
  }

  void allreduce_mean(double* data, size_t n) override {
    allreduce_sum(data, n);
    for (size_t i = 0; i < n; ++i) data[i] /= world_;
  }

  void allreduce_sum(double* data, size_t n) override {
    Timed t(this, "all-reduce");
    NG_MPI(MPI_Allreduce(MPI_IN_PLACE, data, count(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  }

  void reduce_scatter_mean(const float* in, float* out, size_t n) override {
    Timed t(this, "reduce-scatter");
    std::vector<int> counts(world_);
    for (int r = 0; r < world_; ++r) counts[r] = count(Shard::of(n, r, world_).size());
    NG_MPI(MPI_Reduce_scatter(in, out, counts.data(), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    const float inv = 1.0f / float(world_);
    for (int i = 0; i < counts[rank_]; ++i) out[i] *= inv;
  }

  void allgather_shards(float* data, size_t n) override {
    Timed t(this, "all-gather");
    std::vector<int> counts(world_), displs(world_);
    for (int r = 0; r < world_; ++r) {
      const Shard s = Shard::of(n, r, world_);
      counts[r] = count(s.size());
      displs[r] = count(s.begin);
    }
    NG_MPI(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(), displs.data(), MPI_FLOAT,
                          MPI_COMM_WORLD));
  }

  // Non-blocking all-reduces (MPI_Iallreduce, in place); the mean's scaling waits for the sum.
  void allreduce_mean_start(float* data, size_t n) override {
    pending_.push_back({MPI_REQUEST_NULL, data, n});
    NG_MPI(MPI_Iallreduce(MPI_IN_PLACE, data, count(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &pending_.back().request));
  }

  void finish_pending() override {
    if (pending_.empty()) return;
    Timed t(this, "all-reduce (overlapped)");
    const float inv = 1.0f / float(world_);
    for (Pending& p : pending_) {
      NG_MPI(MPI_Wait(&p.request, MPI_STATUS_IGNORE));
      for (size_t i = 0; i < p.n; ++i) p.data[i] *= inv;
    }
    pending_.clear();
  }

  void barrier() override {
    Timed t(this, "barrier");
    NG_MPI(MPI_Barrier(MPI_COMM_WORLD));
  }

  void broadcast_bytes(char* data, size_t n) override {
    Timed t(this, "broadcast");
    NG_MPI(MPI_Bcast(data, count(n), MPI_CHAR, 0, MPI_COMM_WORLD));
  }

 private:
  struct Pending {
    MPI_Request request;
    float* data;
    size_t n;
  };
  std::deque<Pending> pending_;  // started all-reduces (a deque: requests must not move)
  // Marks the span of one collective for the watchdog.
  struct Timed {
    Timed(MpiCommunicator* c, const char* what) : c_(c) {
      c_->what_ = what;
      c_->since_ = now_s();
    }
    ~Timed() { c_->since_ = 0; }
    MpiCommunicator* c_;
  };

  static int count(size_t n) {
    NG_CHECK(n <= size_t(INT32_MAX), "MPI message of {} elements is too large", n);
    return int(n);
  }

  void watch() {
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      const double since = since_;
      if (since > 0 && now_s() - since > timeout_s_) {
        std::fprintf(stderr,
                     "normgpt: error: rank %d: %s has not finished after %.0f s (dist.timeout_s): another rank "
                     "probably failed; exiting\n",
                     rank_, what_.load(), timeout_s_);
        std::fflush(stderr);
        _exit(4);
      }
    }
  }

  int rank_ = 0, world_ = 1, local_rank_ = 0;
  double timeout_s_;
  std::atomic<double> since_{0};
  std::atomic<const char*> what_{""};
  std::atomic<bool> stop_{false};
  std::thread watchdog_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(double timeout_s) {
  return std::make_unique<MpiCommunicator>(timeout_s);
}

void mpi_abort_all(int exit_code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, exit_code);
}

}  // namespace ng
