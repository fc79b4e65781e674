// Wave-2 CUDA kernels against the CPU reference kernels (label cuda; skip without a device): rope,
// swiglu, scale_columns, copy2d, lerp, grouped / l2 / gain-less norms, attention with an explicit
// score scale. Odd shapes, outputs poisoned before the run, accumulate and in-place paths, and
// every op with a column sum (ds, dalpha, dweight, dbias) run twice for bitwise determinism. Those
// column sums are checked against the CPU's double instantiation, as geodesic's da/db are: an fp32
// running sum over hundreds of rows drifts by more than the fp32 tolerance row allows.
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "backend/cpu/kernels.hpp"
#include "backend/cuda/attention.hpp"
#include "backend/cuda/lerp.hpp"
#include "backend/cuda/norm.hpp"
#include "backend/cuda/pointwise.hpp"
#include "backend/cuda/rope.hpp"
#include "core/errors.hpp"
#include "cuda_test_util.hpp"

using namespace ng;
using namespace ng::test;

namespace {

// max |got - want| / max |want|: no floor at 1, for outputs well below 1 (l2 norms, rstd).
double rel_to_max(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    diff = std::max(diff, std::abs(double(got[i]) - double(want[i])));
    scale = std::max(scale, std::abs(double(want[i])));
  }
  return diff / scale;
}

}  // namespace

// ---- rope ------------------------------------------------------------------------------------

struct RopeShape {
  int B, T, C, NH;
};

class CudaRope : public ::testing::TestWithParam<RopeShape> {};

TEST_P(CudaRope, MatchesCpuInPlaceAndRoundTrips) {
  NG_SKIP_WITHOUT_GPU();
  const auto [B, T, C, NH] = GetParam();
  const size_t n = size_t(B) * T * C;
  const auto x = random_floats(n, 21);
  for (double theta : {10000.0, 500000.0})
    for (bool inverse : {false, true}) {
      std::vector<float> want(n);
      cpu::rope<float>({want.data(), x.data(), B, T, C, NH, theta, inverse});
      Dev d_x(x), d_out(n);
      cuda::rope<float>({d_out.get(), d_x.get(), B, T, C, NH, theta, inverse});
      EXPECT_LT(max_rel_error(d_out.host(), want), kCudaFp32Rel) << "theta " << theta << " inverse " << inverse;
      Dev d_buf(x);  // out aliasing inp
      cuda::rope<float>({d_buf.get(), d_buf.get(), B, T, C, NH, theta, inverse});
      EXPECT_TRUE(bitwise_equal(d_buf.host(), d_out.host())) << "in place differs from out of place";
    }
  // The inverse undoes the forward (R orthogonal): the backward of the forward is the identity.
  Dev d_buf(x);
  cuda::rope<float>({d_buf.get(), d_buf.get(), B, T, C, NH});
  cuda::rope<float>({d_buf.get(), d_buf.get(), B, T, C, NH, 10000.0, true});
  EXPECT_LT(max_rel_error(d_buf.host(), x), kCudaFp32Rel);
}

// hs = 4, 8, 80 (h2 = 40 pairs), T = 130 (angles up to 129 rad), and a single position.
INSTANTIATE_TEST_SUITE_P(Shapes, CudaRope,
                         ::testing::Values(RopeShape{2, 7, 12, 3}, RopeShape{2, 33, 40, 5}, RopeShape{1, 130, 160, 2},
                                           RopeShape{1, 1, 4, 1}));

// ---- swiglu ----------------------------------------------------------------------------------

