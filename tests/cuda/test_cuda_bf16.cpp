// bf16 mixed precision on the GPU (label cuda; skips without a device): every bf16 launcher against
// the fp32 CPU reference kernel (ng::cpu::*<float>) run on the same inputs, which are drawn
// bf16-representable so that both sides see exactly the same numbers. What a bf16 kernel may then
// differ by is its one rounding per stored element, plus fp32 accumulation-order noise (the table
// below); parameter gradients, statistics, losses and AdamW's state are fp32 and held to the fp32
// row. Long column sums (parameter gradients over many rows) are checked against the CPU's double
// kernel, as the fp32 tests do. Outputs are poisoned before each run, and every op runs twice and
// must repeat bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "backend/cpu/kernels.hpp"
#include "backend/cuda/cuda_backend.hpp"
#include "backend/cuda/encoder.hpp"
#include "backend/cuda/geodesic.hpp"
#include "backend/cuda/lerp.hpp"
#include "backend/cuda/linear.hpp"
#include "backend/cuda/loss.hpp"
#include "backend/cuda/norm.hpp"
#include "backend/cuda/optim.hpp"
#include "backend/cuda/pointwise.hpp"
#include "backend/cuda/rope.hpp"
#include "backend/registry.hpp"
#include "core/errors.hpp"
#include "core/precision.hpp"
#include "cuda_test_util.hpp"

using namespace ng;
using namespace ng::test;

namespace {

// ---- tolerances (one table, DESIGN.md style 7) ---------------------------------------------------
// A bf16 value has 8 significant bits: a round-to-nearest store of v is within u |v|, u = 2^-8 (the
// unit roundoff). The GPU's fp32 value before the store differs from the CPU's fp32 result only by
// summation order (~1e-6 relative), which can move it across a rounding boundary without leaving
// one u of the CPU's value: hence 1.01 u. The floor (the fp32 row, relative to max(1, max |want|))
// covers elements that cancel to near zero, where order noise is all there is.
struct Tol {
  double store;  // times |want_i|
  double floor;  // times the element's magnitude: max(1, max |want|), or a per-element one
};
constexpr double kBf16Unit = 1.0 / 256;
constexpr Tol kStore{1.01 * kBf16Unit, kCudaFp32Rel};
constexpr Tol kFp32{0.0, kCudaFp32Rel};
// Tensor-core gemms accumulate in fp32, but their adds may truncate instead of rounding: each of
// the K adds can lose up to 2^-23 of the running magnitude, at most K 2^-23 sum_k |a_k b_k| in all
// (doubled for the CPU's own fp32 rounding), per element. Against bf16 accumulation (an error of
// 2^-8 per add) this is 2^15 times tighter, so a bf16 accumulator fails at any K.
Tol gemm_tol(int K, bool bf16_out) { return {bf16_out ? kStore.store : 0.0, (K + 2) * std::ldexp(1.0, -22)}; }

// Every element within tol.store |want_i| + tol.floor mag_i; reports the count and the worst one.
void expect_within(const std::vector<float>& got, const std::vector<float>& want, Tol tol, const std::string& what,
                   const std::vector<float>* mag = nullptr) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1;
  for (float w : want) scale = std::max(scale, std::abs(double(w)));
  size_t bad = 0, worst = 0;
  double worst_ratio = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double w = want[i], err = std::abs(double(got[i]) - w);
    const double bound = tol.store * std::abs(w) + tol.floor * (mag ? double((*mag)[i]) : scale);
    const bool ok = err <= bound;  // false for NaN
    bad += !ok;
    const double ratio = ok ? (bound > 0 ? err / bound : 0) : HUGE_VAL;
    if (ratio > worst_ratio || (!ok && bad == 1)) worst_ratio = ratio, worst = i;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " elements out of tolerance; worst [" << worst
                     << "] got " << got[worst] << " want " << want[worst];
}

// ---- host data ----------------------------------------------------------------------------------

std::vector<bf16> to_bf16(const std::vector<float>& v) { return {v.begin(), v.end()}; }
std::vector<float> widen(const std::vector<bf16>& v) { return {v.begin(), v.end()}; }
std::vector<float> abs_of(std::vector<float> v) {
  for (auto& x : v) x = std::abs(x);
  return v;
}

// Normal(mean, std) values rounded to bf16 (returned as the floats they are exactly).
std::vector<float> bf16_floats(size_t n, uint64_t seed, double std = 1.0, double mean = 0.0) {
  auto v = random_floats(n, seed, std);
  for (auto& x : v) x = float(bf16(x + float(mean)));
  return v;
}

template <class E>
bool same_bits(const std::vector<E>& a, const std::vector<E>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(E)) == 0;
}

// A device array of any element type: from host data, or poisoned (bytes 0x7f: 3.4e38 in float,
// 3.4e38 in bf16 too) so that an element a kernel forgets to write fails the comparison.
template <class E>
class DevArr {
 public:
  explicit DevArr(const std::vector<E>& h) : a_(h.size()) {
    if (!h.empty()) cuda::copy_to_device(a_.get(), h.data(), bytes());
  }
  explicit DevArr(size_t n) : a_(n) { cuda::fill_bytes(a_.get(), 0x7f, bytes()); }
  E* get() const { return a_.get(); }
  std::vector<E> host() const {
    std::vector<E> v(a_.size());
    cuda::synchronize();
    if (!v.empty()) cuda::copy_to_host(v.data(), a_.get(), bytes());
    return v;
  }
  size_t bytes() const { return a_.size() * sizeof(E); }

 private:
  cuda::DeviceArray<E> a_;
};
using DevF = DevArr<float>;

// bf16 storage on the device, from (bf16-exact) floats; host() widens back to float.
class DevB : public DevArr<bf16> {
 public:
  explicit DevB(const std::vector<float>& h) : DevArr<bf16>(to_bf16(h)) {}
  explicit DevB(size_t n) : DevArr<bf16>(n) {}
  std::vector<float> hostf() const { return widen(host()); }
};

struct DevI32 {
  explicit DevI32(const std::vector<int32_t>& h) : a(h.size()) {
    cuda::copy_to_device(a.get(), h.data(), h.size() * sizeof(int32_t));
  }
  cuda::DeviceArray<int32_t> a;
};

