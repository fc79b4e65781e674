// The CPU kernels under T = bf16, the reference of mixed precision, against the same kernels in
// fp32 fed the same (bf16-exact) inputs. A bf16 kernel reads bf16, computes and accumulates in
// fp32 and rounds once per stored bf16 output, so each bf16 output must be the fp32 kernel's output
// rounded to bf16, and each fp32 output (parameter gradients, statistics, losses) the fp32 kernel's
// output. Then the bf16 type itself, AdamW with master weights, and sums that only an fp32
// accumulator gets right.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cpu/kernels.hpp"
#include "core/errors.hpp"
#include "core/precision.hpp"
#include "core/rng.hpp"

using namespace ng;

namespace {

// bf16 tolerance table (DESIGN.md style 7: one table per dtype; tests/common/tolerances.hpp holds
// the fp32/fp64 rows and has no bf16 row yet).
//   The bf16 and fp32 kernels run the same fp32 operations in the same order on the same values;
//   the one freedom left is the compiler fusing a*b + c into an FMA differently in the two
//   instantiations, which moves an fp32 result by a few fp32 ulps (~1e-7 of the operands' scale,
//   a few 1e-6 after a reduction over thousands of terms). Rounding to bf16 turns that into at most
//   one bf16 ulp, plus that absolute slack where an element cancels to near zero.
//   A bf16 accumulator would be off by ~2^-9 sqrt(n/2) relative over n random terms (~8% at
//   n = 3000) and by far more for sums of small terms (1 + 4095 * 2^-10 stays 1 in bf16).
struct Bf16Tolerance {
  int out_ulps;   // a bf16 output vs the fp32 kernel's output rounded to bf16, in bf16 ulps
  double f32_rel;  // an fp32 output vs the fp32 kernel's, relative to the tensor's largest |value|
                   // (also the absolute slack of bf16 outputs, relative to the same scale)
};
constexpr Bf16Tolerance kTol{1, 1e-5};

// Random normal values rounded to bf16, and the same values in fp32 for the reference kernel.
struct Tensor {
  std::vector<bf16> h;
  std::vector<float> f;
};

Tensor rounded(size_t n, uint64_t seed, double std = 1.0, double mean = 0.0) {
  Tensor t{std::vector<bf16>(n), std::vector<float>(n)};
  Rng rng(seed);
  for (size_t i = 0; i < n; ++i) {
    t.h[i] = bf16(mean + std * rng.normal());
    t.f[i] = t.h[i];
  }
  return t;
}

Tensor constant(size_t n, float v) { return {std::vector<bf16>(n, bf16(v)), std::vector<float>(n, float(bf16(v)))}; }

std::vector<float> widen(const std::vector<bf16>& h) { return std::vector<float>(h.begin(), h.end()); }

// The spacing of bf16 numbers at |r| (denormal spacing below the normal range).
double bf16_ulp(bf16 r) {
  const int e = (r.bits >> 7) & 0xff;
  return std::ldexp(1.0, (e == 0 ? 1 : e) - 127 - 7);
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, double(std::abs(x)));
  return m;
}

// bf16 outputs against the fp32 reference rounded to bf16 (kTol.out_ulps ulps + kTol.f32_rel of scale).
void expect_rounded(const std::vector<bf16>& got, const std::vector<float>& ref, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  const double slack = kTol.f32_rel * max_abs(ref);
  int bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const bf16 r(ref[i]);
    const double err = std::abs(double(float(got[i])) - double(float(r)));
    if (!(err <= kTol.out_ulps * bf16_ulp(r) + slack) && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: bf16 kernel " << float(got[i]) << ", fp32 kernel " << ref[i]
                    << " (rounded " << float(r) << ")";
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << ref.size() << " elements off";
}

// fp32 outputs of the bf16 kernel (gradients, statistics, losses) against the fp32 kernel's.
void expect_f32(const std::vector<float>& got, const std::vector<float>& ref, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  const double tol = kTol.f32_rel * std::max(max_abs(ref), 1e-30);
  int bad = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    if (!(std::abs(double(got[i]) - double(ref[i])) <= tol) && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: bf16 kernel " << got[i] << ", fp32 kernel " << ref[i];
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << ref.size() << " elements off";
}

}  // namespace

// ---- the bf16 type ----------------------------------------------------------------------------

TEST(Bf16Type, EveryNumberRoundTrips) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const bf16 h = bf16::from_bits(uint16_t(b));
    const float f = h;
    if (std::isnan(f)) continue;
    ASSERT_EQ(bf16(f).bits, b) << std::hex << b;
    ASSERT_EQ(bf16(double(f)).bits, b) << std::hex << b;
  }
}

