// Every CPU op's backward against central finite differences, in double, on odd shapes.
// Scalar loss: L = sum(W * out) with a fixed random W, so dL/dout = W.
#include <gtest/gtest.h>

#include "backend/cpu/kernels.hpp"
#include "common/gradcheck.hpp"
#include "common/tolerances.hpp"

using namespace ng;
using namespace ng::test;
using D = double;

namespace {
const double kTol = Tolerances<double>::value.fd_rel;

// Adds `base` to an analytic gradient computed with accumulate = true and checks that the kernel
// really added to (not overwrote) what was there.
void expect_accumulated(const std::vector<D>& with_base, const std::vector<D>& base, const std::vector<D>& fresh) {
  for (size_t i = 0; i < fresh.size(); ++i) ASSERT_NEAR(with_base[i] - base[i], fresh[i], 1e-12) << "element " << i;
}
}  // namespace

TEST(OpsFD, Encoder) {
  const int B = 2, T = 5, C = 7, Vp = 11, maxT = 6;
  std::vector<int32_t> tok = {3, 0, 10, 3, 7, 1, 3, 9, 2, 0};
  auto wte = randn(Vp * C, 1), wpe = randn(maxT * C, 2), W = randn(B * T * C, 3);
  std::vector<D> out(B * T * C);
  auto loss = [&] {
    cpu::encoder_forward<D>({out.data(), tok.data(), wte.data(), wpe.data(), B, T, C});
    return dot(W, out);
  };
  std::vector<D> dwte(wte.size(), 0), dwpe(wpe.size(), 0);
  cpu::encoder_backward<D>({dwte.data(), dwpe.data(), W.data(), tok.data(), B, T, C});
  EXPECT_LT(fd_check(wte, dwte, loss).rel(), kTol);
  EXPECT_LT(fd_check(wpe, dwpe, loss).rel(), kTol);
}

class NormFD : public ::testing::TestWithParam<std::tuple<NormFunction, double>> {};

TEST_P(NormFD, Backward) {
  const auto [fn, scale] = GetParam();
  const int N = 5, C = 13;
  auto x = randn(N * C, 4, 2.0), g = randn(C, 5), b = randn(C, 6), W = randn(N * C, 7);
  for (auto& v : x) v += 0.7;  // a non-zero mean, so layernorm's centering matters
  std::vector<D> out(N * C), mean(N), rstd(N);
  auto fwd = [&] {
    cpu::norm_forward<D>({out.data(), mean.data(), rstd.data(), x.data(), g.data(), b.data(), N, C, 1e-5f, fn, scale});
    return dot(W, out);
  };
  fwd();
  std::vector<D> dx(N * C), dg(C, 0), db(C, 0);
  NormBackwardArgs<D> a{dx.data(), dg.data(), db.data(), W.data(), x.data(), g.data(), mean.data(), rstd.data(),
                        N, C, fn, scale, false};
  cpu::norm_backward<D>(a);
  EXPECT_LT(fd_check(x, dx, fwd).rel(), kTol);
  EXPECT_LT(fd_check(g, dg, fwd).rel(), kTol);
  if (fn == NormFunction::LayerNorm) {
    EXPECT_LT(fd_check(b, db, fwd).rel(), kTol);
  } else {
    for (double v : db) EXPECT_EQ(v, 0.0);  // rmsnorm has no bias
  }
  // accumulate = true adds to dinp; parameter gradients always add.
  auto base = randn(N * C, 8);
  std::vector<D> dx2 = base, dg2(C, 1.0), db2(C, 1.0);
  a.dinp = dx2.data();
  a.dweight = dg2.data();
  a.dbias = db2.data();
  a.accumulate = true;
  cpu::norm_backward<D>(a);
  expect_accumulated(dx2, base, dx);
  expect_accumulated(dg2, std::vector<D>(C, 1.0), dg);
}

INSTANTIATE_TEST_SUITE_P(All, NormFD,
                         ::testing::Values(std::tuple{NormFunction::LayerNorm, 1.0},
                                           std::tuple{NormFunction::RMSNorm, 1.0},
                                           std::tuple{NormFunction::LayerNorm, 0.577},
                                           std::tuple{NormFunction::RMSNorm, 0.577}));