TEST(CudaSwiglu, MatchesCpu) {
  NG_SKIP_WITHOUT_GPU();
  for (const auto& [N, H] : {std::pair{37, 29}, std::pair{300, 771}}) {
    auto inp = random_floats(size_t(N) * 2 * H, 31, 2.0);
    inp[0] = -100.0f;  // exp(100) overflows float: silu must give 0, not NaN
    inp[1] = 100.0f;
    const auto dout = random_floats(size_t(N) * H, 32);
    std::vector<float> out(size_t(N) * H), dinp(inp.size());
    cpu::swiglu_forward<float>({out.data(), inp.data(), N, H});
    cpu::swiglu_backward<float>({dinp.data(), inp.data(), dout.data(), N, H});
    Dev d_inp(inp), d_dout(dout), d_out(out.size()), d_dinp(dinp.size());  // poisoned: dinp is overwritten
    cuda::swiglu_forward<float>({d_out.get(), d_inp.get(), N, H});
    cuda::swiglu_backward<float>({d_dinp.get(), d_inp.get(), d_dout.get(), N, H});
    const auto g_out = d_out.host(), g_dinp = d_dinp.host();
    EXPECT_LT(max_rel_error(g_out, out), kCudaFp32Rel) << "N " << N;
    EXPECT_LT(max_rel_error(g_dinp, dinp), kCudaFp32Rel) << "N " << N;
    EXPECT_EQ(g_out[0], 0.0f);
    EXPECT_FALSE(std::isnan(g_dinp[0]));
  }
}

// ---- scale_columns ---------------------------------------------------------------------------

class CudaScaleColumns : public ::testing::TestWithParam<std::tuple<int, int, bool, bool>> {};

TEST_P(CudaScaleColumns, MatchesCpuAndIsDeterministic) {
  NG_SKIP_WITHOUT_GPU();
  const auto [N, W, accumulate, in_place] = GetParam();
  const float k = 0.37f;
  const size_t n = size_t(N) * W;
  const auto x = random_floats(n, 41), s = random_floats(W, 42), dout = random_floats(n, 43);
  const auto dx0 = random_floats(n, 44), ds0 = random_floats(W, 45);

  std::vector<float> out(n);
  cpu::scale_columns_forward<float>({out.data(), x.data(), s.data(), k, N, W});
  // dx: in place over a copy of dout (the alias the contract allows), else over dx0.
  std::vector<float> dx = in_place ? dout : dx0, ds = ds0;
  cpu::scale_columns_backward<float>({dx.data(), ds.data(), dout.data(), x.data(), s.data(), k, N, W, accumulate});
  std::vector<double> ds_d = to_double(ds0), dx_d(n);
  const auto xd = to_double(x), sd = to_double(s), doutd = to_double(dout);
  cpu::scale_columns_backward<double>({dx_d.data(), ds_d.data(), doutd.data(), xd.data(), sd.data(), double(k), N, W});
  const auto ds_want = to_float(ds_d);

  Dev d_x(x), d_s(s), d_out(n);
  cuda::scale_columns_forward<float>({d_out.get(), d_x.get(), d_s.get(), k, N, W});
  EXPECT_LT(max_rel_error(d_out.host(), out), kCudaFp32Rel);
  std::vector<float> first_ds;
  for (int run = 0; run < 2; ++run) {
    Dev d_dout(dout), d_ds(ds0), d_dx0(n);  // d_dx0 poisoned: the overwrite path must write every element
    if (accumulate) cuda::copy_to_device(d_dx0.get(), dx0.data(), d_dx0.bytes());
    float* d_dx = in_place ? d_dout.get() : d_dx0.get();
    cuda::scale_columns_backward<float>({d_dx, d_ds.get(), d_dout.get(), d_x.get(), d_s.get(), k, N, W, accumulate});
    EXPECT_LT(max_rel_error(in_place ? d_dout.host() : d_dx0.host(), dx), kCudaFp32Rel) << "run " << run;
    const auto g_ds = d_ds.host();
    EXPECT_LT(max_rel_error(g_ds, ds_want), kCudaFp32Rel) << "run " << run;
    if (run == 0) first_ds = g_ds;
    else EXPECT_TRUE(bitwise_equal(g_ds, first_ds)) << "ds is not deterministic";
  }
  // ds may be null (a constant column scale): dx alone.
  Dev d_dout(dout), d_dx(n);
  cuda::scale_columns_backward<float>({d_dx.get(), nullptr, d_dout.get(), d_x.get(), d_s.get(), k, N, W});
  std::vector<float> dx_only(n);
  cpu::scale_columns_backward<float>({dx_only.data(), nullptr, dout.data(), x.data(), s.data(), k, N, W});
  EXPECT_LT(max_rel_error(d_dx.host(), dx_only), kCudaFp32Rel);
}

