// The wave-2 CPU ops (NORMS.md wave 2: rope, swiglu, scale_columns, copy2d, lerp, grouped and L2
// norms, attention's logit scale) against central finite differences, in double, on odd shapes.
// Scalar loss as in test_ops_fd.cpp: L = sum(W * out) with a fixed random W, so dL/dout = W.
// Set NORMGPT_FD_VERBOSE=1 to print every check's relative error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>

#include "backend/cpu/kernels.hpp"
#include "common/gradcheck.hpp"
#include "common/tolerances.hpp"

using namespace ng;
using namespace ng::test;
using D = double;

namespace {
const double kTol = Tolerances<double>::value.fd_rel;

// fd_check plus the tolerance, with an optional print so the worst error of a run can be read off.
void expect_fd(const char* what, std::vector<D>& x, const std::vector<D>& analytic,
               const std::function<double()>& loss) {
  const double rel = fd_check(x, analytic, loss).rel();
  if (std::getenv("NORMGPT_FD_VERBOSE")) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::printf("[fd] %s.%s %s: rel %.3e\n", info->test_suite_name(), info->name(), what, rel);
  }
  EXPECT_LT(rel, kTol) << what;
}

// `with_base` was computed with accumulate = true on top of `base`; it must equal base + fresh.
void expect_accumulated(const std::vector<D>& with_base, const std::vector<D>& base, const std::vector<D>& fresh) {
  for (size_t i = 0; i < fresh.size(); ++i) ASSERT_NEAR(with_base[i] - base[i], fresh[i], 1e-12) << "element " << i;
}

std::vector<D> minus(const std::vector<D>& a, double b) {
  std::vector<D> r = a;
  for (auto& v : r) v -= b;
  return r;
}
}  // namespace

// ---- rope ----------------------------------------------------------------------------------

TEST(OpsFD, Rope) {
  const int B = 2, T = 5, C = 18, NH = 3;  // hs = 6: three pairs per head
  auto x = randn(B * T * C, 100), W = randn(B * T * C, 101);
  std::vector<D> out(x.size());
  // theta small enough that the high-index pairs also turn visibly within T positions.
  auto fwd = [&] {
    cpu::rope<D>({out.data(), x.data(), B, T, C, NH, 50.0, false});
    return dot(W, out);
  };
  fwd();
  // The backward is the inverse rotation applied to dout (rotations are orthogonal).
  std::vector<D> dx(x.size(), 7.0);
  cpu::rope<D>({dx.data(), W.data(), B, T, C, NH, 50.0, true});
  expect_fd("dx", x, dx, fwd);
  fwd();  // fd_check leaves `out` from a perturbed x
  // Position 0 is the identity, exactly (cos 0 = 1, sin 0 = 0).
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < C; ++c) EXPECT_EQ(out[size_t(b) * T * C + c], x[size_t(b) * T * C + c]);
  // In place (out aliasing inp): forward then inverse gives x back, and matches the out-of-place result.
  std::vector<D> y = x;
  cpu::rope<D>({y.data(), y.data(), B, T, C, NH, 50.0, false});
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], out[i]) << "element " << i;
  cpu::rope<D>({y.data(), y.data(), B, T, C, NH, 50.0, true});
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], x[i], 1e-12) << "element " << i;
}

// One pair by hand: hs = 4, theta = 100, t = 2, pair i = 1 (columns 1 and 3):
// phi = 2 * 100^(-2/4) = 0.2, so out[1] = 1 cos 0.2 - 2 sin 0.2, out[3] = 1 sin 0.2 + 2 cos 0.2.
TEST(OpsFD, RopeHandValue) {
  const int B = 1, T = 3, C = 4, NH = 1;
  std::vector<D> x(B * T * C, 0.0), out(x.size());
  const D row[4] = {0.5, 1.0, -3.0, 2.0};
  for (int c = 0; c < C; ++c) x[2 * C + c] = row[c];
  cpu::rope<D>({out.data(), x.data(), B, T, C, NH, 100.0, false});
  EXPECT_NEAR(out[2 * C + 1], 0.5827279162511192, 1e-14);
  EXPECT_NEAR(out[2 * C + 3], 2.1588024864775446, 1e-14);
  // pair i = 0 has frequency 1: phi = 2 rad.
  EXPECT_NEAR(out[2 * C + 0], 0.5 * std::cos(2.0) + 3.0 * std::sin(2.0), 1e-14);
  EXPECT_NEAR(out[2 * C + 2], 0.5 * std::sin(2.0) - 3.0 * std::cos(2.0), 1e-14);
}

// ---- swiglu, scale_columns, copy2d ---------------------------------------------------------