TEST(OpsFD, Matmul) {
  const int N = 7, C = 5, OC = 9;
  auto x = randn(N * C, 10), w = randn(OC * C, 11), bias = randn(OC, 12), W = randn(N * OC, 13);
  std::vector<D> out(N * OC);
  auto fwd = [&] {
    cpu::matmul_forward<D>({out.data(), x.data(), w.data(), bias.data(), N, C, OC});
    return dot(W, out);
  };
  std::vector<D> dx(N * C), dw(OC * C, 0), db(OC, 0);
  MatmulBackwardArgs<D> a{dx.data(), dw.data(), db.data(), W.data(), x.data(), w.data(), N, C, OC, false};
  cpu::matmul_backward<D>(a);
  EXPECT_LT(fd_check(x, dx, fwd).rel(), kTol);
  EXPECT_LT(fd_check(w, dw, fwd).rel(), kTol);
  EXPECT_LT(fd_check(bias, db, fwd).rel(), kTol);
  auto base = randn(N * C, 14);
  std::vector<D> dx2 = base, dw2(OC * C, 0), db2(OC, 0);
  a.dinp = dx2.data();
  a.dweight = dw2.data();
  a.dbias = db2.data();
  a.accumulate = true;
  cpu::matmul_backward<D>(a);
  expect_accumulated(dx2, base, dx);
}

TEST(OpsFD, Attention) {
  const int B = 2, T = 5, C = 6, NH = 3;
  auto qkv = randn(B * T * 3 * C, 15), W = randn(B * T * C, 16);
  std::vector<D> out(B * T * C), att(B * NH * T * T), scratch(B * NH * T * T);
  auto fwd = [&] {
    cpu::attention_forward<D>({out.data(), att.data(), qkv.data(), B, T, C, NH});
    return dot(W, out);
  };
  fwd();
  // causal: probabilities of future positions are exactly zero, rows sum to one
  for (int r = 0; r < B * NH * T; ++r) {
    const int t = r % T;
    double s = 0;
    for (int u = 0; u < T; ++u) {
      if (u > t) {
        EXPECT_EQ(att[r * T + u], 0.0);
      }
      s += att[r * T + u];
    }
    EXPECT_NEAR(s, 1.0, 1e-12);
  }
  std::vector<D> dqkv(qkv.size(), 123.0);  // poisoned: backward must overwrite every element
  cpu::attention_backward<D>({dqkv.data(), scratch.data(), W.data(), qkv.data(), att.data(), B, T, C, NH});
  EXPECT_LT(fd_check(qkv, dqkv, fwd).rel(), kTol);
}

TEST(OpsFD, Gelu) {
  const size_t n = 37;
  auto x = randn(n, 17, 2.0), W = randn(n, 18);
  std::vector<D> out(n);
  auto fwd = [&] {
    cpu::gelu_forward<D>({out.data(), x.data(), n});
    return dot(W, out);
  };
  std::vector<D> dx(n);
  cpu::gelu_backward<D>({dx.data(), x.data(), W.data(), n, false});
  EXPECT_LT(fd_check(x, dx, fwd).rel(), kTol);
  auto base = randn(n, 19);
  std::vector<D> dx2 = base;
  cpu::gelu_backward<D>({dx2.data(), x.data(), W.data(), n, true});
  expect_accumulated(dx2, base, dx);
  // GPT-2's tanh form at a known point: gelu(1) = 0.841191990607...
  std::vector<D> one = {1.0}, y(1);
  cpu::gelu_forward<D>({y.data(), one.data(), 1});
  EXPECT_NEAR(y[0], 0.8411919906082768, 1e-12);
}

TEST(OpsFD, CrossEntropyIgnoresPaddedColumns) {
  const int N = 6, V = 7, Vp = 10;
  auto logits = randn(N * Vp, 20, 3.0);
  std::vector<int32_t> tgt = {0, 6, 3, 3, 1, 5};
  std::vector<D> probs(N * Vp), losses(N);
  auto fwd = [&] {
    cpu::crossentropy_forward<D>({losses.data(), probs.data(), logits.data(), tgt.data(), N, V, Vp});
    double s = 0;
    for (double l : losses) s += l;
    return s / N;
  };
  const double l0 = fwd();
  std::vector<D> dlogits(N * Vp, 7.0);
  cpu::crossentropy_backward<D>({dlogits.data(), probs.data(), tgt.data(), 1.0 / N, N, V, Vp});
  EXPECT_LT(fd_check(logits, dlogits, fwd).rel(), kTol);
  for (int n = 0; n < N; ++n)
    for (int v = V; v < Vp; ++v) EXPECT_EQ(dlogits[n * Vp + v], 0.0);
  // Changing a padded logit changes nothing.
  logits[V] += 100.0;
  EXPECT_DOUBLE_EQ(fwd(), l0);
  // In place (probs aliasing logits) gives the same losses.
  std::vector<D> inplace = logits, losses2(N);
  cpu::crossentropy_forward<D>({losses2.data(), inplace.data(), inplace.data(), tgt.data(), N, V, Vp});
  for (int n = 0; n < N; ++n) EXPECT_NEAR(losses2[n], losses[n], 1e-12);
}