std::vector<float> to_f(const std::vector<double>& v) { return {v.begin(), v.end()}; }
std::vector<double> to_d(const std::vector<float>& v) { return {v.begin(), v.end()}; }

}  // namespace

// ---- encoder -----------------------------------------------------------------------------------

TEST(CudaBf16Encoder, MatchesCpuAndIsDeterministic) {
  NG_SKIP_WITHOUT_GPU();
  const int B = 3, T = 7, C = 13, Vp = 12, maxT = 9;
  const std::vector<int32_t> tokens = {5, 0, 5, 10, 3, 5, 0, 10, 10, 1, 0, 5, 7, 2, 0, 0, 5, 10, 9, 3, 5};
  const auto wte = bf16_floats(size_t(Vp) * C, 31), wpe = bf16_floats(size_t(maxT) * C, 32);
  const auto dout = bf16_floats(size_t(B) * T * C, 33);
  const auto dwte0 = random_floats(size_t(Vp) * C, 34), dwpe0 = random_floats(size_t(maxT) * C, 35);  // fp32
  std::vector<float> out(size_t(B) * T * C), dwte = dwte0, dwpe = dwpe0;
  cpu::encoder_forward<float>({out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C});
  cpu::encoder_backward<float>({dwte.data(), dwpe.data(), dout.data(), tokens.data(), B, T, C});

  DevI32 tok(tokens);
  DevB d_wte(wte), d_wpe(wpe), d_dout(dout);
  std::vector<float> first_out, first_wte, first_wpe;
  for (int run = 0; run < 2; ++run) {
    DevB g_out(out.size());
    DevF g_wte(dwte0), g_wpe(dwpe0);
    cuda::encoder_forward<bf16>({g_out.get(), tok.a.get(), d_wte.get(), d_wpe.get(), B, T, C});
    cuda::encoder_backward<bf16>({g_wte.get(), g_wpe.get(), d_dout.get(), tok.a.get(), B, T, C});
    const auto ho = g_out.hostf(), hte = g_wte.host(), hpe = g_wpe.host();
    expect_within(ho, out, kStore, "out");
    expect_within(hte, dwte, kFp32, "dwte (fp32)");
    expect_within(hpe, dwpe, kFp32, "dwpe (fp32)");
    if (run == 0) {
      first_out = ho, first_wte = hte, first_wpe = hpe;
    } else {
      EXPECT_TRUE(same_bits(ho, first_out) && same_bits(hte, first_wte) && same_bits(hpe, first_wpe))
          << "encoder not deterministic";
    }
  }
  // Without a position table (RoPE) the output is a copy of wte's rows: exact.
  DevB g_out(out.size());
  cuda::encoder_forward<bf16>({g_out.get(), tok.a.get(), d_wte.get(), nullptr, B, T, C});
  const auto ho = g_out.hostf();
  for (size_t bt = 0; bt < tokens.size(); ++bt)
    for (int c = 0; c < C; ++c) ASSERT_EQ(ho[bt * C + c], wte[size_t(tokens[bt]) * C + c]) << bt << "," << c;
}

// ---- linear (cublasGemmEx) ---------------------------------------------------------------------

namespace {
struct LinShape {
  int N, C, OC;
  double mean;  // inputs' mean: > 0 makes the sums grow with K, which a bf16 accumulator cannot follow
};
// C = 3072: the forward's inner dimension; OC = 3072: dinp's; N = 257: dweight's.
const LinShape kLinShapes[] = {{37, 29, 53, 0.0}, {257, 3072, 129, 0.5}, {65, 97, 3072, 0.5}, {1, 3, 1, 0.0}};
}  // namespace

TEST(CudaBf16Linear, ForwardMatchesCpu) {
  NG_SKIP_WITHOUT_GPU();
  for (const auto& s : kLinShapes)
    for (bool with_bias : {true, false}) {
      const std::string what = "N " + std::to_string(s.N) + " C " + std::to_string(s.C) + " OC " + std::to_string(s.OC) +
                               (with_bias ? " bias" : "");
      const auto inp = bf16_floats(size_t(s.N) * s.C, 1, 1.0, s.mean), w = bf16_floats(size_t(s.OC) * s.C, 2, 1.0, s.mean);
      const auto bias = bf16_floats(s.OC, 3);
      std::vector<float> want(size_t(s.N) * s.OC), mag(want.size());
      cpu::matmul_forward<float>({want.data(), inp.data(), w.data(), with_bias ? bias.data() : nullptr, s.N, s.C, s.OC});
      const auto ai = abs_of(inp), aw = abs_of(w), ab = abs_of(bias);
      cpu::matmul_forward<float>({mag.data(), ai.data(), aw.data(), with_bias ? ab.data() : nullptr, s.N, s.C, s.OC});
      DevB d_inp(inp), d_w(w), d_b(bias);
      std::vector<float> first;
      for (int run = 0; run < 2; ++run) {
        DevB out(want.size());
        cuda::matmul_forward<bf16>({out.get(), d_inp.get(), d_w.get(), with_bias ? d_b.get() : nullptr, s.N, s.C, s.OC});
        const auto got = out.hostf();
        expect_within(got, want, gemm_tol(s.C, true), what, &mag);
        if (run == 0) first = got;
        else EXPECT_TRUE(same_bits(got, first)) << what << ": forward not deterministic";
      }
    }
}