TEST(Bf16Type, RoundsToNearestEven) {
  const auto bits = [](double v) { return bf16(float(v)).bits; };
  EXPECT_EQ(bits(1.0), 0x3f80);
  // 1 + 2^-8 is halfway between 1 (even) and 1 + 2^-7: down to 1.
  EXPECT_EQ(bits(1.0 + 0x1p-8), 0x3f80);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): up.
  EXPECT_EQ(bits(1.0 + 3 * 0x1p-8), 0x3f82);
  // just past a tie goes to the nearer neighbour
  EXPECT_EQ(bits(1.0 + 0x1p-8 + 0x1p-20), 0x3f81);
  EXPECT_EQ(bits(1.0 + 3 * 0x1p-8 - 0x1p-20), 0x3f81);
  EXPECT_EQ(bits(-(1.0 + 0x1p-8)), 0xbf80);
  EXPECT_EQ(bits(-(1.0 + 3 * 0x1p-8)), 0xbf82);
  // a carry out of the mantissa bumps the exponent: 2 - 2^-9 rounds to 2
  EXPECT_EQ(bits(2.0 - 0x1p-9), 0x4000);
  EXPECT_EQ(bits(0.0), 0x0000);
  EXPECT_EQ(bits(-0.0), 0x8000);
  // 256 + 1 is a tie between 256 (even) and 258: bf16 accumulation of ones stops at 256.
  bf16 s = 256.0f;
  s += 1.0f;
  EXPECT_EQ(float(s), 256.0f);
}

TEST(Bf16Type, InfinityAndNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(bf16(inf).bits, 0x7f80);
  EXPECT_EQ(bf16(-inf).bits, 0xff80);
  EXPECT_TRUE(std::isinf(float(bf16(inf))));
  // Past the largest bf16 (0x7f7f) by half an ulp or more: overflow to infinity, as IEEE rounding does.
  EXPECT_EQ(bf16(std::numeric_limits<float>::max()).bits, 0x7f80);
  EXPECT_EQ(bf16(float(bf16::from_bits(0x7f7f))).bits, 0x7f7f);
  // NaN stays NaN, quiet, sign kept, even when its payload sits only in the bits rounding drops
  // (rounding those up naively would make 0x7f800001 an infinity).
  uint32_t snan_bits = 0x7f800001u;
  float snan;
  std::memcpy(&snan, &snan_bits, sizeof snan);
  for (float nan : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(), snan}) {
    const bf16 h(nan);
    EXPECT_TRUE(std::isnan(float(h))) << std::hex << h.bits;
    EXPECT_EQ(h.bits & 0x7fc0, 0x7fc0) << std::hex << h.bits;  // exponent all ones, quiet bit set
    EXPECT_EQ(h.bits & 0x8000, std::signbit(nan) ? 0x8000 : 0) << std::hex << h.bits;
  }
}

TEST(Bf16Type, Denormals) {
  // bf16 has float's exponent range, so its smallest denormal is 2^-133, exactly representable.
  EXPECT_EQ(bf16(float(0x1p-133)).bits, 0x0001);
  EXPECT_EQ(float(bf16::from_bits(0x0001)), float(0x1p-133));
  EXPECT_EQ(float(bf16::from_bits(0x807f)), -float(0x7fp-133));  // largest negative denormal
  // ties among denormals go to even: 2^-134 -> 0, 3 * 2^-134 -> 2^-132
  EXPECT_EQ(bf16(float(0x1p-134)).bits, 0x0000);
  EXPECT_EQ(bf16(float(3 * 0x1p-134)).bits, 0x0002);
  EXPECT_EQ(bf16(-float(0x1p-134)).bits, 0x8000);
  // fp32 denormals below bf16's range round to zero; the largest bf16 denormal rounds up to the
  // smallest normal at its upper half-ulp tie (odd mantissa 0x7f).
  EXPECT_EQ(bf16(std::numeric_limits<float>::denorm_min()).bits, 0x0000);
  EXPECT_EQ(bf16(float(0x7fp-133 + 0x1p-134)).bits, 0x0080);
  EXPECT_EQ(float(bf16::from_bits(0x0080)), std::numeric_limits<float>::min());
}

// ---- each op family: bf16 kernel vs the fp32 kernel on the same values -------------------------

TEST(OpsBf16, Encoder) {
  const int B = 3, T = 17, C = 48, V = 11;
  std::vector<int32_t> tok(B * T);
  for (int i = 0; i < B * T; ++i) tok[i] = (i * 5) % V;
  auto wte = rounded(V * C, 1), wpe = rounded(T * C, 2), dout = rounded(B * T * C, 3);
  for (bool pos : {true, false}) {
    std::vector<bf16> out(B * T * C);
    std::vector<float> ref(B * T * C);
    cpu::encoder_forward<bf16>({out.data(), tok.data(), wte.h.data(), pos ? wpe.h.data() : nullptr, B, T, C});
    cpu::encoder_forward<float>({ref.data(), tok.data(), wte.f.data(), pos ? wpe.f.data() : nullptr, B, T, C});
    expect_rounded(out, ref, pos ? "out" : "out (no wpe)");
  }
  std::vector<float> dwte(V * C, 0.5f), dwpe(T * C, 0.25f), rwte = dwte, rwpe = dwpe;
  cpu::encoder_backward<bf16>({dwte.data(), dwpe.data(), dout.h.data(), tok.data(), B, T, C});
  cpu::encoder_backward<float>({rwte.data(), rwpe.data(), dout.f.data(), tok.data(), B, T, C});
  expect_f32(dwte, rwte, "dwte");
  expect_f32(dwpe, rwpe, "dwpe");
}

