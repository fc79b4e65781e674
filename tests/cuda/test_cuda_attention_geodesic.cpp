// CUDA attention and geodesic kernels against the CPU reference kernels (label cuda; skips without
// a device). Odd shapes so no size is a multiple of a block or warp; outputs poisoned so a missed
// element shows; every backward run twice to check bitwise determinism (no atomics).
#include <cstring>
#include <tuple>

#include "backend/cpu/kernels.hpp"
#include "backend/cuda/attention.hpp"
#include "backend/cuda/geodesic.hpp"
#include "cuda_test_util.hpp"

using namespace ng;
using namespace ng::test;

// ---- attention -------------------------------------------------------------------------------

struct AttnShape {
  int B, T, C, NH;
};

class CudaAttention : public ::testing::TestWithParam<AttnShape> {};

TEST_P(CudaAttention, ForwardBackwardMatchCpu) {
  NG_SKIP_WITHOUT_GPU();
  const auto [B, T, C, NH] = GetParam();
  const size_t n_qkv = size_t(B) * T * 3 * C, n_out = size_t(B) * T * C, n_att = size_t(B) * NH * T * T;
  const auto qkv = random_floats(n_qkv, 11), dout = random_floats(n_out, 12);

  std::vector<float> out(n_out), att(n_att), dqkv(n_qkv, 9.0f), scratch(n_att);
  cpu::attention_forward<float>({out.data(), att.data(), qkv.data(), B, T, C, NH});
  cpu::attention_backward<float>({dqkv.data(), scratch.data(), dout.data(), qkv.data(), att.data(), B, T, C, NH});

  Dev d_qkv(qkv), d_dout(dout), d_out(n_out), d_att(n_att), d_scratch(n_att);
  cuda::attention_forward<float>({d_out.get(), d_att.get(), d_qkv.get(), B, T, C, NH});
  EXPECT_LT(max_rel_error(d_out.host(), out), kCudaFp32Rel);
  const auto g_att = d_att.host();
  EXPECT_LT(max_rel_error(g_att, att), kCudaFp32Rel);
  // The causal mask is exact: probabilities of future positions are written as 0, not small.
  for (size_t row = 0; row < size_t(B) * NH * T; ++row)
    for (int s = int(row % T) + 1; s < T; ++s) ASSERT_EQ(g_att[row * T + s], 0.0f) << "row " << row << " s " << s;

  // Backward twice into freshly poisoned buffers (dqkv is overwritten, never accumulated).
  std::vector<float> first;
  for (int run = 0; run < 2; ++run) {
    Dev d_dqkv(n_qkv), d_scr(n_att);
    cuda::attention_backward<float>(
        {d_dqkv.get(), d_scr.get(), d_dout.get(), d_qkv.get(), d_att.get(), B, T, C, NH});
    const auto got = d_dqkv.host();
    EXPECT_LT(max_rel_error(got, dqkv), kCudaFp32Rel) << "run " << run;
    if (run == 0) first = got;
    else EXPECT_TRUE(bitwise_equal(got, first)) << "attention backward is not deterministic";
  }
}

// T=33 > 32 lanes; hs=80 > 64 row threads (strided output loop); T=130 > 64 (strided scores).
INSTANTIATE_TEST_SUITE_P(Shapes, CudaAttention,
                         ::testing::Values(AttnShape{2, 7, 12, 3}, AttnShape{2, 33, 20, 5}, AttnShape{1, 130, 160, 2},
                                           AttnShape{1, 1, 4, 1}));

// ---- geodesic --------------------------------------------------------------------------------

// (N, C, a, b, decay). Row 3 has a big update (t0 clamp), row 5 a tiny stream (r < 1e-6 fallback),
// as in tests/ops/test_ops_fd.cpp. N=1300 > the backward's 1024-block partition (several rows per
// block) and C=300 > 256 threads per row.
class CudaGeodesic : public ::testing::TestWithParam<std::tuple<int, int, double, double, double>> {};