TEST(CudaBf16Linear, BackwardMatchesCpuWithFp32ParameterGradients) {
  NG_SKIP_WITHOUT_GPU();
  for (const auto& s : kLinShapes)
    for (bool accumulate : {false, true}) {
      const std::string what = "N " + std::to_string(s.N) + " C " + std::to_string(s.C) + " OC " + std::to_string(s.OC) +
                               (accumulate ? " acc" : "");
      const size_t nin = size_t(s.N) * s.C, nw = size_t(s.OC) * s.C, nout = size_t(s.N) * s.OC;
      const auto inp = bf16_floats(nin, 11, 1.0, s.mean), w = bf16_floats(nw, 12, 1.0, s.mean);
      const auto dout = bf16_floats(nout, 13, 1.0, s.mean);
      const auto dinp0 = bf16_floats(nin, 14);                           // bf16 storage
      const auto dw0 = random_floats(nw, 15), db0 = random_floats(s.OC, 16);  // fp32 parameter gradients
      std::vector<float> dinp = dinp0, dw = dw0, db = db0;
      cpu::matmul_backward<float>({dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(), s.N, s.C, s.OC,
                                   accumulate});
      // Per-element magnitudes: the same products over absolute values.
      const auto ai = abs_of(inp), aw = abs_of(w), ad = abs_of(dout);
      std::vector<float> mag_i = accumulate ? abs_of(dinp0) : std::vector<float>(nin, 0.f), mag_w = abs_of(dw0),
                         mag_b = abs_of(db0);
      cpu::matmul_backward<float>({mag_i.data(), mag_w.data(), mag_b.data(), ad.data(), ai.data(), aw.data(), s.N, s.C,
                                   s.OC, accumulate});
      DevB d_inp(inp), d_w(w), d_dout(dout);
      std::vector<float> first_i, first_w, first_b;
      for (int run = 0; run < 2; ++run) {
        DevB g_inp = accumulate ? DevB(dinp0) : DevB(nin);  // poisoned unless accumulating
        DevF g_w(dw0), g_b(db0);
        cuda::matmul_backward<bf16>({g_inp.get(), g_w.get(), g_b.get(), d_dout.get(), d_inp.get(), d_w.get(), s.N, s.C,
                                     s.OC, accumulate});
        const auto hi = g_inp.hostf(), hw = g_w.host(), hb = g_b.host();
        expect_within(hi, dinp, gemm_tol(s.OC, true), what + ": dinp", &mag_i);
        expect_within(hw, dw, gemm_tol(s.N, false), what + ": dweight (fp32)", &mag_w);
        expect_within(hb, db, gemm_tol(s.N, false), what + ": dbias (fp32)", &mag_b);
        if (run == 0) {
          first_i = hi, first_w = hw, first_b = hb;
        } else {
          EXPECT_TRUE(same_bits(hi, first_i) && same_bits(hw, first_w) && same_bits(hb, first_b))
              << what << ": backward not deterministic";
        }
      }
      DevF g_w(dw0);  // no dinp, no dbias: dweight alone
      cuda::matmul_backward<bf16>({nullptr, g_w.get(), nullptr, d_dout.get(), d_inp.get(), d_w.get(), s.N, s.C, s.OC});
      expect_within(g_w.host(), dw, gemm_tol(s.N, false), what + ": dweight alone", &mag_w);
    }
}

// ---- norms ---------------------------------------------------------------------------------------

namespace {
struct NormCase {
  int N, C, group;
  NormFunction fn;
  bool with_weight, accumulate;
  float scale;
};
void PrintTo(const NormCase& k, std::ostream* os) {
  *os << "N" << k.N << " C" << k.C << " fn" << int(k.fn) << " group" << k.group << (k.with_weight ? "" : " gainless")
      << (k.accumulate ? " acc" : "") << " scale" << k.scale;
}
}  // namespace

class CudaBf16Norm : public ::testing::TestWithParam<NormCase> {};

TEST_P(CudaBf16Norm, MatchesCpuAndIsDeterministic) {
  NG_SKIP_WITHOUT_GPU();
  const NormCase k = GetParam();
  const int N = k.N, C = k.C;
  const bool dyt = k.fn == NormFunction::DyT, with_bias = k.fn == NormFunction::LayerNorm || dyt;
  const size_t n = size_t(N) * C, stats = dyt ? size_t(N) : size_t(N) * (k.group > 0 ? C / k.group : 1);
  const auto x = bf16_floats(n, 1, 2.0, 0.5), w = bf16_floats(C, 2), b = bf16_floats(C, 3), dout = bf16_floats(n, 4);
  const auto dinp0 = bf16_floats(n, 5), dw0 = random_floats(C, 6), db0 = random_floats(C, 7);
  const std::vector<float> alpha = {float(bf16(0.8f))}, da0 = {0.25f};

  // The fp32 CPU reference, and its double twin for the parameter gradients (sums over N rows).
  std::vector<float> out(n), mean(stats), rstd(stats), dinp = dinp0, dw = dw0, db = db0, da = da0;
  const NormForwardArgs<float> fa{.out = out.data(), .mean = mean.data(), .rstd = rstd.data(), .inp = x.data(),
                                  .weight = k.with_weight ? w.data() : nullptr, .bias = with_bias ? b.data() : nullptr,
                                  .N = N, .C = C, .eps = 1e-5f, .fn = k.fn, .scale = k.scale, .alpha = alpha.data(),
                                  .group = k.group};
  cpu::norm_forward<float>(fa);
  cpu::norm_backward<float>({.dinp = dinp.data(), .dweight = k.with_weight ? dw.data() : nullptr,
                             .dbias = with_bias ? db.data() : nullptr, .dout = dout.data(), .inp = x.data(),
                             .weight = fa.weight, .mean = mean.data(), .rstd = rstd.data(), .N = N, .C = C, .fn = k.fn,
                             .scale = k.scale, .accumulate = k.accumulate, .alpha = alpha.data(), .dalpha = da.data(),
                             .group = k.group});
  const auto xd = to_d(x), wd = to_d(w), bd = to_d(b), dyd = to_d(dout), ald = to_d(alpha);
  std::vector<double> outd(n), meand(stats), rstdd(stats), dinpd(n), dwd = to_d(dw0), dbd = to_d(db0), dad = to_d(da0);
  cpu::norm_forward<double>({.out = outd.data(), .mean = meand.data(), .rstd = rstdd.data(), .inp = xd.data(),
                             .weight = k.with_weight ? wd.data() : nullptr, .bias = with_bias ? bd.data() : nullptr,
                             .N = N, .C = C, .eps = 1e-5f, .fn = k.fn, .scale = k.scale, .alpha = ald.data(),
                             .group = k.group});
  cpu::norm_backward<double>({.dinp = dinpd.data(), .dweight = k.with_weight ? dwd.data() : nullptr,
                              .dbias = with_bias ? dbd.data() : nullptr, .dout = dyd.data(), .inp = xd.data(),
                              .weight = k.with_weight ? wd.data() : nullptr, .mean = meand.data(),
                              .rstd = rstdd.data(), .N = N, .C = C, .fn = k.fn, .scale = k.scale, .alpha = ald.data(),
                              .dalpha = dad.data(), .group = k.group});
  // dalpha sums N*C terms: its scale is the sum of their magnitudes.
  double da_mag = std::abs(da0[0]);
  if (dyt)
    for (size_t i = 0; i < n; ++i) {
      const double th = std::tanh(ald[0] * xd[i]), g = k.with_weight ? wd[i % C] : 1.0;
      da_mag += std::abs(dyd[i] * k.scale * g * xd[i] * (1 - th * th));
    }

  DevB d_x(x), d_w(w), d_b(b), d_dout(dout), d_alpha(alpha);
  std::vector<std::vector<float>> first;
  for (int run = 0; run < 2; ++run) {
    DevB g_out(n);
    DevF g_mean(stats), g_rstd(stats);
    const NormForwardArgs<bf16> ga{.out = g_out.get(), .mean = g_mean.get(), .rstd = g_rstd.get(), .inp = d_x.get(),
                                   .weight = k.with_weight ? d_w.get() : nullptr,
                                   .bias = with_bias ? d_b.get() : nullptr, .N = N, .C = C, .eps = 1e-5f, .fn = k.fn,
                                   .scale = k.scale, .alpha = d_alpha.get(), .group = k.group};
    cuda::norm_forward<bf16>(ga);
    DevB g_dinp = k.accumulate ? DevB(dinp0) : DevB(n);
    DevF g_dw(dw0), g_db(db0), g_da(da0);
    cuda::norm_backward<bf16>({.dinp = g_dinp.get(), .dweight = k.with_weight ? g_dw.get() : nullptr,
                               .dbias = with_bias ? g_db.get() : nullptr, .dout = d_dout.get(), .inp = d_x.get(),
                               .weight = ga.weight, .mean = g_mean.get(), .rstd = g_rstd.get(), .N = N, .C = C,
                               .fn = k.fn, .scale = k.scale, .accumulate = k.accumulate, .alpha = d_alpha.get(),
                               .dalpha = g_da.get(), .group = k.group});
    std::vector<std::vector<float>> got = {g_out.hostf(), g_mean.host(), g_rstd.host(), g_dinp.hostf(),
                                           g_dw.host(),   g_db.host(),   g_da.host()};
    expect_within(got[0], out, kStore, "out");
    expect_within(got[1], mean, kFp32, "mean (fp32)");
    expect_within(got[2], rstd, kFp32, "rstd (fp32)");
    expect_within(got[3], dinp, kStore, "dinp");
    expect_within(got[4], k.with_weight ? to_f(dwd) : dw0, kFp32, "dweight (fp32)");
    expect_within(got[5], with_bias ? to_f(dbd) : db0, kFp32, "dbias (fp32)");
    EXPECT_LE(std::abs(double(got[6][0]) - dad[0]), kCudaFp32Rel * da_mag) << "dalpha " << got[6][0] << " want " << dad[0];
    if (run == 0) first = got;
    else
      for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(same_bits(got[i], first[i])) << "output " << i << " differs";
  }
}