// N = 300 > the 64 row chunks of the column sums (several rows per chunk, some chunks empty).
INSTANTIATE_TEST_SUITE_P(Shapes, CudaScaleColumns,
                         ::testing::Combine(::testing::Values(37, 300), ::testing::Values(29, 771), ::testing::Bool(),
                                            ::testing::Bool()));

// ---- copy2d ----------------------------------------------------------------------------------

// The model's moves: k out of a packed (N,3C) qkv into a contiguous (N,C), and a (N,C) gradient
// added into the v third of a (N,3C) one. Copies and single adds are exact: compared bit for bit,
// columns outside the width included (they must keep their values).
TEST(CudaCopy2d, MatchesCpuExactly) {
  NG_SKIP_WITHOUT_GPU();
  const int N = 37, C = 29;
  const auto qkv = random_floats(size_t(N) * 3 * C, 51), dst0 = random_floats(size_t(N) * C, 52);
  const auto part = random_floats(size_t(N) * C, 53), packed0 = random_floats(size_t(N) * 3 * C, 54);
  for (bool accumulate : {false, true}) {
    std::vector<float> unpacked = dst0, packed = packed0;
    cpu::copy2d<float>({unpacked.data(), C, qkv.data() + C, 3 * C, N, C, accumulate});
    cpu::copy2d<float>({packed.data() + 2 * C, 3 * C, part.data(), C, N, C, accumulate});
    Dev d_qkv(qkv), d_unpacked(dst0), d_part(part), d_packed(packed0);
    cuda::copy2d<float>({d_unpacked.get(), C, d_qkv.get() + C, 3 * C, N, C, accumulate});
    cuda::copy2d<float>({d_packed.get() + 2 * C, 3 * C, d_part.get(), C, N, C, accumulate});
    EXPECT_EQ(d_unpacked.host(), unpacked) << "accumulate " << accumulate;
    EXPECT_EQ(d_packed.host(), packed) << "accumulate " << accumulate;
  }
  Dev d_src(qkv), d_dst(dst0);  // empty copies touch nothing
  cuda::copy2d<float>({d_dst.get(), C, d_src.get(), 3 * C, 0, C});
  cuda::copy2d<float>({d_dst.get(), C, d_src.get(), 3 * C, N, 0, true});
  EXPECT_EQ(d_dst.host(), dst0);
}

// ---- lerp ------------------------------------------------------------------------------------

class CudaLerp : public ::testing::TestWithParam<std::tuple<int, int, bool, bool>> {};