TEST(OpsFD, Swiglu) {
  const int N = 5, H = 7;
  auto x = randn(N * 2 * H, 110, 2.0), W = randn(N * H, 111);
  std::vector<D> out(N * H);
  auto fwd = [&] {
    cpu::swiglu_forward<D>({out.data(), x.data(), N, H});
    return dot(W, out);
  };
  fwd();
  const double z = x[0], up = x[H];
  EXPECT_NEAR(out[0], z / (1 + std::exp(-z)) * up, 1e-14);
  std::vector<D> dx(x.size(), 9.0);  // poisoned: the backward overwrites
  cpu::swiglu_backward<D>({dx.data(), x.data(), W.data(), N, H});
  expect_fd("dinp", x, dx, fwd);
}

TEST(OpsFD, ScaleColumns) {
  const int N = 6, Wd = 9;
  const D k = 0.37;
  auto x = randn(N * Wd, 120), s = randn(Wd, 121), W = randn(N * Wd, 122);
  std::vector<D> out(N * Wd);
  auto fwd = [&] {
    cpu::scale_columns_forward<D>({out.data(), x.data(), s.data(), k, N, Wd});
    return dot(W, out);
  };
  fwd();
  EXPECT_DOUBLE_EQ(out[Wd + 2], k * s[2] * x[Wd + 2]);
  std::vector<D> dx(N * Wd, 5.0), ds(Wd, 0.0);
  ScaleColumnsBackwardArgs<D> a{dx.data(), ds.data(), W.data(), x.data(), s.data(), k, N, Wd, false};
  cpu::scale_columns_backward<D>(a);
  expect_fd("dx", x, dx, fwd);
  expect_fd("ds", s, ds, fwd);
  // accumulate = true adds to dx; ds always adds.
  auto base = randn(N * Wd, 123);
  std::vector<D> dx2 = base, ds2(Wd, 1.0);
  a.dx = dx2.data();
  a.ds = ds2.data();
  a.accumulate = true;
  cpu::scale_columns_backward<D>(a);
  expect_accumulated(dx2, base, dx);
  expect_accumulated(ds2, std::vector<D>(Wd, 1.0), ds);
  // dx may alias dout: ds must still see the original dout.
  std::vector<D> inplace = W, ds3(Wd, 0.0);
  cpu::scale_columns_backward<D>({inplace.data(), ds3.data(), inplace.data(), x.data(), s.data(), k, N, Wd, false});
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(inplace[i], dx[i], 1e-14);
  for (int c = 0; c < Wd; ++c) EXPECT_NEAR(ds3[c], ds[c], 1e-12);
}

TEST(OpsFD, Copy2d) {
  const int rows = 5, width = 4, ld_src = 11, ld_dst = 7, off = 3;
  auto src = randn(size_t(rows) * ld_src, 130), dst0 = randn(size_t(rows) * ld_dst, 131);
  // Copy the window at column `off` of src (as q/k/v sit in the packed qkv) into dst's first columns.
  std::vector<D> dst = dst0;
  cpu::copy2d<D>({dst.data(), ld_dst, src.data() + off, ld_src, rows, width, false});
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < ld_dst; ++c) {
      const D want = c < width ? src[r * ld_src + off + c] : dst0[r * ld_dst + c];  // past width: untouched
      EXPECT_EQ(dst[r * ld_dst + c], want) << r << "," << c;
    }
  dst = dst0;
  cpu::copy2d<D>({dst.data(), ld_dst, src.data() + off, ld_src, rows, width, true});
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < ld_dst; ++c) {
      const D want = c < width ? dst0[r * ld_dst + c] + src[r * ld_src + off + c] : dst0[r * ld_dst + c];
      EXPECT_EQ(dst[r * ld_dst + c], want) << r << "," << c;
    }
}

// ---- lerp ----------------------------------------------------------------------------------

// (abs_alpha, nu, alpha_scale)
class OpsFDLerp : public ::testing::TestWithParam<std::tuple<bool, bool, double>> {};