// Whole rows (29, 771 columns), per-head groups (l2 of 96 = 3 x 32, gain-less), 300 rows (more than
// the 64 gradient chunks), DyT with and without a gain.
INSTANTIATE_TEST_SUITE_P(Cases, CudaBf16Norm,
                         ::testing::Values(NormCase{37, 771, 0, NormFunction::LayerNorm, true, false, 1.0f},
                                           NormCase{37, 29, 0, NormFunction::LayerNorm, true, true, 0.577f},
                                           NormCase{300, 771, 0, NormFunction::RMSNorm, true, true, 1.0f},
                                           NormCase{37, 96, 32, NormFunction::L2, false, false, 1.0f},
                                           NormCase{37, 96, 32, NormFunction::RMSNorm, true, true, 1.0f},
                                           NormCase{300, 771, 0, NormFunction::DyT, true, true, 0.577f},
                                           NormCase{37, 29, 0, NormFunction::DyT, false, false, 1.0f}));

// ---- attention (through the bf16 backend: flash for hs <= 128, naive above) --------------------

namespace {
struct AttnCase {
  int B, T, C, NH;
  bool sharp;  // nGPT's scale sqrt(hs) instead of the default 1/sqrt(hs)
};
void PrintTo(const AttnCase& s, std::ostream* os) {
  *os << "B" << s.B << " T" << s.T << " C" << s.C << " NH" << s.NH << (s.sharp ? " sharp" : "");
}

// The flash backward's own math in double on the downloaded bf16 `out`: delta = dout . out uses
// the stored (rounded) output, as every flash kernel does, so dq and dk carry that rounding; the
// fp32 CPU kernel (which never sees out) cannot stand for it, this can.
std::vector<double> flash_backward_reference(const AttnCase& s, double sc, const std::vector<float>& qkv,
                                             const std::vector<float>& dout, const std::vector<float>& out) {
  const int T = s.T, C = s.C, NH = s.NH, hs = C / NH, C3 = 3 * C;
  std::vector<double> dqkv(qkv.size(), 0.0), z(T);
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < NH; ++h) {
      auto q = [&](int t, int i) { return double(qkv[(size_t(b) * T + t) * C3 + h * hs + i]); };
      auto k = [&](int t, int i) { return double(qkv[(size_t(b) * T + t) * C3 + C + h * hs + i]); };
      auto v = [&](int t, int i) { return double(qkv[(size_t(b) * T + t) * C3 + 2 * C + h * hs + i]); };
      auto dy = [&](int t, int i) { return double(dout[(size_t(b) * T + t) * C + h * hs + i]); };
      auto g = [&](int t, int part, int i) -> double& { return dqkv[(size_t(b) * T + t) * C3 + part * C + h * hs + i]; };
      for (int t = 0; t < T; ++t) {
        double mx = -HUGE_VAL, sum = 0, delta = 0;
        for (int u = 0; u <= t; ++u) {
          double d = 0;
          for (int i = 0; i < hs; ++i) d += q(t, i) * k(u, i);
          z[u] = sc * d;
          mx = std::max(mx, z[u]);
        }
        for (int u = 0; u <= t; ++u) sum += std::exp(z[u] - mx);
        for (int i = 0; i < hs; ++i) delta += dy(t, i) * double(out[(size_t(b) * T + t) * C + h * hs + i]);
        for (int u = 0; u <= t; ++u) {
          const double p = std::exp(z[u] - mx) / sum;
          double dp = 0;
          for (int i = 0; i < hs; ++i) dp += dy(t, i) * v(u, i);
          const double ds = p * (dp - delta);
          for (int i = 0; i < hs; ++i) {
            g(t, 0, i) += sc * ds * k(u, i);
            g(u, 1, i) += sc * ds * q(t, i);
            g(u, 2, i) += p * dy(t, i);
          }
        }
      }
    }
  return dqkv;
}
}  // namespace