TEST_P(CudaGeodesic, ForwardBackwardMatchCpu) {
  NG_SKIP_WITHOUT_GPU();
  const auto [N, C, a0, b0, decay] = GetParam();
  const double clamp = 0.7853981633974483;
  const size_t n = size_t(N) * C;
  auto x = random_floats(n, 40, 1.5), g = random_floats(n, 41, 0.6);
  const auto dout = random_floats(n, 42);
  for (int i = 0; i < C; ++i) g[3 * C + i] *= 8.0f;
  for (int i = 0; i < C; ++i) x[5 * C + i] *= 1e-8f;
  const std::vector<float> a = {float(a0)}, b = {float(b0)};

  std::vector<float> out(n), angle(N), clamped(N), dx(n), dg(n), da = {0.25f}, db = {0.5f};
  cpu::geodesic_forward<float>({out.data(), angle.data(), clamped.data(), x.data(), g.data(), a.data(), b.data(),
                                decay, clamp, N, C});
  cpu::geodesic_backward<float>({dx.data(), dg.data(), da.data(), db.data(), dout.data(), x.data(), g.data(),
                                 a.data(), b.data(), decay, clamp, N, C});
  // The scalar gradients sum N rows: the CPU's fp32 running sum drifts more than the tolerance
  // row allows, so da and db are checked against the double reference instead.
  auto xd = to_double(x), gd = to_double(g), doutd = to_double(dout);
  std::vector<double> dxd(n), dgd(n), dad = {0.25}, dbd = {0.5}, ad = {a[0]}, bd = {b[0]};
  cpu::geodesic_backward<double>({dxd.data(), dgd.data(), dad.data(), dbd.data(), doutd.data(), xd.data(), gd.data(),
                                  ad.data(), bd.data(), decay, clamp, N, C});
  const std::vector<float> dab_want = {float(dad[0]), float(dbd[0])};

  Dev d_x(x), d_g(g), d_dout(dout), d_a(a), d_b(b), d_out(n), d_angle(N), d_clamped(N);
  cuda::geodesic_forward<float>({d_out.get(), d_angle.get(), d_clamped.get(), d_x.get(), d_g.get(), d_a.get(),
                                 d_b.get(), decay, clamp, N, C});
  const auto g_out = d_out.host();
  EXPECT_LT(max_rel_error(g_out, out), kCudaFp32Rel);
  EXPECT_LT(max_rel_error(d_angle.host(), angle), kCudaFp32Rel);
  const auto g_clamped = d_clamped.host();
  EXPECT_EQ(g_clamped, clamped);
  EXPECT_EQ(g_clamped[3], 1.0f);
  for (int i = 0; i < C; ++i) EXPECT_EQ(g_out[5 * C + i], x[5 * C + i] + g[5 * C + i]) << "fallback row, i " << i;

  std::vector<float> first_dx, first_dg, first_dab;
  for (int run = 0; run < 2; ++run) {
    Dev d_dx(n), d_dg(n), d_da(std::vector<float>{0.25f}), d_db(std::vector<float>{0.5f});  // da, db accumulate
    cuda::geodesic_backward<float>({d_dx.get(), d_dg.get(), d_da.get(), d_db.get(), d_dout.get(), d_x.get(),
                                    d_g.get(), d_a.get(), d_b.get(), decay, clamp, N, C});
    const auto gdx = d_dx.host(), gdg = d_dg.host();
    const std::vector<float> dab = {d_da.host()[0], d_db.host()[0]};
    EXPECT_LT(max_rel_error(gdx, dx), kCudaFp32Rel) << "run " << run;
    EXPECT_LT(max_rel_error(gdg, dg), kCudaFp32Rel) << "run " << run;
    EXPECT_LT(max_rel_error(dab, dab_want), kCudaFp32Rel) << "run " << run << ": da " << dab[0] << " db " << dab[1];
    for (int i = 0; i < C; ++i) EXPECT_EQ(gdx[5 * C + i], dout[5 * C + i]) << "fallback row passes dout through";
    if (run == 0) {
      first_dx = gdx, first_dg = gdg, first_dab = dab;
    } else {
      EXPECT_TRUE(bitwise_equal(gdx, first_dx) && bitwise_equal(gdg, first_dg) && bitwise_equal(dab, first_dab))
          << "geodesic backward is not deterministic";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Rows, CudaGeodesic,
                         ::testing::Values(std::tuple{9, 7, 1.0, 0.02, 1.0}, std::tuple{9, 7, 1.3, 0.1, 0.5},
                                           std::tuple{9, 7, 3.0, 0.4, 1.0}, std::tuple{1300, 300, 0.8, -0.05, 1.0},
                                           std::tuple{1300, 300, 3.0, 0.4, 1.0}));