// (function, group width (0: whole row), with a gain)
class OpsBf16Norm : public ::testing::TestWithParam<std::tuple<NormFunction, int, bool>> {};

TEST_P(OpsBf16Norm, ForwardBackward) {
  const auto [fn, group, weighted] = GetParam();
  const int N = 24, C = 384, ns = group ? N * C / group : N;
  const float scale = 0.83f;
  auto x = rounded(N * C, 4, 1.5, 0.4), g = rounded(C, 5, 0.2, 1.0), b = rounded(C, 6, 0.3);
  auto dout = rounded(N * C, 7), base = rounded(N * C, 8);
  const bf16 alpha = bf16(0.7f);
  const float alpha_f = alpha;
  std::vector<bf16> out(N * C);
  std::vector<float> ref(N * C), mean(ns), rstd(ns), rmean(ns), rrstd(ns);
  cpu::norm_forward<bf16>({out.data(), mean.data(), rstd.data(), x.h.data(), weighted ? g.h.data() : nullptr,
                           b.h.data(), N, C, 1e-5f, fn, scale, &alpha, group});
  cpu::norm_forward<float>({ref.data(), rmean.data(), rrstd.data(), x.f.data(), weighted ? g.f.data() : nullptr,
                            b.f.data(), N, C, 1e-5f, fn, scale, &alpha_f, group});
  expect_rounded(out, ref, "out");
  expect_f32(mean, rmean, "mean");
  expect_f32(rstd, rrstd, "rstd");
  for (bool acc : {false, true}) {
    std::vector<bf16> dx = base.h;
    std::vector<float> rdx = base.f, dg(C, 0.1f), db(C, 0.2f), rdg = dg, rdb = db;
    float dalpha = 0.3f, rdalpha = dalpha;
    cpu::norm_backward<bf16>({dx.data(), weighted ? dg.data() : nullptr, db.data(), dout.h.data(), x.h.data(),
                              weighted ? g.h.data() : nullptr, mean.data(), rstd.data(), N, C, fn, scale, acc, &alpha,
                              &dalpha, group});
    cpu::norm_backward<float>({rdx.data(), weighted ? rdg.data() : nullptr, rdb.data(), dout.f.data(), x.f.data(),
                               weighted ? g.f.data() : nullptr, rmean.data(), rrstd.data(), N, C, fn, scale, acc,
                               &alpha_f, &rdalpha, group});
    const std::string tag = acc ? " (accumulate)" : "";
    expect_rounded(dx, rdx, "dinp" + tag);
    expect_f32(dg, rdg, "dweight" + tag);
    expect_f32(db, rdb, "dbias" + tag);
    expect_f32({dalpha}, {rdalpha}, "dalpha" + tag);
  }
}

INSTANTIATE_TEST_SUITE_P(All, OpsBf16Norm,
                         ::testing::Values(std::tuple{NormFunction::LayerNorm, 0, true},
                                           std::tuple{NormFunction::LayerNorm, 0, false},
                                           std::tuple{NormFunction::RMSNorm, 0, true},
                                           std::tuple{NormFunction::RMSNorm, 64, true},
                                           std::tuple{NormFunction::L2, 0, true},
                                           std::tuple{NormFunction::L2, 64, false},
                                           std::tuple{NormFunction::DyT, 0, true}));