class CudaBf16Attention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(CudaBf16Attention, MatchesCpuAndIsDeterministic) {
  NG_SKIP_WITHOUT_GPU();
  const AttnCase s = GetParam();
  const int B = s.B, T = s.T, C = s.C, NH = s.NH, hs = C / NH;
  const bool flash = hs <= 128;
  const double scale = s.sharp ? std::sqrt(double(hs)) : 0, sc = scale != 0 ? scale : 1 / std::sqrt(double(float(hs)));
  // Sharp scores (hs times q.k) make the fp32 exponentials' rounding noise larger: as in the fp32
  // flash test, 5 times the fp32 row, with q, k, v of std 0.5 to keep the scores near those of
  // that test (nGPT's q, k are unit vectors, their scores at most sqrt(hs)).
  const Tol tol{kStore.store, s.sharp ? 5 * kCudaFp32Rel : kCudaFp32Rel};
  const size_t n_qkv = size_t(B) * T * 3 * C, n_out = size_t(B) * T * C, n_att = size_t(B) * NH * T * T;
  const auto qkv = bf16_floats(n_qkv, 21, s.sharp ? 0.5 : 1.0), dout = bf16_floats(n_out, 22);
  std::vector<float> out(n_out), att(n_att), dqkv(n_qkv), scratch(n_att);
  cpu::attention_forward<float>({out.data(), att.data(), qkv.data(), B, T, C, NH, scale});
  cpu::attention_backward<float>({dqkv.data(), scratch.data(), dout.data(), qkv.data(), att.data(), B, T, C, NH, scale});

  const auto be = make_cuda_backend_bf16(0);
  const size_t n_state = be->attention_state_size(B, T, C, NH), n_scr = be->attention_scratch_size(B, T, C, NH);
  const size_t values = flash ? size_t(B) * NH * T : n_att;  // fp32 values (stat_t<bf16>)
  EXPECT_EQ(n_state, values);
  EXPECT_EQ(n_scr, values);
  Buffer<float> arena(*be, n_state + n_scr);
  float* d_att = arena.data();
  float* d_scr = d_att + n_state;
  cuda::fill_bytes(arena.data(), 0x7f, arena.size() * sizeof(float));
  DevB d_qkv(qkv), d_dout(dout), d_out(n_out);
  be->attention_forward({d_out.get(), d_att, d_qkv.get(), B, T, C, NH, scale});
  const auto g_out = d_out.hostf();
  expect_within(g_out, out, tol, "out");
  const std::vector<float> want = flash ? to_f(flash_backward_reference(s, sc, qkv, dout, g_out)) : dqkv;

  std::vector<float> first;
  for (int run = 0; run < 2; ++run) {
    DevB d_dqkv(n_qkv);
    be->attention_backward({d_dqkv.get(), d_scr, d_dout.get(), d_qkv.get(), d_att, B, T, C, NH, scale, d_out.get()});
    const auto got = d_dqkv.hostf();
    expect_within(got, want, tol, "dqkv run " + std::to_string(run));
    if (flash) {  // dv never uses out: against the fp32 CPU kernel as well
      std::vector<float> gv, wv;
      for (size_t i = 0; i < n_qkv; ++i)
        if (i % (3 * C) >= size_t(2 * C)) gv.push_back(got[i]), wv.push_back(dqkv[i]);
      expect_within(gv, wv, tol, "dv against the CPU");
    }
    if (run == 0) first = got;
    else EXPECT_TRUE(same_bits(got, first)) << "attention backward not deterministic";
  }
}

// Flash: hs 4 (T 33: a partial tile), hs 80 (T 130: five tiles), hs 64 sharp. Naive: hs 136.
INSTANTIATE_TEST_SUITE_P(Shapes, CudaBf16Attention,
                         ::testing::Values(AttnCase{2, 33, 20, 5, false}, AttnCase{1, 130, 160, 2, false},
                                           AttnCase{2, 65, 128, 2, true}, AttnCase{1, 37, 272, 2, false},
                                           AttnCase{1, 37, 272, 2, true}));

// ---- pointwise -----------------------------------------------------------------------------------

TEST(CudaBf16Pointwise, GeluResidualScaleSwigluMatchCpu) {
  NG_SKIP_WITHOUT_GPU();
  const size_t n = 1237;
  const float alpha = 0.37f;
  const auto x = bf16_floats(n, 41, 2.0), g = bf16_floats(n, 42), skip = bf16_floats(n, 43), base = bf16_floats(n, 44);
  DevB d_x(x), d_g(g), d_skip(skip);
  std::vector<float> y(n);
  cpu::gelu_forward<float>({y.data(), x.data(), n});
  DevB out(n);
  cuda::gelu_forward<bf16>({out.get(), d_x.get(), n});
  expect_within(out.hostf(), y, kStore, "gelu");
  for (bool acc : {false, true}) {
    std::vector<float> dx = base;
    cpu::gelu_backward<float>({dx.data(), x.data(), g.data(), n, acc});
    DevB d = acc ? DevB(base) : DevB(n);
    cuda::gelu_backward<bf16>({d.get(), d_x.get(), d_g.get(), n, acc});
    expect_within(d.hostf(), dx, kStore, acc ? "gelu backward (acc)" : "gelu backward");

    std::vector<float> sc = base;
    cpu::scale<float>({sc.data(), x.data(), alpha, n, acc});
    DevB ds = acc ? DevB(base) : DevB(n);
    cuda::scale<bf16>({ds.get(), d_x.get(), alpha, n, acc});
    expect_within(ds.hostf(), sc, kStore, acc ? "scale (acc)" : "scale");

    std::vector<float> r(n);
    cpu::residual<float>({r.data(), x.data(), g.data(), acc ? skip.data() : nullptr, alpha, n});
    DevB d_res(x);  // in place over x, the residual stream's update
    cuda::residual<bf16>({d_res.get(), d_res.get(), d_g.get(), acc ? d_skip.get() : nullptr, alpha, n});
    expect_within(d_res.hostf(), r, kStore, acc ? "residual (skip)" : "residual");
  }
  const int N = 37, H = 29;
  auto inp = bf16_floats(size_t(N) * 2 * H, 45, 2.0);
  inp[0] = -100.0f;  // silu of a large negative: 0, not NaN
  const auto dout = bf16_floats(size_t(N) * H, 46);
  std::vector<float> so(size_t(N) * H), sd(inp.size());
  cpu::swiglu_forward<float>({so.data(), inp.data(), N, H});
  cpu::swiglu_backward<float>({sd.data(), inp.data(), dout.data(), N, H});
  DevB d_inp(inp), d_dout(dout), d_so(so.size()), d_sd(sd.size());
  cuda::swiglu_forward<bf16>({d_so.get(), d_inp.get(), N, H});
  cuda::swiglu_backward<bf16>({d_sd.get(), d_inp.get(), d_dout.get(), N, H});
  expect_within(d_so.hostf(), so, kStore, "swiglu");
  expect_within(d_sd.hostf(), sd, kStore, "swiglu backward");
}

