// The per-op timing decorator (backend/timed_backend.hpp): it forwards every op of the op list to
// the op of the same name, counts calls only while timing is on, hands the clock's times to the
// right rows only when read, and leaves results untouched. Also the device-selection rule shared by
// the CUDA backend and the NCCL communicator (a plain function, testable without a GPU).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "backend/cuda/runtime.hpp"
#include "backend/op_clock.hpp"
#include "backend/timed_backend.hpp"

using namespace ng;

namespace {

// A backend whose ops only record their names (its memory is the CPU's heap, unused here).
class RecordingBackend final : public Backend<float> {
 public:
  explicit RecordingBackend(std::vector<std::string>& log) : log_(log) {}
  std::string name() const override { return "recording"; }
  bool host_accessible() const override { return true; }
  void* allocate(size_t) const override { return nullptr; }
  void release(void*) const override {}
  void upload(void*, const void*, size_t) const override { log_.push_back("upload"); }
  void download(void*, const void*, size_t) const override { log_.push_back("download"); }
  void copy(void*, const void*, size_t) const override { log_.push_back("copy"); }
  void fill_zero(void*, size_t) const override { log_.push_back("fill_zero"); }
#define NG_OP(R, name, Args)                   \
  R name(const Args<float>&) const override { \
    log_.push_back(#name);                     \
    return R();                                \
  }
  NG_BACKEND_OPS(NG_OP)
#undef NG_OP

 private:
  std::vector<std::string>& log_;
};

// A clock that charges every call `ms` milliseconds and logs start/stop/read.
class FakeClock final : public OpClock {
 public:
  FakeClock(std::vector<std::string>& log, double ms) : log_(log), ms_(ms) {}
  std::string name() const override { return "fake"; }
  void start() override { log_.push_back("start"); }
  void stop(int row) override {
    log_.push_back("stop " + std::to_string(row));
    stopped_.push_back(row);
  }
  void read(std::vector<double>& ms) override {
    for (int row : stopped_) ms[size_t(row)] += ms_;
    stopped_.clear();
  }

 private:
  std::vector<std::string>& log_;
  double ms_;
  std::vector<int> stopped_;
};

struct Timed {
  std::vector<std::string> inner_log, clock_log;
  TimedBackend<float> be{std::make_unique<RecordingBackend>(inner_log), std::make_unique<FakeClock>(clock_log, 2.0)};
  long calls(std::string_view op) const {
    for (const OpTime& t : be.totals())
      if (t.name == op) return t.calls;
    return -1;
  }
  double ms(std::string_view op) const {
    for (const OpTime& t : be.totals())
      if (t.name == op) return t.ms;
    return -1;
  }
};

TEST(TimedBackend, ForwardsEveryOpToItsNamesakeAndCountsIt) {
  Timed t;
  t.be.set_timing(true);
#define NG_OP(R, name, Args) t.be.name(Args<float>{});
  NG_BACKEND_OPS(NG_OP)
#undef NG_OP
  ASSERT_EQ(t.inner_log.size(), kOpCount);
  for (size_t i = 0; i < kOpCount; ++i) {
    EXPECT_EQ(t.inner_log[i], kOpNames[i]);
    EXPECT_EQ(t.calls(kOpNames[i]), 1) << kOpNames[i];
    EXPECT_EQ(t.clock_log[2 * i], "start");
    EXPECT_EQ(t.clock_log[2 * i + 1], "stop " + std::to_string(i));
  }
  EXPECT_EQ(t.be.name(), "recording");
  EXPECT_EQ(t.be.totals().size(), kTimedRows);
}

TEST(TimedBackend, CountsOnlyWhileOnAndTimesReachTotalsWhenRead) {
  Timed t;
  t.be.gelu_forward({});  // off: forwarded, not counted
  t.be.set_timing(true);
  for (int i = 0; i < 3; ++i) t.be.matmul_forward({});
  t.be.download(nullptr, nullptr, 0);
  t.be.allocate(16);  // not a stream operation: never timed
  EXPECT_EQ(t.calls("matmul_forward"), 3);
  EXPECT_EQ(t.ms("matmul_forward"), 0.0);  // not read yet
  t.be.read_clock();
  EXPECT_EQ(t.ms("matmul_forward"), 6.0);
  EXPECT_EQ(t.ms("download"), 2.0);
  t.be.set_timing(false);
  t.be.matmul_forward({});
  t.be.read_clock();
  EXPECT_EQ(t.calls("matmul_forward"), 3);
  EXPECT_EQ(t.ms("matmul_forward"), 6.0);
  EXPECT_EQ(t.calls("gelu_forward"), 0);
  EXPECT_EQ(t.inner_log.size(), 6u);  // every call reached the wrapped backend
}

TEST(TimedBackend, ResultsAreTheWrappedBackendsBitwise) {
  std::unique_ptr<Backend<float>> cpu = make_cpu_backend<float>();
  TimedBackend<float> timed(make_cpu_backend<float>(), std::make_unique<WallOpClock>());
  timed.set_timing(true);
  std::vector<float> x(1000), y1(1000), y2(1000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 37) * 0.11f - 2.0f;
  cpu->gelu_forward({y1.data(), x.data(), x.size()});
  timed.gelu_forward({y2.data(), x.data(), x.size()});
  EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)));
  EXPECT_EQ(cpu->sum_squares({x.data(), x.size()}), timed.sum_squares({x.data(), x.size()}));
  timed.read_clock();
  for (const OpTime& t : timed.totals()) {
    EXPECT_GE(t.ms, 0.0) << t.name;
    if (t.name == "gelu_forward" || t.name == "sum_squares") {
      EXPECT_EQ(t.calls, 1);
    }
  }
}

TEST(WallOpClock, ChargesEachRowItsOwnCalls) {
  WallOpClock c;
  std::vector<double> ms(3, 0.0);
  c.start();
  c.stop(2);
  c.start();
  c.stop(2);
  c.read(ms);
  EXPECT_EQ(ms[0], 0.0);
  EXPECT_GE(ms[2], 0.0);
  const double after = ms[2];
  c.read(ms);  // nothing new
  EXPECT_EQ(ms[2], after);
}

TEST(DeviceSelection, OneRuleForBackendAndCommunicator) {
  EXPECT_EQ(cuda::device_for_local_rank(0, 8), 0);
  EXPECT_EQ(cuda::device_for_local_rank(7, 8), 7);
  EXPECT_EQ(cuda::device_for_local_rank(9, 8), 1);  // more processes than GPUs: round-robin
  EXPECT_EQ(cuda::device_for_local_rank(3, 1), 0);
  EXPECT_EQ(cuda::device_for_local_rank(3, 0), 0);  // none counted: device 0 (its error comes from CUDA)
}

}  // namespace