TEST(OpsBf16, Matmul) {
  // C = 1536 terms per output: a bf16 accumulator would be off by several percent.
  const int N = 40, C = 1536, OC = 56;
  auto inp = rounded(N * C, 9), w = rounded(OC * C, 10, 0.05), bias = rounded(OC, 11), dout = rounded(N * OC, 12);
  auto base = rounded(N * C, 13);
  for (bool with_bias : {true, false}) {
    std::vector<bf16> out(N * OC);
    std::vector<float> ref(N * OC);
    cpu::matmul_forward<bf16>({out.data(), inp.h.data(), w.h.data(), with_bias ? bias.h.data() : nullptr, N, C, OC});
    cpu::matmul_forward<float>({ref.data(), inp.f.data(), w.f.data(), with_bias ? bias.f.data() : nullptr, N, C, OC});
    expect_rounded(out, ref, with_bias ? "out" : "out (no bias)");
  }
  for (bool acc : {false, true}) {
    std::vector<bf16> dinp = base.h;
    std::vector<float> rdinp = base.f, dw(OC * C, 0.5f), db(OC, 0.5f), rdw = dw, rdb = db;
    cpu::matmul_backward<bf16>(
        {dinp.data(), dw.data(), db.data(), dout.h.data(), inp.h.data(), w.h.data(), N, C, OC, acc});
    cpu::matmul_backward<float>(
        {rdinp.data(), rdw.data(), rdb.data(), dout.f.data(), inp.f.data(), w.f.data(), N, C, OC, acc});
    const std::string tag = acc ? " (accumulate)" : "";
    expect_rounded(dinp, rdinp, "dinp" + tag);
    expect_f32(dw, rdw, "dweight" + tag);
    expect_f32(db, rdb, "dbias" + tag);
  }
  // no input gradient wanted
  std::vector<float> dw(OC * C, 0.0f), rdw = dw;
  cpu::matmul_backward<bf16>({nullptr, dw.data(), nullptr, dout.h.data(), inp.h.data(), w.h.data(), N, C, OC});
  cpu::matmul_backward<float>({nullptr, rdw.data(), nullptr, dout.f.data(), inp.f.data(), w.f.data(), N, C, OC});
  expect_f32(dw, rdw, "dweight (no dinp)");
}

TEST(OpsBf16, Attention) {
  const int B = 2, T = 70, C = 96, NH = 3;
  for (double sc : {0.0, std::sqrt(32.0)}) {
    auto qkv = rounded(size_t(B) * T * 3 * C, 14, sc ? 0.25 : 1.0), dout = rounded(size_t(B) * T * C, 15);
    // attention's saved probabilities are stat_t<bf16> = fp32, like every statistic
    std::vector<bf16> out(B * T * C), dqkv(qkv.h.size(), bf16(9.0f));
    std::vector<float> att(size_t(B) * NH * T * T), scratch(att.size());
    std::vector<float> ref(out.size()), ratt(att.size()), rdqkv(qkv.f.size(), 9.0f), rscratch(att.size());
    cpu::attention_forward<bf16>({out.data(), att.data(), qkv.h.data(), B, T, C, NH, sc});
    cpu::attention_forward<float>({ref.data(), ratt.data(), qkv.f.data(), B, T, C, NH, sc});
    expect_rounded(out, ref, "out");
    expect_f32(att, ratt, "att");
    const std::vector<float> out_f = widen(out);
    cpu::attention_backward<bf16>(
        {dqkv.data(), scratch.data(), dout.h.data(), qkv.h.data(), att.data(), B, T, C, NH, sc, out.data()});
    cpu::attention_backward<float>({rdqkv.data(), rscratch.data(), dout.f.data(), qkv.f.data(), ratt.data(), B, T, C,
                                    NH, sc, out_f.data()});
    expect_rounded(dqkv, rdqkv, "dqkv");
  }
}

TEST(OpsBf16, GeluResidualScale) {
  const size_t n = 5000;
  auto x = rounded(n, 16, 2.0), dout = rounded(n, 17), g = rounded(n, 18), skip = rounded(n, 19), base = rounded(n, 20);
  std::vector<bf16> out(n);
  std::vector<float> ref(n);
  cpu::gelu_forward<bf16>({out.data(), x.h.data(), n});
  cpu::gelu_forward<float>({ref.data(), x.f.data(), n});
  expect_rounded(out, ref, "gelu");
  for (bool acc : {false, true}) {
    std::vector<bf16> d = base.h;
    std::vector<float> rd = base.f;
    cpu::gelu_backward<bf16>({d.data(), x.h.data(), dout.h.data(), n, acc});
    cpu::gelu_backward<float>({rd.data(), x.f.data(), dout.f.data(), n, acc});
    expect_rounded(d, rd, acc ? "gelu dinp (accumulate)" : "gelu dinp");
  }
  for (bool with_skip : {true, false}) {
    cpu::residual<bf16>({out.data(), x.h.data(), g.h.data(), with_skip ? skip.h.data() : nullptr, 0.7f, n});
    cpu::residual<float>({ref.data(), x.f.data(), g.f.data(), with_skip ? skip.f.data() : nullptr, 0.7f, n});
    expect_rounded(out, ref, with_skip ? "residual" : "residual (no skip)");
  }
  for (bool acc : {false, true}) {
    std::vector<bf16> d = base.h;
    std::vector<float> rd = base.f;
    cpu::scale<bf16>({d.data(), x.h.data(), 0.37f, n, acc});
    cpu::scale<float>({rd.data(), x.f.data(), 0.37f, n, acc});
    expect_rounded(d, rd, acc ? "scale (accumulate)" : "scale");
  }
}

