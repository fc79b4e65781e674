// CUDA DyT norm (ops/norm.hpp: out = scale * (g * tanh(alpha x) + b), alpha a learned scalar)
// against the CPU kernel run in double (label cuda; skip without a device). Odd shapes, scale 1 and
// 0.7, with and without a bias, dx overwritten (poisoned before the run) and accumulated, the
// gain/bias/alpha gradients accumulated onto nonzero values, mean/rstd written as 0/1, and two runs
// bitwise equal. A null weight is gain 1 and a null mean/rstd is not written (the CPU needs both:
// its reference gets ones and scratch).
#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "backend/cpu/kernels.hpp"
#include "backend/cuda/norm.hpp"
#include "core/errors.hpp"
#include "cuda_test_util.hpp"

using namespace ng;
using namespace ng::test;

namespace {

constexpr float kAlpha = 0.55f;

struct DytOut {
  std::vector<float> out, mean, rstd, dinp, dweight, dbias, dalpha;
};

// One case's inputs (float, as uploaded) and the CPU reference in double.
struct DytCase {
  int N, C;
  float scale;
  bool with_bias, accumulate, with_weight;
  std::vector<float> x, w, b, dout, dinp0, dw0, db0, alpha, da0;

  DytCase(int n, int c, float s, bool bias, bool acc, bool weight)
      : N(n), C(c), scale(s), with_bias(bias), accumulate(acc), with_weight(weight) {
    x = random_floats(size_t(N) * C, 91, 1.5);
    for (auto& v : x) v += 0.3f;
    w = random_floats(C, 92);
    for (auto& v : w) v += 1.0f;
    b = random_floats(C, 93);
    dout = random_floats(size_t(N) * C, 94);
    dinp0 = random_floats(size_t(N) * C, 95);
    dw0 = random_floats(C, 96);
    db0 = random_floats(C, 97);
    alpha = {kAlpha};
    da0 = random_floats(1, 98);
  }

  // The CPU kernels in double on the same inputs; an absent weight/bias becomes ones/zeros.
  DytOut cpu() const {
    auto d = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
    const std::vector<double> xd = d(x), dyd = d(dout), ad = d(alpha);
    const std::vector<double> wd = with_weight ? d(w) : std::vector<double>(C, 1.0);
    const std::vector<double> bd = with_bias ? d(b) : std::vector<double>(C, 0.0);
    std::vector<double> out(x.size()), mean(N), rstd(N), dinp = d(dinp0), dw = d(dw0), db = d(db0), da = d(da0);
    cpu::norm_forward<double>({.out = out.data(), .mean = mean.data(), .rstd = rstd.data(), .inp = xd.data(),
                               .weight = wd.data(), .bias = bd.data(), .N = N, .C = C, .eps = 1e-5f,
                               .fn = NormFunction::DyT, .scale = double(scale), .alpha = ad.data()});
    cpu::norm_backward<double>({.dinp = dinp.data(), .dweight = dw.data(), .dbias = db.data(), .dout = dyd.data(),
                                .inp = xd.data(), .weight = wd.data(), .mean = mean.data(), .rstd = rstd.data(),
                                .N = N, .C = C, .fn = NormFunction::DyT, .scale = double(scale),
                                .accumulate = accumulate, .alpha = ad.data(), .dalpha = da.data()});
    return {to_float(out), to_float(mean), to_float(rstd), to_float(dinp), to_float(dw), to_float(db), to_float(da)};
  }

  // Scale of dalpha's rounding error: the l2 norm of its N*C terms u g x (1 - th^2) (the sum itself
  // may cancel well below it), at least 1.
  double dalpha_scale() const {
    double ss = 0;
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c) {
        const size_t i = size_t(n) * C + c;
        const double th = std::tanh(double(kAlpha) * x[i]);
        const double t = double(dout[i]) * scale * (with_weight ? w[c] : 1.0) * x[i] * (1 - th * th);
        ss += t * t;
      }
    return std::max(1.0, std::sqrt(ss));
  }

  // Forward and backward on the device: out and (overwrite) dinp poisoned, null weight/bias/mean/rstd
  // where the case says so. The dweight/dbias buffers are always allocated, so "not touched" is checked.
  DytOut gpu(bool with_stats = true) const {
    Dev d_x(x), d_w(w), d_b(b), d_dout(dout), d_alpha(alpha), d_dw(dw0), d_db(db0), d_da(da0);
    Dev d_out{x.size()}, d_mean{size_t(N)}, d_rstd{size_t(N)};  // poisoned
    Dev d_dinp = accumulate ? Dev(dinp0) : Dev(x.size());        // poisoned when overwritten
    cuda::norm_forward<float>({.out = d_out.get(), .mean = with_stats ? d_mean.get() : nullptr,
                               .rstd = with_stats ? d_rstd.get() : nullptr, .inp = d_x.get(),
                               .weight = with_weight ? d_w.get() : nullptr, .bias = with_bias ? d_b.get() : nullptr,
                               .N = N, .C = C, .eps = 1e-5f, .fn = NormFunction::DyT, .scale = scale,
                               .alpha = d_alpha.get()});
    cuda::norm_backward<float>({.dinp = d_dinp.get(), .dweight = with_weight ? d_dw.get() : nullptr,
                                .dbias = with_bias ? d_db.get() : nullptr, .dout = d_dout.get(), .inp = d_x.get(),
                                .weight = with_weight ? d_w.get() : nullptr, .mean = nullptr, .rstd = nullptr,
                                .N = N, .C = C, .fn = NormFunction::DyT, .scale = scale,
                                .accumulate = accumulate, .alpha = d_alpha.get(), .dalpha = d_da.get()});
    return {d_out.host(), d_mean.host(), d_rstd.host(), d_dinp.host(), d_dw.host(), d_db.host(), d_da.host()};
  }
};