TEST(OpsFD, ResidualAndScale) {
  const size_t n = 23;
  auto x = randn(n, 30), g = randn(n, 31), s = randn(n, 32);
  std::vector<D> out(n);
  cpu::residual<D>({out.data(), x.data(), g.data(), s.data(), 1.7, n});
  for (size_t i = 0; i < n; ++i) EXPECT_DOUBLE_EQ(out[i], 1.7 * x[i] + g[i] + s[i]);
  cpu::residual<D>({out.data(), x.data(), g.data(), nullptr, 1.0, n});
  for (size_t i = 0; i < n; ++i) EXPECT_DOUBLE_EQ(out[i], x[i] + g[i]);
  std::vector<D> d = s;
  cpu::scale<D>({d.data(), x.data(), 0.5, n, true});
  for (size_t i = 0; i < n; ++i) EXPECT_DOUBLE_EQ(d[i], s[i] + 0.5 * x[i]);
  cpu::scale<D>({d.data(), x.data(), 0.5, n, false});
  for (size_t i = 0; i < n; ++i) EXPECT_DOUBLE_EQ(d[i], 0.5 * x[i]);
}

// GeoNorm's update with a mix of rows: ordinary, angle-clamped (large update), and a row with
// r < 1e-6 (plain add). a, b and decay chosen so both clamps occur somewhere, but no row sits on
// a clamp's boundary (a = 1, b = 0 would put the t0-clamped row exactly on the second clamp).
class GeodesicFD : public ::testing::TestWithParam<std::tuple<double, double, double>> {};

TEST_P(GeodesicFD, Backward) {
  const auto [a0, b0, decay] = GetParam();
  const int N = 9, C = 7;
  const double clamp = 0.7853981633974483;
  auto x = randn(N * C, 40, 1.5), g = randn(N * C, 41, 0.6), W = randn(N * C, 42);
  for (int i = 0; i < C; ++i) g[3 * C + i] *= 8.0;   // a big update: the t0 clamp
  for (int i = 0; i < C; ++i) x[5 * C + i] *= 1e-8;  // a tiny stream: the fallback
  std::vector<D> a = {a0}, b = {b0};
  std::vector<D> out(N * C), angle(N), clamped(N);
  auto fwd = [&] {
    cpu::geodesic_forward<D>({out.data(), angle.data(), clamped.data(), x.data(), g.data(), a.data(), b.data(),
                              decay, clamp, N, C});
    return dot(W, out);
  };
  fwd();
  // The norm of every non-fallback row is kept (the geodesic stays on the sphere).
  for (int n = 0; n < N; ++n) {
    if (n == 5) continue;
    double r_in = 0, r_out = 0;
    for (int i = 0; i < C; ++i) {
      r_in += x[n * C + i] * x[n * C + i];
      r_out += out[n * C + i] * out[n * C + i];
    }
    // exact but for the 1e-8 guard in u = v / (||v|| + 1e-8)
    EXPECT_NEAR(std::sqrt(r_out), std::sqrt(r_in), 1e-7 * std::sqrt(r_in)) << "row " << n;
    EXPECT_LE(angle[n], clamp + 1e-7);
  }
  EXPECT_EQ(clamped[3], 1.0);
  for (int i = 0; i < C; ++i) EXPECT_DOUBLE_EQ(out[5 * C + i], x[5 * C + i] + g[5 * C + i]);
  std::vector<D> dx(N * C, 9.0), dg(N * C, 9.0), da = {0.25}, db = {0.5};  // dx, dg poisoned
  cpu::geodesic_backward<D>({dx.data(), dg.data(), da.data(), db.data(), W.data(), x.data(), g.data(), a.data(),
                             b.data(), decay, clamp, N, C});
  EXPECT_LT(fd_check(x, dx, fwd, 1e-7).rel(), kTol);
  EXPECT_LT(fd_check(g, dg, fwd, 1e-7).rel(), kTol);
  std::vector<D> da_only = {da[0] - 0.25}, db_only = {db[0] - 0.5};  // they accumulate
  EXPECT_LT(fd_check(a, da_only, fwd, 1e-7).rel(), kTol);
  EXPECT_LT(fd_check(b, db_only, fwd, 1e-7).rel(), kTol);
}