TEST_P(OpsFDLerp, Backward) {
  const auto [abs_alpha, nu, alpha_scale] = GetParam();
  const int N = 6, C = 7;
  auto x = randn(N * C, 140), g = randn(N * C, 141), W = randn(N * C, 142);
  auto alpha = randn(C, 143, 0.5);
  // |.| has a kink at 0: keep alpha (of both signs) at least 0.2 away from it there.
  if (abs_alpha)
    for (auto& v : alpha) v = (v < 0 ? -1 : 1) * (0.2 + std::abs(v));
  std::vector<D> out(N * C);
  auto fwd = [&] {
    cpu::lerp_forward<D>({out.data(), x.data(), g.data(), alpha.data(), alpha_scale, abs_alpha, nu, N, C});
    return dot(W, out);
  };
  fwd();
  // One element by hand.
  D a0 = alpha_scale * alpha[2];
  if (abs_alpha) a0 = std::abs(a0);
  const D w0 = nu ? 1 / std::sqrt(a0 * a0 + (1 - a0) * (1 - a0)) : 1.0;
  EXPECT_NEAR(out[C + 2], w0 * ((1 - a0) * x[C + 2] + a0 * g[C + 2]), 1e-14);
  std::vector<D> dx(N * C, 3.0), dg(N * C, 4.0), dalpha(C, 0.25);  // dx, dg poisoned; dalpha adds
  cpu::lerp_backward<D>({dx.data(), dg.data(), dalpha.data(), W.data(), x.data(), g.data(), alpha.data(),
                         alpha_scale, abs_alpha, nu, N, C});
  expect_fd("dx", x, dx, fwd);
  expect_fd("dg", g, dg, fwd);
  expect_fd("dalpha", alpha, minus(dalpha, 0.25), fwd);
}

INSTANTIATE_TEST_SUITE_P(All, OpsFDLerp,
                         ::testing::Values(std::tuple{false, false, 1.7}, std::tuple{false, true, 1.7},
                                           std::tuple{true, false, 1.7}, std::tuple{true, true, 1.7},
                                           std::tuple{true, true, -0.6}, std::tuple{false, true, 0.05}),
                         [](const auto& info) {
                           // std::get, not a structured binding: its commas would split the macro's arguments
                           const auto& p = info.param;
                           return std::string(std::get<0>(p) ? "abs" : "signed") + (std::get<1>(p) ? "_nu" : "_plain") +
                                  (std::get<2>(p) < 0 ? "_negscale" : "") + "_" + std::to_string(info.index);
                         });

// ---- norms with groups, L2 -----------------------------------------------------------------

// (fn, group, null weight)
class OpsFDNormGroup : public ::testing::TestWithParam<std::tuple<NormFunction, int, bool>> {};

TEST_P(OpsFDNormGroup, Backward) {
  const auto [fn, group, null_weight] = GetParam();
  const int N = 4, C = 9;
  const int stats = N * (C / (group ? group : C));
  const D scale = 0.8;
  auto x = randn(N * C, 150, 2.0), g = randn(C, 151), b = randn(C, 152), W = randn(N * C, 153);
  for (auto& v : x) v += 0.7;  // a non-zero mean, so layernorm's centering matters
  const D* gp = null_weight ? nullptr : g.data();
  std::vector<D> out(N * C), mean(stats), rstd(stats);
  auto fwd = [&] {
    NormForwardArgs<D> a{out.data(), mean.data(), rstd.data(), x.data(), gp, b.data(), N, C, 1e-5f, fn, scale};
    a.group = group;
    cpu::norm_forward<D>(a);
    return dot(W, out);
  };
  fwd();
  // group = 0 and group = C are the same thing.
  if (group == 0 || group == C) {
    std::vector<D> out2(N * C), mean2(N), rstd2(N);
    NormForwardArgs<D> a{out2.data(), mean2.data(), rstd2.data(), x.data(), gp, b.data(), N, C, 1e-5f, fn, scale};
    a.group = group ? 0 : C;
    cpu::norm_forward<D>(a);
    for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out2[i], out[i]);
  }
  std::vector<D> dx(N * C, 6.0), dg(C, 0), db(C, 0);
  NormBackwardArgs<D> a{dx.data(), null_weight ? nullptr : dg.data(), db.data(), W.data(), x.data(), gp,
                        mean.data(), rstd.data(), N, C, fn, scale, false};
  a.group = group;
  cpu::norm_backward<D>(a);
  expect_fd("dx", x, dx, fwd);
  if (!null_weight) expect_fd("dg", g, dg, fwd);
  if (fn == NormFunction::LayerNorm) {
    expect_fd("db", b, db, fwd);
  } else {
    for (double v : db) EXPECT_EQ(v, 0.0);  // no bias outside layernorm
    for (double v : mean) EXPECT_EQ(v, 0.0);
  }
  // accumulate = true adds to dinp; the gain gradient always adds. fd_check on x leaves mean and
  // rstd from a perturbed x, so the statistics are recomputed first.
  fwd();
  auto base = randn(N * C, 154);
  std::vector<D> dx2 = base, dg2(C, 1.0), db2(C, 1.0);
  a.dinp = dx2.data();
  a.dweight = null_weight ? nullptr : dg2.data();
  a.dbias = db2.data();
  a.accumulate = true;
  cpu::norm_backward<D>(a);
  expect_accumulated(dx2, base, dx);
  if (!null_weight) expect_accumulated(dg2, std::vector<D>(C, 1.0), dg);
}

