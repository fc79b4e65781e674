// CUDA optimizer ops against the CPU reference kernels (label cuda; skips without a device).
// adamw_update must give the CPU's bits (the contract in ops/optim.hpp), in float and double, with
// and without gradient scaling and decay; sum_squares must agree to double rounding and repeat
// bitwise. Odd sizes, and a poisoned guard region past n that neither op may read or write.
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "backend/cpu/kernels.hpp"
#include "backend/cuda/optim.hpp"
#include "cuda_test_util.hpp"

using namespace ng;
using namespace ng::test;

namespace {

// sum_squares: both sides accumulate in double, in different orders, so they agree to double
// rounding over n terms (~n * 1e-16 relative at worst, far less for random data), not bitwise.
constexpr double kSumSquaresRel = 1e-12;
constexpr size_t kGuard = 33;  // elements past n, poisoned

template <class T>
std::vector<T> random_vec(size_t n, uint64_t seed, double std) {
  Rng rng(seed);
  std::vector<T> v(n);
  for (auto& x : v) x = T(std * rng.normal());
  return v;
}

// n random values followed by kGuard poison elements (the 0x7f byte pattern of Dev: 3.4e38 in
// float, 1.4e306 in double, so a stray read shows in any sum and a stray write in any compare).
template <class T>
std::vector<T> with_guard(std::vector<T> v) {
  const size_t n = v.size();
  v.resize(n + kGuard);
  std::memset(static_cast<void*>(v.data() + n), 0x7f, kGuard * sizeof(T));
  return v;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T>
size_t count_differing(const std::vector<T>& a, const std::vector<T>& b) {
  size_t k = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) k += std::memcmp(&a[i], &b[i], sizeof(T)) != 0;
  return k;
}

// A device copy of a host vector of any element type (Dev is float-only).
template <class T>
class DevVec {
 public:
  explicit DevVec(const std::vector<T>& host) : a_(host.size()) {
    cuda::copy_to_device(a_.get(), host.data(), host.size() * sizeof(T));
  }
  T* get() const { return a_.get(); }
  std::vector<T> host() const {
    std::vector<T> v(a_.size());
    cuda::synchronize();
    cuda::copy_to_host(v.data(), a_.get(), v.size() * sizeof(T));
    return v;
  }