TEST(OpsBf16, SwigluScaleColumnsCopy2d) {
  const int N = 33, H = 100, W = 130;
  auto inp = rounded(N * 2 * H, 21, 2.5), dy = rounded(N * H, 22);
  std::vector<bf16> out(N * H), din(N * 2 * H);
  std::vector<float> ref(N * H), rdin(N * 2 * H);
  cpu::swiglu_forward<bf16>({out.data(), inp.h.data(), N, H});
  cpu::swiglu_forward<float>({ref.data(), inp.f.data(), N, H});
  expect_rounded(out, ref, "swiglu");
  cpu::swiglu_backward<bf16>({din.data(), inp.h.data(), dy.h.data(), N, H});
  cpu::swiglu_backward<float>({rdin.data(), inp.f.data(), dy.f.data(), N, H});
  expect_rounded(din, rdin, "swiglu dinp");

  auto x = rounded(N * W, 23), s = rounded(W, 24, 0.5, 1.0), d = rounded(N * W, 25), base = rounded(N * W, 26);
  std::vector<bf16> so(N * W);
  std::vector<float> rso(N * W);
  cpu::scale_columns_forward<bf16>({so.data(), x.h.data(), s.h.data(), 1.7f, N, W});
  cpu::scale_columns_forward<float>({rso.data(), x.f.data(), s.f.data(), 1.7f, N, W});
  expect_rounded(so, rso, "scale_columns");
  for (bool acc : {false, true}) {
    std::vector<bf16> dx = base.h;
    std::vector<float> rdx = base.f, ds(W, 0.1f), rds = ds;
    cpu::scale_columns_backward<bf16>({dx.data(), ds.data(), d.h.data(), x.h.data(), s.h.data(), 1.7f, N, W, acc});
    cpu::scale_columns_backward<float>({rdx.data(), rds.data(), d.f.data(), x.f.data(), s.f.data(), 1.7f, N, W, acc});
    expect_rounded(dx, rdx, acc ? "scale_columns dx (accumulate)" : "scale_columns dx");
    expect_f32(ds, rds, acc ? "scale_columns ds (accumulate)" : "scale_columns ds");
  }

  // copy2d: a (N, W) window into the middle of a (N, 3W) buffer, copied and added
  for (bool acc : {false, true}) {
    std::vector<bf16> dst = base.h;
    std::vector<float> rdst = base.f;
    dst.resize(size_t(N) * 3 * W, bf16(2.0f));
    rdst.resize(size_t(N) * 3 * W, 2.0f);
    cpu::copy2d<bf16>({dst.data() + W, 3 * W, x.h.data(), W, N, W, acc});
    cpu::copy2d<float>({rdst.data() + W, 3 * W, x.f.data(), W, N, W, acc});
    expect_rounded(dst, rdst, acc ? "copy2d (accumulate)" : "copy2d");
  }
}

// (abs_alpha, nu)
class OpsBf16Lerp : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

TEST_P(OpsBf16Lerp, ForwardBackward) {
  const auto [abs_alpha, nu] = GetParam();
  const int N = 45, C = 96;
  const float alpha_scale = 0.37f;
  auto x = rounded(N * C, 27), g = rounded(N * C, 28), alpha = rounded(C, 29), dy = rounded(N * C, 30);
  std::vector<bf16> out(N * C), dx(N * C), dg(N * C);
  std::vector<float> ref(N * C), rdx(N * C), rdg(N * C), da(C, 0.2f), rda = da;
  cpu::lerp_forward<bf16>({out.data(), x.h.data(), g.h.data(), alpha.h.data(), alpha_scale, abs_alpha, nu, N, C});
  cpu::lerp_forward<float>({ref.data(), x.f.data(), g.f.data(), alpha.f.data(), alpha_scale, abs_alpha, nu, N, C});
  expect_rounded(out, ref, "out");
  cpu::lerp_backward<bf16>({dx.data(), dg.data(), da.data(), dy.h.data(), x.h.data(), g.h.data(), alpha.h.data(),
                            alpha_scale, abs_alpha, nu, N, C});
  cpu::lerp_backward<float>({rdx.data(), rdg.data(), rda.data(), dy.f.data(), x.f.data(), g.f.data(), alpha.f.data(),
                             alpha_scale, abs_alpha, nu, N, C});
  expect_rounded(dx, rdx, "dx");
  expect_rounded(dg, rdg, "dg");
  expect_f32(da, rda, "dalpha");
}

INSTANTIATE_TEST_SUITE_P(All, OpsBf16Lerp,
                         ::testing::Values(std::tuple{false, false}, std::tuple{false, true}, std::tuple{true, false},
                                           std::tuple{true, true}));