TEST(CudaBf16Pointwise, ScaleColumnsAndCopy2dMatchCpu) {
  NG_SKIP_WITHOUT_GPU();
  const int N = 300, W = 771;
  const float k = 0.37f;
  const size_t n = size_t(N) * W;
  const auto x = bf16_floats(n, 51), s = bf16_floats(W, 52), dout = bf16_floats(n, 53), dx0 = bf16_floats(n, 54);
  const auto ds0 = random_floats(W, 55);
  std::vector<float> out(n), dx = dx0;
  cpu::scale_columns_forward<float>({out.data(), x.data(), s.data(), k, N, W});
  cpu::scale_columns_backward<float>({dx.data(), nullptr, dout.data(), x.data(), s.data(), k, N, W, true});
  std::vector<double> ds_d = to_d(ds0), dx_d(n);
  const auto xd = to_d(x), sd = to_d(s), dyd = to_d(dout);
  cpu::scale_columns_backward<double>({dx_d.data(), ds_d.data(), dyd.data(), xd.data(), sd.data(), double(k), N, W});
  DevB d_x(x), d_s(s), d_out(n);
  cuda::scale_columns_forward<bf16>({d_out.get(), d_x.get(), d_s.get(), k, N, W});
  expect_within(d_out.hostf(), out, kStore, "scale_columns");
  std::vector<float> first;
  for (int run = 0; run < 2; ++run) {
    DevB d_dout(dout), d_dx(dx0);
    DevF d_ds(ds0);
    cuda::scale_columns_backward<bf16>({d_dx.get(), d_ds.get(), d_dout.get(), d_x.get(), d_s.get(), k, N, W, true});
    expect_within(d_dx.hostf(), dx, kStore, "scale_columns dx (acc)");
    const auto g_ds = d_ds.host();
    expect_within(g_ds, to_f(ds_d), kFp32, "scale_columns ds (fp32)");
    if (run == 0) first = g_ds;
    else EXPECT_TRUE(same_bits(g_ds, first)) << "ds not deterministic";
  }
  // copy2d: a plain copy is exact; an accumulating one is one rounded fp32 add.
  const int R = 37, Cq = 29;
  const auto qkv = bf16_floats(size_t(R) * 3 * Cq, 56), dst0 = bf16_floats(size_t(R) * Cq, 57);
  for (bool acc : {false, true}) {
    std::vector<float> want = dst0;
    cpu::copy2d<float>({want.data(), Cq, qkv.data() + Cq, 3 * Cq, R, Cq, acc});
    DevB d_qkv(qkv), d_dst(dst0);
    cuda::copy2d<bf16>({d_dst.get(), Cq, d_qkv.get() + Cq, 3 * Cq, R, Cq, acc});
    const auto got = d_dst.hostf();
    if (acc) expect_within(got, want, kStore, "copy2d (acc)");
    else EXPECT_TRUE(same_bits(got, want)) << "copy2d must copy exactly";
  }
}

// ---- cross-entropy -------------------------------------------------------------------------------

TEST(CudaBf16CrossEntropy, InPlaceMatchesCpuAndIsDeterministic) {
  NG_SKIP_WITHOUT_GPU();
  const int N = 37, V = 1000, Vp = 1024;
  const float dloss = 1.0f / N;
  auto logits = bf16_floats(size_t(N) * Vp, 61, 3.0);
  for (int r = 0; r < N; ++r)
    for (int c = V; c < Vp; ++c) logits[size_t(r) * Vp + c] = 40.0f;  // padding: must stay out of max and sum
  Rng rng(62);
  std::vector<int32_t> targets(N);
  for (auto& t : targets) t = int32_t(rng.below(V));
  targets[0] = V - 1;
  std::vector<float> losses(N), probs(logits.size());
  cpu::crossentropy_forward<float>({losses.data(), probs.data(), logits.data(), targets.data(), N, V, Vp});
  DevI32 d_t(targets);
  std::vector<float> first_loss, first_d;
  for (int run = 0; run < 2; ++run) {
    DevB buf(logits);  // the model's path: probs over the logits, then dlogits over the probs
    DevF d_loss(N);
    cuda::crossentropy_forward<bf16>({d_loss.get(), buf.get(), buf.get(), d_t.a.get(), N, V, Vp});
    const auto g_loss = d_loss.host(), g_probs = buf.hostf();
    expect_within(g_loss, losses, kFp32, "losses (fp32)");
    expect_within(g_probs, probs, kStore, "probs");
    // The backward reads the stored bf16 probabilities: the CPU gets the same ones.
    std::vector<float> d(logits.size());
    cpu::crossentropy_backward<float>({d.data(), g_probs.data(), targets.data(), dloss, N, V, Vp});
    cuda::crossentropy_backward<bf16>({buf.get(), buf.get(), d_t.a.get(), dloss, N, V, Vp});
    const auto g_d = buf.hostf();
    expect_within(g_d, d, kStore, "dlogits");
    for (int r = 0; r < N; ++r)
      for (int c = V; c < Vp; ++c) ASSERT_EQ(g_d[size_t(r) * Vp + c], 0.0f) << "padding " << r << "," << c;
    if (run == 0) {
      first_loss = g_loss, first_d = g_d;
    } else {
      EXPECT_TRUE(same_bits(g_loss, first_loss) && same_bits(g_d, first_d)) << "cross-entropy not deterministic";
    }
  }
}