void expect_bitwise(const DytOut& a, const DytOut& b) {
  EXPECT_TRUE(bitwise_equal(a.out, b.out)) << "out differs between two runs";
  EXPECT_TRUE(bitwise_equal(a.dinp, b.dinp)) << "dinp differs between two runs";
  EXPECT_TRUE(bitwise_equal(a.dweight, b.dweight)) << "dweight differs between two runs";
  EXPECT_TRUE(bitwise_equal(a.dbias, b.dbias)) << "dbias differs between two runs";
  EXPECT_TRUE(bitwise_equal(a.dalpha, b.dalpha)) << "dalpha differs between two runs";
}

}  // namespace

// (N, C, scale, with_bias, accumulate).
class CudaDyt : public ::testing::TestWithParam<std::tuple<int, int, float, bool, bool>> {};

// e.g. N37_C24_s07_bias_acc
std::string dyt_name(const ::testing::TestParamInfo<CudaDyt::ParamType>& info) {
  const auto& [N, C, scale, bias, acc] = info.param;
  return "N" + std::to_string(N) + "_C" + std::to_string(C) + (scale == 1.0f ? "_s1" : "_s07") +
         (bias ? "_bias" : "_nobias") + (acc ? "_acc" : "_over");
}

TEST_P(CudaDyt, MatchesCpu) {
  NG_SKIP_WITHOUT_GPU();
  const auto [N, C, scale, with_bias, accumulate] = GetParam();
  const DytCase k(N, C, scale, with_bias, accumulate, /*weight=*/true);
  const DytOut want = k.cpu(), got = k.gpu(), again = k.gpu();
  EXPECT_LT(max_rel_error(got.out, want.out), kCudaFp32Rel);
  for (int n = 0; n < N; ++n) {
    ASSERT_EQ(got.mean[n], 0.0f) << "row " << n;
    ASSERT_EQ(got.rstd[n], 1.0f) << "row " << n;
  }
  EXPECT_LT(max_rel_error(got.dinp, want.dinp), kCudaFp32Rel);
  EXPECT_LT(max_rel_error(got.dweight, want.dweight), kCudaFp32Rel);
  if (with_bias) EXPECT_LT(max_rel_error(got.dbias, want.dbias), kCudaFp32Rel);
  else EXPECT_EQ(got.dbias, k.db0);  // null dbias: never touched
  ASSERT_EQ(got.dalpha.size(), 1u);
  EXPECT_LT(std::abs(double(got.dalpha[0]) - double(want.dalpha[0])) / k.dalpha_scale(), kCudaFp32Rel)
      << "dalpha " << got.dalpha[0] << " want " << want.dalpha[0];
  expect_bitwise(got, again);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaDyt,
                         ::testing::Combine(::testing::Values(1, 37, 300), ::testing::Values(5, 24, 96),
                                            ::testing::Values(1.0f, 0.7f), ::testing::Bool(), ::testing::Bool()),
                         dyt_name);

// A null weight is gain 1 with no gain gradient; null mean/rstd are simply not written.
TEST(CudaDytNull, GainlessAndStatless) {
  NG_SKIP_WITHOUT_GPU();
  for (int N : {1, 37, 300})
    for (bool accumulate : {false, true}) {
      const DytCase k(N, 96, 0.7f, /*bias=*/true, accumulate, /*weight=*/false);
      const DytOut want = k.cpu(), got = k.gpu(/*with_stats=*/false), again = k.gpu(false);
      EXPECT_LT(max_rel_error(got.out, want.out), kCudaFp32Rel) << "N " << N;
      EXPECT_LT(max_rel_error(got.dinp, want.dinp), kCudaFp32Rel) << "N " << N;
      EXPECT_EQ(got.dweight, k.dw0) << "N " << N;  // null weight: dweight untouched
      EXPECT_LT(max_rel_error(got.dbias, want.dbias), kCudaFp32Rel) << "N " << N;
      EXPECT_LT(std::abs(double(got.dalpha[0]) - double(want.dalpha[0])) / k.dalpha_scale(), kCudaFp32Rel)
          << "N " << N;
      for (float m : got.mean) ASSERT_TRUE(std::isnan(m) || std::abs(m) > 1e38f) << "mean written though null";
      expect_bitwise(got, again);
    }
}

// DyT without its alpha is a caller bug: refused before anything is queued.
TEST(CudaDytNull, RefusesMissingAlpha) {
  NG_SKIP_WITHOUT_GPU();
  NormForwardArgs<float> f{.out = nullptr, .mean = nullptr, .rstd = nullptr, .inp = nullptr, .weight = nullptr,
                           .bias = nullptr, .N = 2, .C = 8, .eps = 1e-5f, .fn = NormFunction::DyT};
  EXPECT_THROW(cuda::norm_forward<float>(f), InternalError);
  NormBackwardArgs<float> b{.dinp = nullptr, .dweight = nullptr, .dbias = nullptr, .dout = nullptr, .inp = nullptr,
                            .weight = nullptr, .mean = nullptr, .rstd = nullptr, .N = 2, .C = 8,
                            .fn = NormFunction::DyT};
  EXPECT_THROW(cuda::norm_backward<float>(b), InternalError);
}