TEST(OpsBf16, Geodesic) {
  const int N = 40, C = 128;
  for (double clamp : {0.25, 3.0}) {  // clamps active on many rows, then on none
    auto x = rounded(N * C, 31), g = rounded(N * C, 32, 0.5), dy = rounded(N * C, 33);
    for (int c = 0; c < C; ++c) x.h[c] = x.f[c] = 0.0f;  // a fallback row (r < 1e-6)
    const bf16 a = bf16(0.8f), b = bf16(0.1f);
    const float af = a, bf = b;
    std::vector<bf16> out(N * C), dx(N * C), dg(N * C);
    std::vector<float> ref(N * C), rdx(N * C), rdg(N * C), angle(N), clamped(N), rangle(N), rclamped(N);
    cpu::geodesic_forward<bf16>(
        {out.data(), angle.data(), clamped.data(), x.h.data(), g.h.data(), &a, &b, 0.9, clamp, N, C});
    cpu::geodesic_forward<float>(
        {ref.data(), rangle.data(), rclamped.data(), x.f.data(), g.f.data(), &af, &bf, 0.9, clamp, N, C});
    expect_rounded(out, ref, "out");
    expect_f32(angle, rangle, "angle");
    expect_f32(clamped, rclamped, "clamped");
    float da = 0.5f, db = 0.25f, rda = da, rdb = db;
    cpu::geodesic_backward<bf16>(
        {dx.data(), dg.data(), &da, &db, dy.h.data(), x.h.data(), g.h.data(), &a, &b, 0.9, clamp, N, C});
    cpu::geodesic_backward<float>(
        {rdx.data(), rdg.data(), &rda, &rdb, dy.f.data(), x.f.data(), g.f.data(), &af, &bf, 0.9, clamp, N, C});
    expect_rounded(dx, rdx, "dx");
    expect_rounded(dg, rdg, "dg");
    expect_f32({da, db}, {rda, rdb}, "da, db");
  }
}

TEST(OpsBf16, CrossEntropy) {
  const int N = 19, V = 3001, Vp = 3072;
  std::vector<int32_t> tg(N);
  for (int i = 0; i < N; ++i) tg[i] = (i * 977) % V;
  auto logits = rounded(size_t(N) * Vp, 34, 3.0);
  std::vector<bf16> probs(logits.h.size()), d(logits.h.size());
  std::vector<float> rprobs(logits.f.size()), rd(logits.f.size()), losses(N), rlosses(N);
  cpu::crossentropy_forward<bf16>({losses.data(), probs.data(), logits.h.data(), tg.data(), N, V, Vp});
  cpu::crossentropy_forward<float>({rlosses.data(), rprobs.data(), logits.f.data(), tg.data(), N, V, Vp});
  expect_rounded(probs, rprobs, "probs");
  expect_f32(losses, rlosses, "losses");
  const std::vector<float> probs_f = widen(probs);
  const float dloss = 1.0f / 4096;
  cpu::crossentropy_backward<bf16>({d.data(), probs.data(), tg.data(), dloss, N, V, Vp});
  cpu::crossentropy_backward<float>({rd.data(), probs_f.data(), tg.data(), dloss, N, V, Vp});
  expect_rounded(d, rd, "dlogits");
  // In place, as the model runs it: probs over the logits, then dlogits over the probs.
  std::vector<bf16> buf = logits.h;
  std::vector<float> losses2(N);
  cpu::crossentropy_forward<bf16>({losses2.data(), buf.data(), buf.data(), tg.data(), N, V, Vp});
  EXPECT_EQ(losses2, losses);
  for (size_t i = 0; i < buf.size(); ++i) ASSERT_EQ(buf[i].bits, probs[i].bits) << i;
  cpu::crossentropy_backward<bf16>({buf.data(), buf.data(), tg.data(), dloss, N, V, Vp});
  for (size_t i = 0; i < buf.size(); ++i) ASSERT_EQ(buf[i].bits, d[i].bits) << i;
}

TEST(OpsBf16, Rope) {
  const int B = 2, T = 50, C = 96, NH = 3;
  auto x = rounded(size_t(B) * T * C, 35);
  for (bool inverse : {false, true}) {
    std::vector<bf16> y(x.h.size());
    std::vector<float> ry(x.f.size());
    cpu::rope<bf16>({y.data(), x.h.data(), B, T, C, NH, 10000.0, inverse});
    cpu::rope<float>({ry.data(), x.f.data(), B, T, C, NH, 10000.0, inverse});
    expect_rounded(y, ry, inverse ? "rope inverse" : "rope");
  }
}

// ---- AdamW with fp32 master weights -------------------------------------------------------------

