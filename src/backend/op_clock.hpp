// The clock behind the per-op timing (backend/timed_backend.hpp). A backend call is bracketed by
// start() and stop(row); read() hands over the times of the calls stopped since the last read.
// Reading is separate from stopping so that a device clock can record events as the calls are
// queued and wait for the device once per step, instead of once per op.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ng {

class OpClock {
 public:
  virtual ~OpClock() = default;
  virtual std::string name() const = 0;  // for the table's title, e.g. "wall clock"
  virtual void start() = 0;              // a call begins
  virtual void stop(int row) = 0;        // the call begun last ends; its time belongs to `row`
  // Adds the milliseconds of every call stopped since the last read to ms[row] (ms is as long as
  // the rows). May wait for the device.
  virtual void read(std::vector<double>& ms) = 0;
};

// Host wall time (std::chrono::steady_clock): exact for backends whose calls return when their
// work is done (the CPU backend, the guarded test backend).
class WallOpClock final : public OpClock {
 public:
  std::string name() const override { return "wall clock"; }
  void start() override { t0_ = clock::now(); }
  void stop(int row) override {
    done_.emplace_back(row, std::chrono::duration<double, std::milli>(clock::now() - t0_).count());
  }
  void read(std::vector<double>& ms) override {
    for (const auto& [row, t] : done_) ms[size_t(row)] += t;
    done_.clear();
  }

 private:
  using clock = std::chrono::steady_clock;
  clock::time_point t0_;
  std::vector<std::pair<int, double>> done_;
};

}  // namespace ng
