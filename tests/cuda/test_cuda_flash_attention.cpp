// The fused flash attention (backend/cuda/flash_attention.hpp) against the CPU reference run in
// double (label cuda; skips without a device). Odd shapes: T not a multiple of the 32-row tile,
// head sizes 8, 12, 64 (and 128 for double). Outputs and workspace are poisoned so an element the
// kernels forget shows; lse is checked against the CPU's probabilities; backward runs twice into
// fresh poison and must be bitwise equal (no atomics).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>
#include <tuple>
#include <vector>

#include "backend/cpu/kernels.hpp"
#include "backend/cuda/flash_attention.hpp"
#include "core/errors.hpp"
#include "cuda_test_util.hpp"

using namespace ng;
using namespace ng::test;

namespace {

struct FlashShape {
  int B, T, C, NH;
};

// Readable test names in CTest (gtest prints a parameter through PrintTo).
void PrintTo(const FlashShape& s, std::ostream* os) { *os << "B" << s.B << " T" << s.T << " C" << s.C << " NH" << s.NH; }

// The reference in double: out, dqkv and lse from the CPU's probabilities. A probability gives the
// log-sum-exp as lse[t] = scale q[t].k[s] - log att[t,s]; the row's largest one is used, which
// never underflows (it is at least 1/(t+1)).
struct Reference {
  std::vector<double> out, dqkv, lse;
};

Reference cpu_reference(const FlashShape& s, double scale, const std::vector<float>& qkv_f,
                        const std::vector<float>& dout_f) {
  const int B = s.B, T = s.T, C = s.C, NH = s.NH, hs = C / NH, C3 = 3 * C;
  const size_t n_att = size_t(B) * NH * T * T;
  const auto qkv = to_double(qkv_f), dout = to_double(dout_f);
  Reference r{std::vector<double>(size_t(B) * T * C), std::vector<double>(qkv.size()),
              std::vector<double>(size_t(B) * NH * T)};
  std::vector<double> att(n_att), scratch(n_att);
  cpu::attention_forward<double>({r.out.data(), att.data(), qkv.data(), B, T, C, NH, scale});
  cpu::attention_backward<double>({r.dqkv.data(), scratch.data(), dout.data(), qkv.data(), att.data(), B, T, C, NH,
                                   scale});
  const double sc = scale != 0 ? scale : 1 / std::sqrt(double(hs));
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t) {
        const size_t row = (size_t(b) * NH + h) * T + t;
        const double* a = &att[row * T];
        const int sm = int(std::max_element(a, a + t + 1) - a);
        double dot = 0;
        for (int i = 0; i < hs; ++i)
          dot += qkv[(size_t(b) * T + t) * C3 + h * hs + i] * qkv[(size_t(b) * T + sm) * C3 + C + h * hs + i];
        r.lse[row] = dot * sc - std::log(a[sm]);
      }
  return r;
}

// A device copy of a double vector (Dev in cuda_test_util.hpp is float only).
class DevD {
 public:
  explicit DevD(const std::vector<double>& h) : a_(h.size()) { cuda::copy_to_device(a_.get(), h.data(), bytes()); }
  explicit DevD(size_t n) : a_(n) { cuda::fill_bytes(a_.get(), 0x7f, bytes()); }
  double* get() const { return a_.get(); }
  std::vector<double> host() const {
    std::vector<double> v(a_.size());
    cuda::synchronize();
    cuda::copy_to_host(v.data(), a_.get(), bytes());
    return v;
  }
  size_t bytes() const { return a_.size() * sizeof(double); }

 private:
  cuda::DeviceArray<double> a_;
};