 private:
  cuda::DeviceArray<T> a_;
};

// The contract's arithmetic with every product and sum rounded on its own: each result passes
// through a volatile, so the compiler cannot fuse a multiply into the following add (GCC fuses by
// default with -march=native on an FMA machine, even in ISO C++ mode). This is what the CUDA
// kernel computes, whatever flags the CPU reference was built with; when the CPU reference
// differs from it, the CPU build is contracting and the diagnostic below says so.
template <class T> T r_mul(T x, T y) { volatile T r = x * y; return r; }
template <class T> T r_add(T x, T y) { volatile T r = x + y; return r; }
template <class T> T r_sub(T x, T y) { volatile T r = x - y; return r; }
template <class T> T r_div(T x, T y) { volatile T r = x / y; return r; }

template <class T>
void uncontracted_adamw(const AdamWArgs<T>& a) {
  const T one_b1 = r_sub(T(1), a.beta1), one_b2 = r_sub(T(1), a.beta2);
  for (size_t i = 0; i < a.n; ++i) {
    const T g = a.grad_scale == T(1) ? a.grads[i] : r_mul(a.grads[i], a.grad_scale);
    a.m[i] = r_add(r_mul(a.beta1, a.m[i]), r_mul(one_b1, g));
    a.v[i] = r_add(r_mul(a.beta2, a.v[i]), r_mul(r_mul(one_b2, g), g));
    const T mhat = r_div(a.m[i], a.bc1), vhat = r_div(a.v[i], a.bc2);
    a.params[i] = r_sub(a.params[i], r_mul(a.decay, a.params[i]));
    a.params[i] = r_sub(a.params[i], r_div(r_mul(a.lr, mhat), r_add(T(std::sqrt(vhat)), a.eps)));
  }
}

struct AdamWCase {
  size_t n;
  double grad_scale, decay;
};

// One update on random state: GPU vs the CPU kernel (bitwise) and vs the uncontracted reference
// (bitwise), grads unchanged, the guard region untouched.
template <class T>
void check_adamw(const AdamWCase& c, const std::string& what) {
  const size_t n = c.n;
  const auto p0 = with_guard(random_vec<T>(n, 101 + n, 0.1));
  const auto g0 = with_guard(random_vec<T>(n, 102 + n, 0.01));
  const auto m0 = with_guard(random_vec<T>(n, 103 + n, 0.005));
  auto v0 = random_vec<T>(n, 104 + n, 1e-2);
  for (auto& x : v0) x = x * x;  // v >= 0
  v0 = with_guard(std::move(v0));

  // Step t = 3 of lr 3e-4, betas (0.9, 0.95), as train/adamw.cpp builds the arguments.
  AdamWArgs<T> a{};
  a.n = n;
  a.lr = T(3e-4);
  a.beta1 = T(0.9);
  a.beta2 = T(0.95);
  a.bc1 = T(1.0 - std::pow(0.9, 3.0));
  a.bc2 = T(1.0 - std::pow(0.95, 3.0));
  a.eps = T(1e-8);
  a.decay = T(c.decay);
  a.grad_scale = T(c.grad_scale);

  auto p_cpu = p0, m_cpu = m0, v_cpu = v0;
  AdamWArgs<T> ac = a;
  ac.params = p_cpu.data(), ac.grads = g0.data(), ac.m = m_cpu.data(), ac.v = v_cpu.data();
  cpu::adamw_update<T>(ac);

  auto p_ref = p0, m_ref = m0, v_ref = v0;
  AdamWArgs<T> ar = a;
  ar.params = p_ref.data(), ar.grads = g0.data(), ar.m = m_ref.data(), ar.v = v_ref.data();
  uncontracted_adamw<T>(ar);

  DevVec<T> d_p(p0), d_g(g0), d_m(m0), d_v(v0);
  AdamWArgs<T> ad = a;
  ad.params = d_p.get(), ad.grads = d_g.get(), ad.m = d_m.get(), ad.v = d_v.get();
  cuda::adamw_update<T>(ad);
  const auto p_gpu = d_p.host(), m_gpu = d_m.host(), v_gpu = d_v.host();

  // The reference first: a mismatch there is the kernel's fault, whatever the CPU build does.
  EXPECT_TRUE(same_bits(p_gpu, p_ref)) << what << ": params differ from the uncontracted reference in "
                                       << count_differing(p_gpu, p_ref) << " elements";
  EXPECT_TRUE(same_bits(m_gpu, m_ref)) << what << ": m differs from the uncontracted reference";
  EXPECT_TRUE(same_bits(v_gpu, v_ref)) << what << ": v differs from the uncontracted reference";

  const size_t cpu_contracted = count_differing(p_cpu, p_ref) + count_differing(m_cpu, m_ref) +
                                count_differing(v_cpu, v_ref);
  const std::string why = cpu_contracted == 0 ? std::string()
                              : " (the CPU reference itself differs from the uncontracted reference in " +
                                    std::to_string(cpu_contracted) +
                                    " values: its build fuses multiply-adds; compile backend/cpu/optim.cpp "
                                    "with -ffp-contract=off)";
  EXPECT_TRUE(same_bits(p_gpu, p_cpu)) << what << ": params differ from the CPU in "
                                       << count_differing(p_gpu, p_cpu) << " elements" << why;
  EXPECT_TRUE(same_bits(m_gpu, m_cpu)) << what << ": m differs from the CPU in " << count_differing(m_gpu, m_cpu)
                                       << " elements" << why;
  EXPECT_TRUE(same_bits(v_gpu, v_cpu)) << what << ": v differs from the CPU in " << count_differing(v_gpu, v_cpu)
                                       << " elements" << why;
  // The guard past n (poison in all four buffers) and the whole gradient are as uploaded.
  EXPECT_TRUE(same_bits(d_g.host(), g0)) << what << ": grads changed";
  const auto guard = [](const std::vector<T>& v) { return std::vector<T>(v.end() - kGuard, v.end()); };
  EXPECT_TRUE(same_bits(guard(p_gpu), guard(p0))) << what << ": params written past n";
  EXPECT_TRUE(same_bits(guard(m_gpu), guard(m0))) << what << ": m written past n";
  EXPECT_TRUE(same_bits(guard(v_gpu), guard(v0))) << what << ": v written past n";
}

template <class T>
void check_adamw_all(const char* type) {
  for (size_t n : {size_t(1), size_t(7), size_t(1000), size_t(100003)})
    for (double grad_scale : {1.0, 0.37})
      for (double decay : {0.0, 3e-4 * 0.1})
        check_adamw<T>({n, grad_scale, decay}, std::string(type) + " n " + std::to_string(n) + " grad_scale " +
                                                   std::to_string(grad_scale) + " decay " + std::to_string(decay));
}

template <class T>
void check_sum_squares(size_t n, const std::string& what) {
  const auto x = with_guard(random_vec<T>(n, 201 + n, 1.0));
  const double want = cpu::sum_squares<T>({x.data(), n});
  DevVec<T> d_x(x);
  const double got = cuda::sum_squares<T>({d_x.get(), n});
  EXPECT_LE(std::abs(got - want), kSumSquaresRel * want) << what << ": gpu " << got << " cpu " << want;
  const double again = cuda::sum_squares<T>({d_x.get(), n});
  EXPECT_EQ(std::memcmp(&got, &again, sizeof(double)), 0) << what << ": two runs differ (" << got << ", " << again << ")";
}

template <class T>
void check_sum_squares_all(const char* type) {
  EXPECT_EQ(cuda::sum_squares<T>({nullptr, 0}), 0.0) << type << ": n = 0";
  // 1000003 > 1024 blocks * 256 threads: every thread takes several strided elements.
  for (size_t n : {size_t(1), size_t(7), size_t(1000), size_t(100003), size_t(1000003)})
    check_sum_squares<T>(n, std::string(type) + " n " + std::to_string(n));
}

}  // namespace

TEST(CudaOptim, AdamWFloatMatchesCpuBitwise) {
  NG_SKIP_WITHOUT_GPU();
  check_adamw_all<float>("float");
}

TEST(CudaOptim, AdamWDoubleMatchesCpuBitwise) {
  NG_SKIP_WITHOUT_GPU();
  check_adamw_all<double>("double");
}

TEST(CudaOptim, SumSquaresMatchesCpuAndIsDeterministic) {
  NG_SKIP_WITHOUT_GPU();
  check_sum_squares_all<float>("float");
  check_sum_squares_all<double>("double");
}
