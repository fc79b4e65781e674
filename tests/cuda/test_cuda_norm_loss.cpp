// CUDA norm and cross-entropy kernels against the CPU reference (label cuda; skips without a device).
// Odd shapes so partial warps, partial tiles and a padded vocabulary are all exercised.
#include <cstdint>
#include <cstring>
#include <tuple>

#include "backend/cpu/kernels.hpp"
#include "backend/cuda/loss.hpp"
#include "backend/cuda/norm.hpp"
#include "cuda_test_util.hpp"

using namespace ng;
using namespace ng::test;

namespace {

// Everything one norm forward+backward produces on the device, downloaded.
struct NormResult {
  std::vector<float> out, mean, rstd, dinp, dweight, dbias;
};

struct NormCase {
  int N, C;
  NormFunction fn;
  float scale;
  bool accumulate;
  std::vector<float> x, w, b, dout, dinp0, dw0, db0;  // inputs; *0: pre-filled gradient bases

  NormCase(int n, int c, NormFunction f, float s, bool acc) : N(n), C(c), fn(f), scale(s), accumulate(acc) {
    x = random_floats(size_t(N) * C, 1, 2.0);
    for (size_t i = 0; i < x.size(); ++i) x[i] += 0.5f;  // a non-zero mean, so layernorm centring matters
    w = random_floats(C, 2);
    b = random_floats(C, 3);
    dout = random_floats(size_t(N) * C, 4);
    dinp0 = random_floats(size_t(N) * C, 5);
    dw0 = random_floats(C, 6);
    db0 = random_floats(C, 7);
  }
  bool rms() const { return fn == NormFunction::RMSNorm; }

  NormResult cpu() const {
    NormResult r{std::vector<float>(x.size()), std::vector<float>(N), std::vector<float>(N), dinp0, dw0, db0};
    cpu::norm_forward<float>({r.out.data(), r.mean.data(), r.rstd.data(), x.data(), w.data(),
                              rms() ? nullptr : b.data(), N, C, 1e-5f, fn, scale});
    cpu::norm_backward<float>({r.dinp.data(), r.dweight.data(), rms() ? nullptr : r.dbias.data(), dout.data(),
                               x.data(), w.data(), r.mean.data(), r.rstd.data(), N, C, fn, scale, accumulate});
    return r;
  }

  NormResult gpu() const {
    Dev dx(x), dw(w), db(b), ddout(dout), ddinp(dinp0), ddw(dw0), ddb(db0);
    Dev out(x.size()), mean(N), rstd(N);  // poisoned: an unwritten element fails the comparison
    cuda::norm_forward<float>({out.get(), mean.get(), rstd.get(), dx.get(), dw.get(), rms() ? nullptr : db.get(),
                               N, C, 1e-5f, fn, scale});
    cuda::norm_backward<float>({ddinp.get(), ddw.get(), rms() ? nullptr : ddb.get(), ddout.get(), dx.get(), dw.get(),
                                mean.get(), rstd.get(), N, C, fn, scale, accumulate});
    return {out.host(), mean.host(), rstd.host(), ddinp.host(), ddw.host(), ddb.host()};
  }
};

}  // namespace

class CudaNorm : public ::testing::TestWithParam<std::tuple<int, NormFunction, float, bool>> {};