INSTANTIATE_TEST_SUITE_P(All, GeodesicFD,
                         ::testing::Values(std::tuple{1.0, 0.02, 1.0}, std::tuple{1.3, 0.1, 0.5},
                                           std::tuple{0.8, -0.05, 1.0}, std::tuple{3.0, 0.4, 1.0}));

// DyT (the dyt strategy's norm): out = scale * (g * tanh(alpha x) + b), alpha a learned scalar.
TEST(OpsFD, DynamicTanh) {
  const int N = 5, C = 11;
  auto x = randn(N * C, 50, 1.5), g = randn(C, 51), b = randn(C, 52), W = randn(N * C, 53);
  std::vector<D> alpha = {0.7}, out(N * C), mean(N), rstd(N);
  auto fwd = [&] {
    NormForwardArgs<D> a{out.data(), mean.data(), rstd.data(), x.data(), g.data(), b.data(), N, C, 1e-5f,
                         NormFunction::DyT, 0.8};
    a.alpha = alpha.data();
    cpu::norm_forward<D>(a);
    return dot(W, out);
  };
  fwd();
  EXPECT_NEAR(out[0], 0.8 * (g[0] * std::tanh(0.7 * x[0]) + b[0]), 1e-14);
  std::vector<D> dx(N * C, 5.0), dg(C, 0), db(C, 0), dalpha = {0.25};
  NormBackwardArgs<D> a{dx.data(), dg.data(), db.data(), W.data(), x.data(), g.data(), mean.data(), rstd.data(),
                        N, C, NormFunction::DyT, 0.8, false};
  a.alpha = alpha.data();
  a.dalpha = dalpha.data();
  cpu::norm_backward<D>(a);
  EXPECT_LT(fd_check(x, dx, fwd).rel(), kTol);
  EXPECT_LT(fd_check(g, dg, fwd).rel(), kTol);
  EXPECT_LT(fd_check(b, db, fwd).rel(), kTol);
  std::vector<D> dalpha_only = {dalpha[0] - 0.25};  // accumulated onto 0.25
  EXPECT_LT(fd_check(alpha, dalpha_only, fwd).rel(), kTol);
}

// A null gain is 1 and a null bias 0; null statistics and parameter-gradient outputs are skipped
// (ops/norm.hpp), as the CUDA DyT does: the same as explicit ones and zeros.
TEST(OpsFD, DynamicTanhWithoutGainOrBias) {
  const int N = 4, C = 7;
  auto x = randn(N * C, 60, 1.5), W = randn(N * C, 61);
  std::vector<D> alpha = {0.6}, ones(C, 1.0), zeros(C, 0.0), out(N * C), ref(N * C), mean(N), rstd(N);
  NormForwardArgs<D> f{out.data(), nullptr, nullptr, x.data(), nullptr, nullptr, N, C, 1e-5f, NormFunction::DyT, 0.8};
  f.alpha = alpha.data();
  cpu::norm_forward<D>(f);
  NormForwardArgs<D> r{ref.data(), mean.data(), rstd.data(), x.data(), ones.data(), zeros.data(), N, C, 1e-5f,
                       NormFunction::DyT, 0.8};
  r.alpha = alpha.data();
  cpu::norm_forward<D>(r);
  EXPECT_EQ(out, ref);
  std::vector<D> dx(N * C), dx_ref(N * C), dg(C, 0), db(C, 0), dalpha = {0}, dalpha_ref = {0};
  NormBackwardArgs<D> b{dx.data(), nullptr, nullptr, W.data(), x.data(), nullptr, nullptr, nullptr,
                        N, C, NormFunction::DyT, 0.8, false};
  b.alpha = alpha.data();
  b.dalpha = dalpha.data();
  cpu::norm_backward<D>(b);
  NormBackwardArgs<D> br{dx_ref.data(), dg.data(), db.data(), W.data(), x.data(), ones.data(), mean.data(),
                         rstd.data(), N, C, NormFunction::DyT, 0.8, false};
  br.alpha = alpha.data();
  br.dalpha = dalpha_ref.data();
  cpu::norm_backward<D>(br);
  EXPECT_EQ(dx, dx_ref);
  EXPECT_EQ(dalpha, dalpha_ref);
  EXPECT_NE(dalpha[0], 0.0);
}