TEST(OpsBf16, AdamWMasterWeights) {
  const size_t n = 4099;
  Rng rng(36);
  std::vector<float> master(n), grads(n), m(n, 0.0f), v(n, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    master[i] = float(rng.normal());
    grads[i] = float(1e-3 * rng.normal());
  }
  const std::vector<bf16> params0(master.begin(), master.end());
  std::vector<bf16> params = params0;
  // The fp32 run: the same update on fp32 weights that start equal to the master copy.
  std::vector<float> ref = master, rm = m, rv = v;
  const float lr = 1e-4f, b1 = 0.9f, b2 = 0.95f;
  for (int t = 1; t <= 3; ++t) {
    const float bc1 = 1 - std::pow(b1, float(t)), bc2 = 1 - std::pow(b2, float(t));
    const float gs = t == 2 ? 0.5f : 1.0f;  // a clipped step too
    AdamWArgs<bf16> a{params.data(), grads.data(), m.data(), v.data(), n, lr, b1, b2, bc1, bc2, 1e-8f, lr * 0.1f, gs,
                      master.data()};
    cpu::adamw_update<bf16>(a);
    cpu::adamw_update<float>(
        {ref.data(), grads.data(), rm.data(), rv.data(), n, lr, b1, b2, bc1, bc2, 1e-8f, lr * 0.1f, gs});
  }
  // optim.cpp is built without FMA contraction (its contract fixes the rounding step by step), so
  // the master copy and the moments are the fp32 run's exact bits; the weights are those rounded.
  size_t kept = 0, lost = 0;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(master[i], ref[i]) << i;
    ASSERT_EQ(m[i], rm[i]) << i;
    ASSERT_EQ(v[i], rv[i]) << i;
    ASSERT_EQ(params[i].bits, bf16(master[i]).bits) << i;
    kept += master[i] != float(bf16(float(params0[i])));
    lost += params[i].bits == params0[i].bits;
  }
  // The three steps (~3e-4 in all) are under half a bf16 ulp of most weights: the bf16 weights
  // mostly do not move, the master copy keeps every step.
  EXPECT_GT(lost, n / 2);
  EXPECT_GT(kept, n * 9 / 10);
  // Mixed precision without master weights is a programming error, not a silent bf16 update.
  AdamWArgs<bf16> no_master{params.data(), grads.data(), m.data(), v.data(), n,
                            lr, b1, b2, 0.1f, 0.05f, 1e-8f, 0.0f, 1.0f};
  EXPECT_THROW(cpu::adamw_update<bf16>(no_master), InternalError);
}

TEST(OpsBf16, SumSquaresOfFp32Gradients) {
  std::vector<float> g(10007);
  Rng rng(37);
  for (auto& x : g) x = float(rng.normal());
  EXPECT_EQ(cpu::sum_squares<bf16>({g.data(), g.size()}), cpu::sum_squares<float>({g.data(), g.size()}));
}

// ---- accumulation happens in fp32 ---------------------------------------------------------------
// Each case sums values whose exact total is representable in bf16 but which a bf16 accumulator
// loses: 1 + 4095 * 2^-10 stays 1 (each 2^-10 is under half an ulp of 1), 4096 ones stop at 256.

TEST(OpsBf16Accumulation, MatmulForward) {
  const int N = 2, C = 4096, OC = 3;
  std::vector<bf16> inp(N * C, bf16(1.0f)), w(OC * C, bf16(float(0x1p-10))), out(N * OC);
  for (int o = 0; o < OC; ++o) w[size_t(o) * C] = bf16(1.0f);
  const std::vector<bf16> bias(OC, bf16(0.5f));
  cpu::matmul_forward<bf16>({out.data(), inp.data(), w.data(), bias.data(), N, C, OC});
  for (auto y : out) EXPECT_EQ(float(y), float(bf16(0.5 + 1.0 + 4095 * 0x1p-10)));  // 5.5; a bf16 sum < 2
}

TEST(OpsBf16Accumulation, MatmulBackward) {
  // dweight and dbias sum over N = 4096 rows; dinp over OC = 4096 outputs.
  const int N = 4096, C = 2, OC = 4096;
  std::vector<bf16> dout(size_t(N) * OC, bf16(float(0x1p-10))), inp(N * C, bf16(1.0f)), w(size_t(OC) * C, bf16(1.0f));
  std::vector<bf16> dinp(N * C);
  std::vector<float> dw(OC * C, 1.0f), db(OC, 1.0f);
  cpu::matmul_backward<bf16>({dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(), N, C, OC});
  for (auto v : dinp) ASSERT_EQ(float(v), 4.0f);  // 4096 * 2^-10
  for (float v : dw) ASSERT_EQ(v, 5.0f);          // 1 + 4096 * 2^-10
  for (float v : db) ASSERT_EQ(v, 5.0f);
}