TEST_P(CudaNorm, MatchesCpu) {
  NG_SKIP_WITHOUT_GPU();
  const auto [C, fn, scale, accumulate] = GetParam();
  const NormCase nc(37, C, fn, scale, accumulate);
  const NormResult want = nc.cpu(), got = nc.gpu();
  EXPECT_LT(max_rel_error(got.out, want.out), kCudaFp32Rel);
  EXPECT_LT(max_rel_error(got.mean, want.mean), kCudaFp32Rel);
  EXPECT_LT(max_rel_error(got.rstd, want.rstd), kCudaFp32Rel);
  EXPECT_LT(max_rel_error(got.dinp, want.dinp), kCudaFp32Rel);
  EXPECT_LT(max_rel_error(got.dweight, want.dweight), kCudaFp32Rel);
  if (nc.rms()) {
    for (float m : got.mean) EXPECT_EQ(m, 0.0f);
    EXPECT_EQ(got.dbias, nc.db0);  // the null bias gradient is never touched (and here: not passed)
  } else {
    EXPECT_LT(max_rel_error(got.dbias, want.dbias), kCudaFp32Rel);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaNorm,
                         ::testing::Combine(::testing::Values(29, 771),
                                            ::testing::Values(NormFunction::LayerNorm, NormFunction::RMSNorm),
                                            ::testing::Values(1.0f, 0.577f), ::testing::Bool()));

// More rows than gradient chunks (300 = 60 chunks of 5 rows, 4 empty): the partition and the
// second pass are exercised, and two runs must agree bit for bit (no atomics, fixed order).
TEST(CudaNorm, ManyRowsDeterministic) {
  NG_SKIP_WITHOUT_GPU();
  for (NormFunction fn : {NormFunction::LayerNorm, NormFunction::RMSNorm}) {
    const NormCase nc(300, 771, fn, 0.577f, true);
    const NormResult want = nc.cpu(), a = nc.gpu(), b = nc.gpu();
    EXPECT_LT(max_rel_error(a.dinp, want.dinp), kCudaFp32Rel);
    EXPECT_LT(max_rel_error(a.dweight, want.dweight), kCudaFp32Rel);
    if (!nc.rms()) {
      EXPECT_LT(max_rel_error(a.dbias, want.dbias), kCudaFp32Rel);
    }
    EXPECT_TRUE(bitwise_equal(a.out, b.out));
    EXPECT_TRUE(bitwise_equal(a.rstd, b.rstd));
    EXPECT_TRUE(bitwise_equal(a.dinp, b.dinp));
    EXPECT_TRUE(bitwise_equal(a.dweight, b.dweight));
    EXPECT_TRUE(bitwise_equal(a.dbias, b.dbias));
  }
}

namespace {

struct CeCase {
  int N, V, Vp;
  float dloss;
  std::vector<float> logits;
  std::vector<int32_t> targets;

  CeCase(int n, int v, int vp) : N(n), V(v), Vp(vp), dloss(1.0f / n) {
    logits = random_floats(size_t(N) * Vp, 11, 3.0);
    // Large padded logits: if a kernel let them into the max or the sum, the results would be far off.
    for (int r = 0; r < N; ++r)
      for (int c = V; c < Vp; ++c) logits[size_t(r) * Vp + c] = 40.0f;
    Rng rng(12);
    targets.resize(N);
    for (auto& t : targets) t = int32_t(rng.below(V));
    targets[0] = V - 1;  // the last real column is a valid target
  }

  // CPU reference: losses, probs, dlogits.
  std::tuple<std::vector<float>, std::vector<float>, std::vector<float>> cpu() const {
    std::vector<float> losses(N), probs(logits.size()), d(logits.size());
    cpu::crossentropy_forward<float>({losses.data(), probs.data(), logits.data(), targets.data(), N, V, Vp});
    cpu::crossentropy_backward<float>({d.data(), probs.data(), targets.data(), dloss, N, V, Vp});
    return {losses, probs, d};
  }

  void expect_padding_zero(const std::vector<float>& m) const {
    for (int r = 0; r < N; ++r)
      for (int c = V; c < Vp; ++c) ASSERT_EQ(m[size_t(r) * Vp + c], 0.0f) << "row " << r << " col " << c;
  }
};

// A device copy of the targets (DeviceArray is neither copyable nor movable, so it is built in place).
struct DevTargets {
  cuda::DeviceArray<int32_t> a;
  explicit DevTargets(const std::vector<int32_t>& t) : a(t.size()) {
    cuda::copy_to_device(a.get(), t.data(), t.size() * sizeof(int32_t));
  }
  const int32_t* get() const { return a.get(); }
};

}  // namespace

class CudaCrossEntropy : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(CudaCrossEntropy, OutOfPlaceMatchesCpu) {
  NG_SKIP_WITHOUT_GPU();
  const auto [V, Vp] = GetParam();
  const CeCase cc(37, V, Vp);
  const auto [want_loss, want_probs, want_d] = cc.cpu();
  const DevTargets tg(cc.targets);
  Dev logits(cc.logits), losses(cc.N), probs(cc.logits.size()), d(cc.logits.size());
  cuda::crossentropy_forward<float>({losses.get(), probs.get(), logits.get(), tg.get(), cc.N, V, Vp});
  cuda::crossentropy_backward<float>({d.get(), probs.get(), tg.get(), cc.dloss, cc.N, V, Vp});
  EXPECT_LT(max_rel_error(losses.host(), want_loss), kCudaFp32Rel);
  EXPECT_LT(max_rel_error(probs.host(), want_probs), kCudaFp32Rel);
  EXPECT_LT(max_rel_error(d.host(), want_d), kCudaFp32Rel);
  EXPECT_EQ(logits.host(), cc.logits);  // the input is left alone when not aliased
  cc.expect_padding_zero(probs.host());
  cc.expect_padding_zero(d.host());
}

// The model's path: probs overwrite the logits, then dlogits overwrite the probs, in one buffer.
TEST_P(CudaCrossEntropy, InPlaceMatchesCpuAndIsDeterministic) {
  NG_SKIP_WITHOUT_GPU();
  const auto [V, Vp] = GetParam();
  const CeCase cc(37, V, Vp);
  const auto [want_loss, want_probs, want_d] = cc.cpu();
  const DevTargets tg(cc.targets);
  std::vector<float> first_loss, first_buf;
  for (int run = 0; run < 2; ++run) {
    Dev buf(cc.logits), losses(cc.N);
    cuda::crossentropy_forward<float>({losses.get(), buf.get(), buf.get(), tg.get(), cc.N, V, Vp});
    const auto probs = buf.host();
    EXPECT_LT(max_rel_error(losses.host(), want_loss), kCudaFp32Rel);
    EXPECT_LT(max_rel_error(probs, want_probs), kCudaFp32Rel);
    cc.expect_padding_zero(probs);
    cuda::crossentropy_backward<float>({buf.get(), buf.get(), tg.get(), cc.dloss, cc.N, V, Vp});
    const auto d = buf.host();
    EXPECT_LT(max_rel_error(d, want_d), kCudaFp32Rel);
    cc.expect_padding_zero(d);
    if (run == 0) {
      first_loss = losses.host();
      first_buf = d;
    } else {
      EXPECT_TRUE(bitwise_equal(losses.host(), first_loss));
      EXPECT_TRUE(bitwise_equal(d, first_buf));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaCrossEntropy,
                         ::testing::Values(std::make_tuple(61, 64), std::make_tuple(1000, 1024)));