// ---- geodesic ------------------------------------------------------------------------------------

TEST(CudaBf16Geodesic, MatchesCpuAndIsDeterministic) {
  NG_SKIP_WITHOUT_GPU();
  const double clamp = 0.7853981633974483;
  for (const auto& [N, C, a0, b0] : {std::tuple{9, 7, 1.3, 0.1}, std::tuple{1300, 300, 3.0, 0.4}}) {
    const size_t n = size_t(N) * C;
    auto x = random_floats(n, 71, 1.5), g = random_floats(n, 72, 0.6);
    for (int i = 0; i < C; ++i) g[3 * C + i] *= 8.0f;   // row 3: the t0 clamp
    for (int i = 0; i < C; ++i) x[5 * C + i] *= 1e-8f;  // row 5: the r < 1e-6 fallback
    x = widen(to_bf16(x)), g = widen(to_bf16(g));
    const auto dout = bf16_floats(n, 73);
    const std::vector<float> a = {float(bf16(a0))}, b = {float(bf16(b0))};
    std::vector<float> out(n), angle(N), clamped(N), dx(n), dg(n), unused = {0.f, 0.f};
    cpu::geodesic_forward<float>({out.data(), angle.data(), clamped.data(), x.data(), g.data(), a.data(), b.data(), 1.0,
                                  clamp, N, C});
    cpu::geodesic_backward<float>({dx.data(), dg.data(), &unused[0], &unused[1], dout.data(), x.data(), g.data(),
                                   a.data(), b.data(), 1.0, clamp, N, C});
    // da, db sum N rows: against the double kernel.
    const auto xd = to_d(x), gd = to_d(g), dyd = to_d(dout), ad = to_d(a), bd = to_d(b);
    std::vector<double> dxd(n), dgd(n), dab = {0.25, 0.5};
    cpu::geodesic_backward<double>({dxd.data(), dgd.data(), &dab[0], &dab[1], dyd.data(), xd.data(), gd.data(), ad.data(),
                                    bd.data(), 1.0, clamp, N, C});

    DevB d_x(x), d_g(g), d_dout(dout), d_a(a), d_b(b), d_out(n);
    DevF d_angle(N), d_clamped(N);
    cuda::geodesic_forward<bf16>({d_out.get(), d_angle.get(), d_clamped.get(), d_x.get(), d_g.get(), d_a.get(),
                                  d_b.get(), 1.0, clamp, N, C});
    const auto g_out = d_out.hostf();
    expect_within(g_out, out, kStore, "out");
    expect_within(d_angle.host(), angle, kFp32, "angle (fp32)");
    EXPECT_EQ(d_clamped.host(), clamped);
    for (int i = 0; i < C; ++i)  // the fallback row: x + g in fp32, rounded once (the host bf16's rounding)
      EXPECT_EQ(g_out[5 * C + i], float(bf16(x[5 * C + i] + g[5 * C + i]))) << "fallback, i " << i;
    std::vector<std::vector<float>> first;
    for (int run = 0; run < 2; ++run) {
      DevB d_dx(n), d_dg(n);
      DevF d_da(std::vector<float>{0.25f}), d_db(std::vector<float>{0.5f});  // accumulate
      cuda::geodesic_backward<bf16>({d_dx.get(), d_dg.get(), d_da.get(), d_db.get(), d_dout.get(), d_x.get(), d_g.get(),
                                     d_a.get(), d_b.get(), 1.0, clamp, N, C});
      std::vector<std::vector<float>> got = {d_dx.hostf(), d_dg.hostf(), {d_da.host()[0], d_db.host()[0]}};
      expect_within(got[0], dx, kStore, "dx");
      expect_within(got[1], dg, kStore, "dg");
      expect_within(got[2], to_f(dab), kFp32, "da, db (fp32)");
      for (int i = 0; i < C; ++i) EXPECT_EQ(got[0][5 * C + i], dout[5 * C + i]) << "fallback passes dout through";
      if (run == 0) first = got;
      else
        for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(same_bits(got[i], first[i])) << "output " << i << " differs";
    }
  }
}

// ---- lerp and rope -------------------------------------------------------------------------------

TEST(CudaBf16Lerp, MatchesCpuAndIsDeterministic) {
  NG_SKIP_WITHOUT_GPU();
  const int N = 300, C = 29;
  const float alpha_scale = 1.7f;
  const size_t n = size_t(N) * C;
  const auto x = bf16_floats(n, 81), g = bf16_floats(n, 82), dout = bf16_floats(n, 83);
  auto alpha = bf16_floats(C, 84, 0.3);
  alpha[0] = 0.0f;
  const auto da0 = random_floats(C, 85);
  for (bool abs_alpha : {false, true})
    for (bool nu : {false, true}) {
      const std::string what = std::string(abs_alpha ? "abs " : "") + (nu ? "nu" : "plain");
      std::vector<float> out(n), dx(n), dg(n), da_unused = da0;
      cpu::lerp_forward<float>({out.data(), x.data(), g.data(), alpha.data(), alpha_scale, abs_alpha, nu, N, C});
      cpu::lerp_backward<float>({dx.data(), dg.data(), da_unused.data(), dout.data(), x.data(), g.data(), alpha.data(),
                                 alpha_scale, abs_alpha, nu, N, C});
      const auto xd = to_d(x), gd = to_d(g), dyd = to_d(dout), ald = to_d(alpha);
      std::vector<double> dxd(n), dgd(n), dad = to_d(da0);
      cpu::lerp_backward<double>({dxd.data(), dgd.data(), dad.data(), dyd.data(), xd.data(), gd.data(), ald.data(),
                                  double(alpha_scale), abs_alpha, nu, N, C});
      DevB d_x(x), d_g(g), d_dout(dout), d_alpha(alpha), d_out(n);
      cuda::lerp_forward<bf16>({d_out.get(), d_x.get(), d_g.get(), d_alpha.get(), alpha_scale, abs_alpha, nu, N, C});
      expect_within(d_out.hostf(), out, kStore, what + ": out");
      std::vector<float> first;
      for (int run = 0; run < 2; ++run) {
        DevB d_dx(n), d_dg(n);
        DevF d_da(da0);
        cuda::lerp_backward<bf16>({d_dx.get(), d_dg.get(), d_da.get(), d_dout.get(), d_x.get(), d_g.get(), d_alpha.get(),
                                   alpha_scale, abs_alpha, nu, N, C});
        expect_within(d_dx.hostf(), dx, kStore, what + ": dx");
        expect_within(d_dg.hostf(), dg, kStore, what + ": dg");
        const auto g_da = d_da.host();
        expect_within(g_da, to_f(dad), kFp32, what + ": dalpha (fp32)");
        if (run == 0) first = g_da;
        else EXPECT_TRUE(same_bits(g_da, first)) << what << ": dalpha not deterministic";
      }
    }
}