INSTANTIATE_TEST_SUITE_P(
    All, OpsFDNormGroup,
    ::testing::Values(std::tuple{NormFunction::LayerNorm, 9, false}, std::tuple{NormFunction::LayerNorm, 3, false},
                      std::tuple{NormFunction::RMSNorm, 9, false}, std::tuple{NormFunction::RMSNorm, 3, false},
                      std::tuple{NormFunction::L2, 0, false}, std::tuple{NormFunction::L2, 9, false},
                      std::tuple{NormFunction::L2, 3, false}, std::tuple{NormFunction::L2, 9, true},
                      std::tuple{NormFunction::L2, 3, true}, std::tuple{NormFunction::RMSNorm, 3, true}),
    [](const auto& info) {
      const NormFunction fn = std::get<0>(info.param);
      const char* name = fn == NormFunction::LayerNorm ? "layernorm" : fn == NormFunction::RMSNorm ? "rmsnorm" : "l2";
      return std::string(name) + "_group" + std::to_string(std::get<1>(info.param)) +
             (std::get<2>(info.param) ? "_noweight" : "");
    });

// With g = 1 (null, or explicit ones), scale 1 and eps 0, every group of an L2 output is a unit vector.
TEST(OpsFD, L2NormUnitGroups) {
  const int N = 4, C = 9, G = 3, ng = C / G;
  auto x = randn(N * C, 160, 3.0);
  const std::vector<D> ones(C, 1.0);
  for (const D* gp : {static_cast<const D*>(nullptr), ones.data()}) {
    std::vector<D> out(N * C), mean(N * ng, 5.0), rstd(N * ng);
    NormForwardArgs<D> a{out.data(), mean.data(), rstd.data(), x.data(), gp, nullptr, N, C, 0.0f, NormFunction::L2};
    a.group = G;
    cpu::norm_forward<D>(a);
    for (int r = 0; r < N * ng; ++r) {
      double ss = 0, xx = 0;
      for (int c = 0; c < G; ++c) {
        ss += out[r * G + c] * out[r * G + c];
        xx += x[r * G + c] * x[r * G + c];
      }
      EXPECT_NEAR(ss, 1.0, 1e-12) << "group " << r;
      EXPECT_EQ(mean[r], 0.0);
      EXPECT_NEAR(rstd[r], 1 / std::sqrt(xx), 1e-12 * rstd[r]);
    }
  }
}

// ---- attention with a logit scale ----------------------------------------------------------

TEST(OpsFD, AttentionScale) {
  const int B = 2, T = 5, C = 6, NH = 3;
  const double scale = std::sqrt(2.0);  // nGPT's sqrt(hs) for hs = 2
  auto qkv = randn(B * T * 3 * C, 170), W = randn(B * T * C, 171);
  std::vector<D> out(B * T * C), att(B * NH * T * T), scratch(B * NH * T * T);
  auto fwd = [&] {
    AttentionForwardArgs<D> a{out.data(), att.data(), qkv.data(), B, T, C, NH};
    a.scale = scale;
    cpu::attention_forward<D>(a);
    return dot(W, out);
  };
  fwd();
  // The first query of a row attends to q.k * scale: check one two-key softmax by hand (t = 1).
  {
    const int hs = C / NH;
    double s0 = 0, s1 = 0;
    for (int i = 0; i < hs; ++i) {
      const double q = qkv[1 * 3 * C + i];
      s0 += q * qkv[0 * 3 * C + C + i];
      s1 += q * qkv[1 * 3 * C + C + i];
    }
    const double p0 = 1 / (1 + std::exp(scale * (s1 - s0)));
    EXPECT_NEAR(att[1 * T + 0], p0, 1e-14);  // b = 0, h = 0, t = 1, s = 0
  }
  std::vector<D> dqkv(qkv.size(), 123.0);  // poisoned: backward must overwrite every element
  AttentionBackwardArgs<D> a{dqkv.data(), scratch.data(), W.data(), qkv.data(), att.data(), B, T, C, NH};
  a.scale = scale;
  cpu::attention_backward<D>(a);
  expect_fd("dqkv", qkv, dqkv, fwd);
  // scale = 1/sqrt(hs) given explicitly equals the default (0).
  std::vector<D> out_default(out.size()), out_explicit(out.size());
  AttentionForwardArgs<D> d{out_default.data(), att.data(), qkv.data(), B, T, C, NH};
  cpu::attention_forward<D>(d);
  d.out = out_explicit.data();
  d.scale = 1 / std::sqrt(double(C / NH));
  cpu::attention_forward<D>(d);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out_explicit[i], out_default[i], 1e-14);
}