TEST_P(CudaLerp, MatchesCpuAndIsDeterministic) {
  NG_SKIP_WITHOUT_GPU();
  const auto [N, C, abs_alpha, nu] = GetParam();
  const float alpha_scale = 1.7f;
  const size_t n = size_t(N) * C;
  const auto x = random_floats(n, 61), g = random_floats(n, 62), dout = random_floats(n, 63);
  auto alpha = random_floats(C, 64, 0.3);  // a = 1.7 alpha: both signs, mostly inside (-1, 1)
  alpha[0] = 0.0f;                          // |.|'s subgradient at 0 (+1 on the CPU)
  const auto dalpha0 = random_floats(C, 65);

  std::vector<float> out(n), dx(n), dg(n);
  cpu::lerp_forward<float>({out.data(), x.data(), g.data(), alpha.data(), alpha_scale, abs_alpha, nu, N, C});
  std::vector<float> dalpha_f = dalpha0;
  cpu::lerp_backward<float>({dx.data(), dg.data(), dalpha_f.data(), dout.data(), x.data(), g.data(), alpha.data(),
                             alpha_scale, abs_alpha, nu, N, C});
  const auto xd = to_double(x), gd = to_double(g), doutd = to_double(dout), alphad = to_double(alpha);
  std::vector<double> dxd(n), dgd(n), dalpha_d = to_double(dalpha0);
  cpu::lerp_backward<double>({dxd.data(), dgd.data(), dalpha_d.data(), doutd.data(), xd.data(), gd.data(),
                              alphad.data(), double(alpha_scale), abs_alpha, nu, N, C});
  const auto dalpha_want = to_float(dalpha_d);

  Dev d_x(x), d_g(g), d_dout(dout), d_alpha(alpha), d_out(n);
  cuda::lerp_forward<float>({d_out.get(), d_x.get(), d_g.get(), d_alpha.get(), alpha_scale, abs_alpha, nu, N, C});
  EXPECT_LT(max_rel_error(d_out.host(), out), kCudaFp32Rel);
  std::vector<float> first_dalpha;
  for (int run = 0; run < 2; ++run) {
    Dev d_dx(n), d_dg(n), d_dalpha(dalpha0);  // dx, dg poisoned (overwritten); dalpha accumulates
    cuda::lerp_backward<float>({d_dx.get(), d_dg.get(), d_dalpha.get(), d_dout.get(), d_x.get(), d_g.get(),
                                d_alpha.get(), alpha_scale, abs_alpha, nu, N, C});
    EXPECT_LT(max_rel_error(d_dx.host(), dx), kCudaFp32Rel) << "run " << run;
    EXPECT_LT(max_rel_error(d_dg.host(), dg), kCudaFp32Rel) << "run " << run;
    const auto g_dalpha = d_dalpha.host();
    EXPECT_LT(max_rel_error(g_dalpha, dalpha_want), kCudaFp32Rel) << "run " << run;
    if (run == 0) first_dalpha = g_dalpha;
    else EXPECT_TRUE(bitwise_equal(g_dalpha, first_dalpha)) << "dalpha is not deterministic";
  }
  // The fp32 CPU kernel agrees with its double twin, so the two references are the same op.
  EXPECT_LT(max_rel_error(dalpha_f, dalpha_want), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaLerp,
                         ::testing::Combine(::testing::Values(37, 300), ::testing::Values(29, 771), ::testing::Bool(),
                                            ::testing::Bool()));

// ---- norm: groups, l2, null weight ------------------------------------------------------------

namespace {

struct GroupNormOut {
  std::vector<float> out, mean, rstd, dinp, dweight, dbias;
};

// One forward + backward on the device (gpu) or the CPU (T = float or double; inputs rounded from
// the float case), with the same null-weight and bias choices.
template <class T>
struct GroupNormCase {
  int N, C, group;
  NormFunction fn;
  bool with_weight;
  std::vector<T> x, w, b, dout, dinp0, dw0, db0;

  int stats() const { return N * (group > 0 ? C / group : 1); }
  bool layernorm() const { return fn == NormFunction::LayerNorm; }

  GroupNormCase(int n, int c, int grp, NormFunction f, bool ww) : N(n), C(c), group(grp), fn(f), with_weight(ww) {
    auto conv = [](const std::vector<float>& v) { return std::vector<T>(v.begin(), v.end()); };
    auto xf = random_floats(size_t(N) * C, 71, 2.0);
    for (auto& v : xf) v += 0.5f;
    x = conv(xf);
    w = conv(random_floats(C, 72));
    b = conv(random_floats(C, 73));
    dout = conv(random_floats(size_t(N) * C, 74));
    dinp0 = conv(random_floats(size_t(N) * C, 75));
    dw0 = conv(random_floats(C, 76));
    db0 = conv(random_floats(C, 77));
  }

  NormForwardArgs<T> fwd(T* out, T* mean, T* rstd, const T* xx, const T* ww, const T* bb) const {
    return {.out = out, .mean = mean, .rstd = rstd, .inp = xx, .weight = with_weight ? ww : nullptr,
            .bias = layernorm() ? bb : nullptr, .N = N, .C = C, .eps = 1e-5f, .fn = fn, .scale = T(0.577f),
            .group = group};
  }
  NormBackwardArgs<T> bwd(T* dinp, T* dw, T* db, const T* dy, const T* xx, const T* ww, const T* mean,
                          const T* rstd) const {
    return {.dinp = dinp, .dweight = with_weight ? dw : nullptr, .dbias = layernorm() ? db : nullptr, .dout = dy,
            .inp = xx, .weight = with_weight ? ww : nullptr, .mean = mean, .rstd = rstd, .N = N, .C = C, .fn = fn,
            .scale = T(0.577f), .accumulate = true, .group = group};
  }

  // CPU reference, rounded to float.
  GroupNormOut cpu() const {
    std::vector<T> out(x.size()), mean(stats()), rstd(stats()), dinp = dinp0, dw = dw0, db = db0;
    cpu::norm_forward<T>(fwd(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data()));
    cpu::norm_backward<T>(bwd(dinp.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), mean.data(),
                              rstd.data()));
    auto f = [](const std::vector<T>& v) { return std::vector<float>(v.begin(), v.end()); };
    return {f(out), f(mean), f(rstd), f(dinp), f(dw), f(db)};
  }
};

GroupNormOut run_gpu(const GroupNormCase<float>& nc) {
  Dev dx(nc.x), dw(nc.w), db(nc.b), ddout(nc.dout), ddinp(nc.dinp0), ddw(nc.dw0), ddb(nc.db0);
  Dev out(nc.x.size()), mean(nc.stats()), rstd(nc.stats());  // poisoned
  cuda::norm_forward<float>(nc.fwd(out.get(), mean.get(), rstd.get(), dx.get(), dw.get(), db.get()));
  cuda::norm_backward<float>(
      nc.bwd(ddinp.get(), ddw.get(), ddb.get(), ddout.get(), dx.get(), dw.get(), mean.get(), rstd.get()));
  return {out.host(), mean.host(), rstd.host(), ddinp.host(), ddw.host(), ddb.host()};
}

}  // namespace