TEST(CudaBf16Rope, MatchesCpuInPlace) {
  NG_SKIP_WITHOUT_GPU();
  const int B = 1, T = 130, C = 160, NH = 2;
  const size_t n = size_t(B) * T * C;
  const auto x = bf16_floats(n, 91);
  for (bool inverse : {false, true}) {
    std::vector<float> want(n);
    cpu::rope<float>({want.data(), x.data(), B, T, C, NH, 10000.0, inverse});
    DevB d_x(x), d_out(n), d_buf(x);
    cuda::rope<bf16>({d_out.get(), d_x.get(), B, T, C, NH, 10000.0, inverse});
    cuda::rope<bf16>({d_buf.get(), d_buf.get(), B, T, C, NH, 10000.0, inverse});
    const auto got = d_out.hostf();
    expect_within(got, want, kStore, inverse ? "rope inverse" : "rope");
    EXPECT_TRUE(same_bits(d_buf.hostf(), got)) << "in place differs from out of place";
  }
}

// ---- AdamW with fp32 master weights, gradient norm ---------------------------------------------

// The update is the fp32 kernel's on the master weights (master, m and v bitwise the fp32 CPU
// kernel's), and the bf16 parameters are the master's rounding: params == bf16(master), bitwise.
// The parameters start poisoned: the update must read the master, never the bf16 copy.
TEST(CudaBf16AdamW, UpdatesMasterAndRoundsParams) {
  NG_SKIP_WITHOUT_GPU();
  for (size_t n : {size_t(7), size_t(100003)})
    for (double grad_scale : {1.0, 0.37}) {
      const std::string what = "n " + std::to_string(n) + " grad_scale " + std::to_string(grad_scale);
      const auto master0 = random_floats(n, 101 + n, 0.1), grads = random_floats(n, 102 + n, 0.01);
      const auto m0 = random_floats(n, 103 + n, 0.005);
      auto v0 = random_floats(n, 104 + n, 1e-2);
      for (auto& v : v0) v = v * v;
      AdamWArgs<float> a{};
      a.n = n, a.lr = 3e-4f, a.beta1 = 0.9f, a.beta2 = 0.95f, a.eps = 1e-8f, a.decay = 3e-5f;
      a.bc1 = float(1.0 - std::pow(0.9, 3.0)), a.bc2 = float(1.0 - std::pow(0.95, 3.0)), a.grad_scale = float(grad_scale);
      std::vector<float> master = master0, m = m0, v = v0;
      AdamWArgs<float> ac = a;
      ac.params = master.data(), ac.grads = grads.data(), ac.m = m.data(), ac.v = v.data();
      cpu::adamw_update<float>(ac);

      DevB d_params(n);  // poisoned
      DevF d_grads(grads), d_m(m0), d_v(v0), d_master(master0);
      AdamWArgs<bf16> ad{d_params.get(), d_grads.get(), d_m.get(), d_v.get(), n, a.lr, a.beta1, a.beta2, a.bc1,
                         a.bc2, a.eps, a.decay, a.grad_scale, d_master.get()};
      cuda::adamw_update<bf16>(ad);
      const auto g_master = d_master.host();
      EXPECT_TRUE(same_bits(g_master, master)) << what << ": master differs from the fp32 CPU update";
      EXPECT_TRUE(same_bits(d_m.host(), m)) << what << ": m differs";
      EXPECT_TRUE(same_bits(d_v.host(), v)) << what << ": v differs";
      EXPECT_TRUE(same_bits(d_grads.host(), grads)) << what << ": grads changed";
      EXPECT_TRUE(same_bits(d_params.host(), to_bf16(g_master))) << what << ": params != bf16(master)";
    }
}

// Refused before anything is launched, so this runs without a device too.
TEST(CudaBf16AdamW, RefusesMissingMaster) {
  AdamWArgs<bf16> a{};
  a.n = 3;
  EXPECT_THROW(cuda::adamw_update<bf16>(a), InternalError);
}

TEST(CudaBf16AdamW, SumSquaresOverFp32Gradients) {
  NG_SKIP_WITHOUT_GPU();
  for (size_t n : {size_t(7), size_t(1000003)}) {
    const auto x = random_floats(n, 201 + n);
    const double want = cpu::sum_squares<float>({x.data(), n});
    DevF d_x(x);
    const double got = cuda::sum_squares<bf16>({d_x.get(), n}), again = cuda::sum_squares<bf16>({d_x.get(), n});
    EXPECT_LE(std::abs(got - want), 1e-12 * want) << "n " << n;
    EXPECT_EQ(std::memcmp(&got, &again, sizeof got), 0) << "n " << n << ": two runs differ";
  }
}

// ---- the backend -------------------------------------------------------------------------------

TEST(CudaBf16Backend, RegisteredForPrecisionBf16) {
  NG_SKIP_WITHOUT_GPU();
  register_cuda_backend();
  const auto be = make_backend_bf16("cuda", 0);
  ASSERT_NE(be, nullptr);
  EXPECT_EQ(be->name(), "cuda");
  EXPECT_FALSE(be->host_accessible());
  // Memory moves bf16 bits unchanged; attention's state is fp32 (stat_t<bf16>), counted in floats.
  const auto h = to_bf16(bf16_floats(1001, 301));
  Buffer<bf16> buf(*be, h.size());
  buf.from_host(h);
  EXPECT_TRUE(same_bits(buf.to_host(), h));
  EXPECT_EQ(be->attention_state_size(2, 5, 12, 3), size_t(2 * 3 * 5));
  EXPECT_EQ(be->attention_scratch_size(1, 5, 272, 2), size_t(1 * 2 * 5 * 5));
}
