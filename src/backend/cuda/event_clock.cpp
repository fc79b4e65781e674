// The per-op clock on the GPU: a pair of CUDA events around each call, recorded on the default
// stream (where every op runs), so timing adds no host synchronization per op. read() waits for
// the last call's end event once and then reads every pair; the pairs are reused from step to
// step, so a run creates only as many as one step makes calls.
#include <vector>

#include "backend/cuda/cuda_backend.hpp"
#include "backend/cuda/runtime.hpp"
#include "core/errors.hpp"

namespace ng {
namespace {

class CudaEventClock final : public OpClock {
 public:
  CudaEventClock() = default;
  CudaEventClock(const CudaEventClock&) = delete;
  CudaEventClock& operator=(const CudaEventClock&) = delete;
  ~CudaEventClock() override {
    for (Mark& m : marks_) {
      cuda::event_destroy(m.begin);
      cuda::event_destroy(m.end);
    }
  }

  std::string name() const override { return "CUDA events"; }

  void start() override {
    if (used_ == marks_.size()) marks_.push_back({cuda::event_create(), cuda::event_create(), 0});
    cuda::event_record(marks_[used_].begin);
  }

  void stop(int row) override {
    NG_CHECK(used_ < marks_.size(), "op clock stopped without a start");
    cuda::event_record(marks_[used_].end);
    marks_[used_].row = row;
    ++used_;
  }

  void read(std::vector<double>& ms) override {
    if (used_ == 0) return;
    cuda::event_synchronize(marks_[used_ - 1].end);  // the default stream runs in order
    for (size_t i = 0; i < used_; ++i) ms[size_t(marks_[i].row)] += cuda::event_elapsed_ms(marks_[i].begin, marks_[i].end);
    used_ = 0;
  }

 private:
  struct Mark {
    cuda::Event begin, end;
    int row;
  };
  std::vector<Mark> marks_;
  size_t used_ = 0;  // marks recorded since the last read
};

}  // namespace

std::unique_ptr<OpClock> make_cuda_op_clock() { return std::make_unique<CudaEventClock>(); }

}  // namespace ng