// (N, C, group, fn, with_weight). group 16 of 80 and 64 of 768 (per head), 0 = whole row (odd C).
class CudaNormGroup : public ::testing::TestWithParam<std::tuple<int, std::pair<int, int>, NormFunction, bool>> {};

// e.g. N37_C80_g16_l2_gain (the enum would print as raw bytes).
std::string norm_group_name(const ::testing::TestParamInfo<CudaNormGroup::ParamType>& info) {
  const auto& [N, cg, fn, with_weight] = info.param;
  const char* f = fn == NormFunction::LayerNorm ? "layernorm" : fn == NormFunction::RMSNorm ? "rmsnorm" : "l2";
  return "N" + std::to_string(N) + "_C" + std::to_string(cg.first) + "_g" + std::to_string(cg.second) + "_" + f +
         (with_weight ? "_gain" : "_nogain");
}

TEST_P(CudaNormGroup, MatchesCpu) {
  NG_SKIP_WITHOUT_GPU();
  const auto [N, cg, fn, with_weight] = GetParam();
  const GroupNormCase<float> nc(N, cg.first, cg.second, fn, with_weight);
  const GroupNormCase<double> nd(N, cg.first, cg.second, fn, with_weight);
  const GroupNormOut want = nc.cpu(), want_d = nd.cpu(), got = run_gpu(nc), again = run_gpu(nc);
  EXPECT_LT(rel_to_max(got.out, want.out), kCudaFp32Rel);
  EXPECT_LT(rel_to_max(got.rstd, want.rstd), kCudaFp32Rel);
  EXPECT_LT(rel_to_max(got.dinp, want.dinp), kCudaFp32Rel);
  if (nc.layernorm()) {
    EXPECT_LT(rel_to_max(got.mean, want.mean), kCudaFp32Rel);
    EXPECT_LT(max_rel_error(got.dbias, want_d.dbias), kCudaFp32Rel);
  } else {
    for (float m : got.mean) ASSERT_EQ(m, 0.0f);
    EXPECT_EQ(got.dbias, nc.db0);  // never touched (and not passed)
  }
  if (with_weight) EXPECT_LT(max_rel_error(got.dweight, want_d.dweight), kCudaFp32Rel);
  else EXPECT_EQ(got.dweight, nc.dw0);  // null weight: no gain gradient
  EXPECT_TRUE(bitwise_equal(got.out, again.out) && bitwise_equal(got.dinp, again.dinp) &&
              bitwise_equal(got.dweight, again.dweight) && bitwise_equal(got.dbias, again.dbias))
      << "norm is not deterministic";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaNormGroup,
    ::testing::Combine(::testing::Values(37, 300),
                       ::testing::Values(std::pair{80, 16}, std::pair{768, 64}, std::pair{771, 0}, std::pair{29, 0}),
                       ::testing::Values(NormFunction::LayerNorm, NormFunction::RMSNorm, NormFunction::L2),
                       ::testing::Bool()),
    norm_group_name);