double max_rel_error_d(const std::vector<double>& got, const std::vector<double>& want) {
  EXPECT_EQ(got.size(), want.size());
  double diff = 0, scale = 1;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    diff = std::max(diff, std::abs(got[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return diff / scale;
}

}  // namespace

// (shape, sharp): sharp runs nGPT's scale = sqrt(hs) instead of the default 1/sqrt(hs).
class CudaFlashAttention : public ::testing::TestWithParam<std::tuple<FlashShape, bool>> {};

TEST_P(CudaFlashAttention, ForwardBackwardMatchCpu) {
  NG_SKIP_WITHOUT_GPU();
  const auto [shape, sharp] = GetParam();
  const auto [B, T, C, NH] = shape;
  const int hs = C / NH;
  const double scale = sharp ? std::sqrt(double(hs)) : 0;
  // Against the double reference. The fp32 error grows with the size of the scores: with
  // scale = sqrt(hs) and unit-normal q, k they reach a few times hs, and their rounding (relative
  // 6e-8) moves the exponentials by ~1e-5 of the largest gradient (measured on a CPU emulation of
  // these kernels: 1.2e-5 at hs = 64 and 128, under 1e-6 with the default scale).
  const double tol = sharp ? 5 * kCudaFp32Rel : kCudaFp32Rel;
  const size_t n_qkv = size_t(B) * T * 3 * C, n_out = size_t(B) * T * C, n_row = size_t(B) * NH * T;
  const auto qkv = random_floats(n_qkv, 21), dout = random_floats(n_out, 22);
  const Reference want = cpu_reference(shape, scale, qkv, dout);

  Dev d_qkv(qkv), d_dout(dout), d_out(n_out), d_lse(n_row);
  cuda::flash_attention_forward<float>({d_out.get(), d_lse.get(), d_qkv.get(), B, T, C, NH, scale});
  EXPECT_LT(max_rel_error(d_out.host(), to_float(want.out)), tol);
  EXPECT_LT(max_rel_error(d_lse.host(), to_float(want.lse)), tol);

  std::vector<float> first;
  for (int run = 0; run < 2; ++run) {
    Dev d_dqkv(n_qkv), d_delta(n_row);  // poisoned: dqkv is overwritten, delta is workspace
    cuda::flash_attention_backward<float>(
        {d_dqkv.get(), d_delta.get(), d_dout.get(), d_out.get(), d_lse.get(), d_qkv.get(), B, T, C, NH, scale});
    const auto got = d_dqkv.host();
    EXPECT_LT(max_rel_error(got, to_float(want.dqkv)), tol) << "run " << run;
    if (run == 0) first = got;
    else EXPECT_TRUE(bitwise_equal(got, first)) << "flash attention backward is not deterministic";
  }
}

// T=1 (one partial tile); T=37, 65 (a full tile plus a partial one, rows past T in the last);
// T=130 (five tiles); hs 8, 8, 12, 64.
INSTANTIATE_TEST_SUITE_P(Shapes, CudaFlashAttention,
                         ::testing::Combine(::testing::Values(FlashShape{1, 1, 8, 1}, FlashShape{2, 37, 24, 3},
                                                              FlashShape{1, 130, 96, 8}, FlashShape{2, 65, 128, 2}),
                                            ::testing::Bool()));

// The double instantiation computes in double throughout: it must agree with the CPU to rounding.
// hs = 128, the largest head (and the largest shared-memory request, past the 48 KiB default).
TEST(CudaFlashAttentionDouble, MatchesCpuToRounding) {
  NG_SKIP_WITHOUT_GPU();
  const FlashShape shape{1, 70, 256, 2};
  const auto [B, T, C, NH] = shape;
  const double scale = std::sqrt(128.0);
  const size_t n_qkv = size_t(B) * T * 3 * C, n_out = size_t(B) * T * C, n_row = size_t(B) * NH * T;
  const auto qkv_f = random_floats(n_qkv, 31), dout_f = random_floats(n_out, 32);
  const Reference want = cpu_reference(shape, scale, qkv_f, dout_f);

  DevD d_qkv(to_double(qkv_f)), d_dout(to_double(dout_f)), d_out(n_out), d_lse(n_row), d_dqkv(n_qkv), d_delta(n_row);
  cuda::flash_attention_forward<double>({d_out.get(), d_lse.get(), d_qkv.get(), B, T, C, NH, scale});
  cuda::flash_attention_backward<double>(
      {d_dqkv.get(), d_delta.get(), d_dout.get(), d_out.get(), d_lse.get(), d_qkv.get(), B, T, C, NH, scale});
  EXPECT_LT(max_rel_error_d(d_out.host(), want.out), 1e-12);
  EXPECT_LT(max_rel_error_d(d_lse.host(), want.lse), 1e-12);
  EXPECT_LT(max_rel_error_d(d_dqkv.host(), want.dqkv), 1e-12);
}

// Shapes the kernels cannot take are refused before anything is launched, so this runs without a
// device too.
TEST(CudaFlashAttentionShapes, RefusesWhatItCannotDo) {
  cuda::FlashAttentionForwardArgs<float> f{nullptr, nullptr, nullptr, 1, 4, 256, 1};  // hs 256 > 128
  EXPECT_THROW(cuda::flash_attention_forward<float>(f), InternalError);
  f.NH = 3;  // 3 does not divide 256
  EXPECT_THROW(cuda::flash_attention_forward<float>(f), InternalError);
  cuda::FlashAttentionBackwardArgs<float> b{nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 2, 5, 260, 2};  // hs 130
  EXPECT_THROW(cuda::flash_attention_backward<float>(b), InternalError);
}
