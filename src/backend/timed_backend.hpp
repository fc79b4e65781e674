// A backend decorator that times every op (backend/op_list.hpp) and the memory calls a step makes
// (upload, download, copy, fill_zero) through an OpClock, and counts them. The results are the
// wrapped backend's: the decorator only brackets each call. Allocation and release are not timed:
// they are not work on the device's stream.
//
// Only calls made while timing is on are counted (the trainer switches it on for training steps,
// off for eval, layer statistics and checkpoints), and times reach the totals only when
// read_clock() is called (once per step: on a GPU that waits for the step's last op).
#pragma once

#include <array>
#include <memory>
#include <string_view>
#include <type_traits>
#include <vector>

#include "backend/backend.hpp"
#include "backend/op_clock.hpp"
#include "core/errors.hpp"

namespace ng {

// The rows of the timing table: the ops in list order, then these memory calls.
inline constexpr std::array<std::string_view, 4> kTimedMemoryCalls = {"upload", "download", "copy", "fill_zero"};
inline constexpr size_t kTimedRows = kOpCount + kTimedMemoryCalls.size();
inline constexpr size_t kUploadRow = kOpCount, kDownloadRow = kOpCount + 1, kCopyRow = kOpCount + 2,
                        kFillZeroRow = kOpCount + 3;

struct OpTime {
  std::string_view name;
  long calls = 0;
  double ms = 0;
};

template <class T>
class TimedBackend final : public Backend<T> {
 public:
  TimedBackend(std::unique_ptr<Backend<T>> inner, std::unique_ptr<OpClock> clock)
      : inner_(std::move(inner)), clock_(std::move(clock)) {
    NG_CHECK(inner_ && clock_, "TimedBackend needs a backend and a clock");
  }

  void set_timing(bool on) { on_ = on; }
  // Adds the times of the calls made since the last read to the totals (may wait for the device).
  void read_clock() { clock_->read(ms_); }
  // One row per op and memory call (kTimedRows), zero rows included, in list order.
  std::vector<OpTime> totals() const {
    std::vector<OpTime> rows(kTimedRows);
    for (size_t i = 0; i < kTimedRows; ++i)
      rows[i] = {i < kOpCount ? kOpNames[i] : kTimedMemoryCalls[i - kOpCount], calls_[i], ms_[i]};
    return rows;
  }
  std::string clock_name() const { return clock_->name(); }

  std::string name() const override { return inner_->name(); }
  bool host_accessible() const override { return inner_->host_accessible(); }
  void* allocate(size_t bytes) const override { return inner_->allocate(bytes); }
  void release(void* p) const override { inner_->release(p); }
  void upload(void* dst, const void* src, size_t bytes) const override {
    timed(kUploadRow, [&] { inner_->upload(dst, src, bytes); });
  }
  void download(void* dst, const void* src, size_t bytes) const override {
    timed(kDownloadRow, [&] { inner_->download(dst, src, bytes); });
  }
  void copy(void* dst, const void* src, size_t bytes) const override {
    timed(kCopyRow, [&] { inner_->copy(dst, src, bytes); });
  }
  void fill_zero(void* dst, size_t bytes) const override {
    timed(kFillZeroRow, [&] { inner_->fill_zero(dst, bytes); });
  }
  size_t attention_state_size(int B, int T_len, int C, int NH) const override {
    return inner_->attention_state_size(B, T_len, C, NH);
  }
  size_t attention_scratch_size(int B, int T_len, int C, int NH) const override {
    return inner_->attention_scratch_size(B, T_len, C, NH);
  }

  // Every op of backend/op_list.hpp: the wrapped backend's, bracketed by the clock.
#define NG_OP(R, name, Args) \
  R name(const Args<T>& a) const override { return timed(size_t(OpId::name), [&] { return inner_->name(a); }); }
  NG_BACKEND_OPS(NG_OP)
#undef NG_OP

 private:
  // Runs one call, bracketed by the clock when timing is on. A call that throws is not stopped:
  // the run is failing then, and its timing is not reported.
  template <class F>
  auto timed(size_t row, F&& call) const {
    if (!on_) return call();
    ++calls_[row];
    clock_->start();
    if constexpr (std::is_void_v<decltype(call())>) {
      call();
      clock_->stop(int(row));
    } else {
      auto result = call();
      clock_->stop(int(row));
      return result;
    }
  }

  std::unique_ptr<Backend<T>> inner_;
  std::unique_ptr<OpClock> clock_;
  bool on_ = false;
  mutable std::vector<long> calls_ = std::vector<long>(kTimedRows, 0);
  std::vector<double> ms_ = std::vector<double>(kTimedRows, 0.0);
};

}  // namespace ng