TEST(OpsBf16Accumulation, NormStatisticsAndGains) {
  // rmsnorm (eps 0, so every value below is exact) of rows of 4096 ones: mean(x^2) = 1, rstd = 1,
  // out = 1 (a bf16 sum of squares would stop at 256: rstd 4).
  {
    const int N = 2, C = 4096;
    std::vector<bf16> x(N * C, bf16(1.0f)), out(N * C);
    std::vector<float> mean(N), rstd(N);
    cpu::norm_forward<bf16>({out.data(), mean.data(), rstd.data(), x.data(), nullptr, nullptr, N, C, 0.0f,
                             NormFunction::RMSNorm, 1.0f});
    for (float r : rstd) EXPECT_EQ(r, 1.0f);
    for (auto y : out) ASSERT_EQ(float(y), 1.0f);
  }
  // The gain gradient sums dout * xhat over N = 4096 rows: 1 + 4096 * 2^-10 = 5.
  const int N = 4096, C = 4;
  std::vector<bf16> x(N * C, bf16(1.0f)), out(N * C), dx(N * C), g(C, bf16(1.0f));
  std::vector<bf16> dout(N * C, bf16(float(0x1p-10)));
  std::vector<float> mean(N), rstd(N), dg(C, 1.0f);
  cpu::norm_forward<bf16>({out.data(), mean.data(), rstd.data(), x.data(), g.data(), nullptr, N, C, 0.0f,
                           NormFunction::RMSNorm, 1.0f});
  cpu::norm_backward<bf16>({dx.data(), dg.data(), nullptr, dout.data(), x.data(), g.data(), mean.data(), rstd.data(),
                            N, C, NormFunction::RMSNorm, 1.0f});
  for (float v : dg) EXPECT_EQ(v, 5.0f);
}

TEST(OpsBf16Accumulation, SoftmaxSums) {
  // Attention over T = 1024 equal logits: probabilities 1/(t+1), 1/1024 in the last row (a bf16
  // sum of the 1024 ones stops at 256, which would give 1/256).
  const int T = 1024, C = 8;
  std::vector<bf16> qkv(size_t(T) * 3 * C, bf16(0.0f)), out(size_t(T) * C);
  std::vector<float> att(size_t(T) * T);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < C; ++i) qkv[size_t(t) * 3 * C + 2 * C + i] = bf16(1.0f);  // v = 1
  cpu::attention_forward<bf16>({out.data(), att.data(), qkv.data(), 1, T, C, 1});
  EXPECT_EQ(float(att[size_t(T - 1) * T]), float(0x1p-10));
  EXPECT_EQ(float(att[size_t(T - 1) * T + T - 1]), float(0x1p-10));
  EXPECT_EQ(float(out[size_t(T - 1) * C]), 1.0f);
  // Cross-entropy over V = 4096 equal logits: loss log(4096), every probability 2^-12.
  const int V = 4096;
  std::vector<bf16> logits(V, bf16(0.0f));
  std::vector<int32_t> target = {7};
  float loss = 0;
  cpu::crossentropy_forward<bf16>({&loss, logits.data(), logits.data(), target.data(), 1, V, V});
  EXPECT_NEAR(loss, std::log(4096.0), 2e-6);
  EXPECT_EQ(float(logits[0]), float(0x1p-12));
}

TEST(OpsBf16Accumulation, EmbeddingAndColumnGradients) {
  // 4096 positions all on token 0: dwte[0] = 1 + 4096 * 2^-10; scale_columns' ds and lerp's dalpha
  // sum over 4096 rows the same way.
  const int B = 1, T = 4096, C = 4;
  std::vector<int32_t> tok(T, 0);
  auto dout = constant(size_t(T) * C, float(0x1p-10));
  std::vector<float> dwte(C, 1.0f);
  cpu::encoder_backward<bf16>({dwte.data(), nullptr, dout.h.data(), tok.data(), B, T, C});
  for (float v : dwte) EXPECT_EQ(v, 5.0f);

  auto ones = constant(size_t(T) * C, 1.0f);
  std::vector<bf16> s(C, bf16(1.0f)), dx(size_t(T) * C);
  std::vector<float> ds(C, 1.0f);
  cpu::scale_columns_backward<bf16>({dx.data(), ds.data(), dout.h.data(), ones.h.data(), s.data(), 1.0f, T, C});
  for (float v : ds) EXPECT_EQ(v, 5.0f);

  // lerp with a = 0.5, plain: d out / d a = g - x = 1 (g = 1, x = 0): dalpha = 1 + 4096 * 2^-10.
  std::vector<bf16> alpha(C, bf16(0.5f)), zeros(size_t(T) * C, bf16(0.0f)), dg(size_t(T) * C);
  std::vector<float> dalpha(C, 1.0f);
  cpu::lerp_backward<bf16>({dx.data(), dg.data(), dalpha.data(), dout.h.data(), zeros.data(), ones.h.data(),
                            alpha.data(), 1.0f, false, false, T, C});
  for (float v : dalpha) EXPECT_EQ(v, 5.0f);
}

// ---- the bf16 backend ---------------------------------------------------------------------------

TEST(OpsBf16, CpuBackendRunsTheKernels) {
  auto be = make_cpu_backend<bf16>();
  ASSERT_TRUE(be);
  EXPECT_EQ(be->name(), "cpu");
  EXPECT_TRUE(be->host_accessible());
  auto x = rounded(300, 38, 2.0);
  std::vector<bf16> out(300), want(300);
  be->gelu_forward({out.data(), x.h.data(), out.size()});
  cpu::gelu_forward<bf16>({want.data(), x.h.data(), want.size()});
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i].bits, want[i].bits) << i;
}