TEST(CudaNormGroup, RefusesWhatItCannotDo) {
  NG_SKIP_WITHOUT_GPU();
  NormForwardArgs<float> f{.out = nullptr, .mean = nullptr, .rstd = nullptr, .inp = nullptr, .weight = nullptr,
                           .bias = nullptr, .N = 2, .C = 80, .eps = 1e-5f, .fn = NormFunction::RMSNorm, .group = 7};
  EXPECT_THROW(cuda::norm_forward<float>(f), InternalError);  // 7 does not divide 80
  f.group = 0;
  f.fn = NormFunction::DyT;  // DyT runs on the GPU (test_cuda_dyt.cpp), but not without its alpha
  EXPECT_THROW(cuda::norm_forward<float>(f), InternalError);
  EXPECT_THROW(cuda::rope<float>({nullptr, nullptr, 1, 1, 6, 2}), InternalError);  // head size 3 is odd
}

// ---- attention with an explicit scale -----------------------------------------------------------

class CudaAttentionScale : public ::testing::TestWithParam<std::tuple<int, int, int, int, double>> {};

TEST_P(CudaAttentionScale, MatchesCpu) {
  NG_SKIP_WITHOUT_GPU();
  const auto [B, T, C, NH, scale_in] = GetParam();
  // negative: nGPT's sqrt(hs) (its q and k are unit vectors; here small ones keep the logits moderate)
  const double scale = scale_in < 0 ? std::sqrt(double(C / NH)) : scale_in;
  const size_t n_qkv = size_t(B) * T * 3 * C, n_out = size_t(B) * T * C, n_att = size_t(B) * NH * T * T;
  const auto qkv = random_floats(n_qkv, 81, 0.3), dout = random_floats(n_out, 82);
  std::vector<float> out(n_out), att(n_att), dqkv(n_qkv), scratch(n_att);
  cpu::attention_forward<float>({out.data(), att.data(), qkv.data(), B, T, C, NH, scale});
  cpu::attention_backward<float>({dqkv.data(), scratch.data(), dout.data(), qkv.data(), att.data(), B, T, C, NH, scale});

  Dev d_qkv(qkv), d_dout(dout), d_out(n_out), d_att(n_att), d_dqkv(n_qkv), d_scr(n_att);
  cuda::attention_forward<float>({d_out.get(), d_att.get(), d_qkv.get(), B, T, C, NH, scale});
  cuda::attention_backward<float>(
      {d_dqkv.get(), d_scr.get(), d_dout.get(), d_qkv.get(), d_att.get(), B, T, C, NH, scale});
  EXPECT_LT(max_rel_error(d_out.host(), out), kCudaFp32Rel);
  EXPECT_LT(max_rel_error(d_att.host(), att), kCudaFp32Rel);
  EXPECT_LT(max_rel_error(d_dqkv.host(), dqkv), kCudaFp32Rel);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaAttentionScale,
                         ::testing::Values(std::tuple{2, 33, 20, 5, -1.0}, std::tuple{1, 130, 160, 2, -1.0},
                                           std::tuple{2, 7, 12, 3, 0.8}));
