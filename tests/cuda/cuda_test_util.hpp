// Helpers for the CUDA-vs-CPU op tests (label cuda): upload, run, download, compare against the
// CPU reference kernel with the fp32 tolerance row, outputs poisoned before the run so an element
// a kernel forgets to write is caught.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cuda/runtime.hpp"
#include "core/rng.hpp"

namespace ng::test {

// Relative tolerance of fp32 CUDA kernels against the fp32 CPU reference (one row, DESIGN.md).
constexpr double kCudaFp32Rel = 2e-5;

#define NG_SKIP_WITHOUT_GPU() \
  if (::ng::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine (GPU tests run on the lent H100)"

inline std::vector<float> random_floats(size_t n, uint64_t seed, double std = 1.0) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(std * rng.normal());
  return v;
}

// A device copy of a host vector.
class Dev {
 public:
  explicit Dev(const std::vector<float>& host) : a_(host.size()) { cuda::copy_to_device(a_.get(), host.data(), bytes()); }
  explicit Dev(size_t n, bool poison = true) : a_(n) {
    if (poison) cuda::fill_bytes(a_.get(), 0x7f, bytes());  // 0x7f7f7f7f = 3.4e38: any unwritten element stands out
  }
  float* get() const { return a_.get(); }
  std::vector<float> host() const {
    std::vector<float> v(a_.size());
    cuda::synchronize();
    cuda::copy_to_host(v.data(), a_.get(), bytes());
    return v;
  }
  size_t bytes() const { return a_.size() * sizeof(float); }

 private:
  cuda::DeviceArray<float> a_;
};

inline bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

inline std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }
inline std::vector<float> to_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }

// max |got - want| relative to max(1, max |want|).
inline double max_rel_error(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double diff = 0, scale = 1;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    diff = std::max(diff, std::abs(double(got[i]) - double(want[i])));
    scale = std::max(scale, std::abs(double(want[i])));
  }
  return diff / scale;
}

}  // namespace ng::test
