// CUDA linear, encoder and pointwise launchers against the CPU reference kernels (label cuda;
// skip without a device). Odd shapes so no tile or block size divides them; outputs poisoned so
// an unwritten element fails; both accumulate paths; bitwise run-to-run determinism.
#include <cstdint>
#include <vector>

#include "backend/cpu/kernels.hpp"
#include "backend/cuda/encoder.hpp"
#include "backend/cuda/linear.hpp"
#include "backend/cuda/pointwise.hpp"
#include "cuda_test_util.hpp"

using namespace ng;
using namespace ng::test;

namespace {

// Device copy of int32 tokens (Dev holds floats only).
struct DevTokens {
  explicit DevTokens(const std::vector<int32_t>& h) : a(h.size()) {
    cuda::copy_to_device(a.get(), h.data(), h.size() * sizeof(int32_t));
  }
  cuda::DeviceArray<int32_t> a;
};

void expect_close(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  EXPECT_LT(max_rel_error(got, want), kCudaFp32Rel) << what;
}

struct LinearShape {
  int N, C, OC;
};
const LinearShape kLinearShapes[] = {{37, 29, 53}, {300, 65, 70}, {1, 3, 1}};

}  // namespace

TEST(CudaLinear, ForwardMatchesCpu) {
  NG_SKIP_WITHOUT_GPU();
  for (const auto& s : kLinearShapes)
    for (bool with_bias : {true, false}) {
      const auto inp = random_floats(size_t(s.N) * s.C, 1), w = random_floats(size_t(s.OC) * s.C, 2);
      const auto bias = random_floats(s.OC, 3);
      std::vector<float> want(size_t(s.N) * s.OC);
      cpu::matmul_forward<float>({want.data(), inp.data(), w.data(), with_bias ? bias.data() : nullptr, s.N, s.C, s.OC});
      Dev dinp(inp), dw(w), db(bias);
      std::vector<float> first;
      for (int run = 0; run < 2; ++run) {
        Dev out(want.size());
        cuda::matmul_forward<float>({out.get(), dinp.get(), dw.get(), with_bias ? db.get() : nullptr, s.N, s.C, s.OC});
        const auto got = out.host();
        expect_close(got, want, with_bias ? "out (bias)" : "out (no bias)");
        if (run == 0) first = got;
        else EXPECT_EQ(got, first) << "forward not deterministic";
      }
    }
}

TEST(CudaLinear, BackwardMatchesCpu) {
  NG_SKIP_WITHOUT_GPU();
  for (const auto& s : kLinearShapes)
    for (bool accumulate : {false, true})
      for (bool with_dinp : {true, false}) {
        const size_t nin = size_t(s.N) * s.C, nw = size_t(s.OC) * s.C, nout = size_t(s.N) * s.OC;
        const auto inp = random_floats(nin, 11), w = random_floats(nw, 12), dout = random_floats(nout, 13);
        // Parameter gradients always accumulate: start both sides from the same random base.
        const auto dinp0 = random_floats(nin, 14), dw0 = random_floats(nw, 15), db0 = random_floats(s.OC, 16);
        std::vector<float> dinp = dinp0, dw = dw0, db = db0;
        MatmulBackwardArgs<float> ca{with_dinp ? dinp.data() : nullptr, dw.data(), db.data(), dout.data(),
                                     inp.data(), w.data(), s.N, s.C, s.OC, accumulate};
        cpu::matmul_backward<float>(ca);
        Dev d_inp(inp), d_w(w), d_dout(dout);
        std::vector<float> first_dinp, first_dw, first_db;
        for (int run = 0; run < 2; ++run) {
          Dev g_inp = accumulate ? Dev(dinp0) : Dev(nin);  // poisoned unless accumulating
          Dev g_w(dw0), g_b(db0);
          cuda::matmul_backward<float>({with_dinp ? g_inp.get() : nullptr, g_w.get(), g_b.get(), d_dout.get(),
                                        d_inp.get(), d_w.get(), s.N, s.C, s.OC, accumulate});
          const auto hi = g_inp.host(), hw = g_w.host(), hb = g_b.host();
          if (with_dinp) {
            expect_close(hi, dinp, "dinp");
          } else if (accumulate) {
            EXPECT_EQ(hi, dinp0) << "null dinp must leave the buffer alone";
          }
          expect_close(hw, dw, "dweight");
          expect_close(hb, db, "dbias");
          if (run == 0) {
            first_dinp = hi, first_dw = hw, first_db = hb;
          } else {
            if (with_dinp) {
              EXPECT_EQ(hi, first_dinp) << "dinp not deterministic";
            }
            EXPECT_EQ(hw, first_dw) << "dweight not deterministic";
            EXPECT_EQ(hb, first_db) << "dbias not deterministic";
          }
        }
      }
}

TEST(CudaLinear, BackwardWithoutBiasLeavesNothingElse) {
  NG_SKIP_WITHOUT_GPU();
  const int N = 37, C = 29, OC = 53;
  const auto inp = random_floats(size_t(N) * C, 21), w = random_floats(size_t(OC) * C, 22);
  const auto dout = random_floats(size_t(N) * OC, 23), dw0 = random_floats(size_t(OC) * C, 24);
  std::vector<float> dw = dw0;
  cpu::matmul_backward<float>({nullptr, dw.data(), nullptr, dout.data(), inp.data(), w.data(), N, C, OC, false});
  Dev d_inp(inp), d_w(w), d_dout(dout), g_w(dw0);
  cuda::matmul_backward<float>({nullptr, g_w.get(), nullptr, d_dout.get(), d_inp.get(), d_w.get(), N, C, OC, false});
  expect_close(g_w.host(), dw, "dweight");
}

TEST(CudaEncoder, ForwardAndBackwardMatchCpu) {
  NG_SKIP_WITHOUT_GPU();
  const int B = 3, T = 7, C = 13, V = 11, Vp = 12, maxT = 9;
  // Repeated tokens (0, 5 and 10 several times, also within one row), and some ids never used,
  // whose dwte rows must stay exactly as they were.
  const std::vector<int32_t> tokens = {5, 0, 5, 10, 3, 5, 0,  //
                                       10, 10, 1, 0, 5, 7, 2,  //
                                       0, 0, 5, 10, 9, 3, 5};
  ASSERT_EQ(tokens.size(), size_t(B) * T);
  for (int32_t tok : tokens) ASSERT_LT(tok, V);
  const auto wte = random_floats(size_t(Vp) * C, 31), wpe = random_floats(size_t(maxT) * C, 32);
  const auto dout = random_floats(size_t(B) * T * C, 33);
  const auto dwte0 = random_floats(size_t(Vp) * C, 34), dwpe0 = random_floats(size_t(maxT) * C, 35);

  std::vector<float> out(size_t(B) * T * C), dwte = dwte0, dwpe = dwpe0;
  cpu::encoder_forward<float>({out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C});
  cpu::encoder_backward<float>({dwte.data(), dwpe.data(), dout.data(), tokens.data(), B, T, C});

  DevTokens d_tok(tokens);
  Dev d_wte(wte), d_wpe(wpe), d_dout(dout);
  std::vector<float> first_wte, first_wpe;
  for (int run = 0; run < 2; ++run) {
    Dev g_out(out.size()), g_wte(dwte0), g_wpe(dwpe0);
    cuda::encoder_forward<float>({g_out.get(), d_tok.a.get(), d_wte.get(), d_wpe.get(), B, T, C});
    cuda::encoder_backward<float>({g_wte.get(), g_wpe.get(), d_dout.get(), d_tok.a.get(), B, T, C});
    const auto ho = g_out.host(), hte = g_wte.host(), hpe = g_wpe.host();
    expect_close(ho, out, "out");
    expect_close(hte, dwte, "dwte");
    expect_close(hpe, dwpe, "dwpe");
    // Unused token rows (4, 6, 8, padded 11) and positions T..maxT-1 are untouched, bit for bit.
    for (int v : {4, 6, 8, 11})
      for (int c = 0; c < C; ++c) EXPECT_EQ(hte[size_t(v) * C + c], dwte0[size_t(v) * C + c]);
    for (int t = T; t < maxT; ++t)
      for (int c = 0; c < C; ++c) EXPECT_EQ(hpe[size_t(t) * C + c], dwpe0[size_t(t) * C + c]);
    if (run == 0) {
      first_wte = hte, first_wpe = hpe;
    } else {
      EXPECT_EQ(hte, first_wte) << "dwte not deterministic";
      EXPECT_EQ(hpe, first_wpe) << "dwpe not deterministic";
    }
  }
}

TEST(CudaPointwise, GeluMatchesCpu) {
  NG_SKIP_WITHOUT_GPU();
  const size_t n = 1237;
  const auto x = random_floats(n, 41, 2.0), dout = random_floats(n, 42), base = random_floats(n, 43);
  std::vector<float> y(n);
  cpu::gelu_forward<float>({y.data(), x.data(), n});
  Dev d_x(x), d_dout(dout);
  {
    Dev out(n);
    cuda::gelu_forward<float>({out.get(), d_x.get(), n});
    expect_close(out.host(), y, "gelu out");
    Dev inplace(x);  // out aliases inp
    cuda::gelu_forward<float>({inplace.get(), inplace.get(), n});
    expect_close(inplace.host(), y, "gelu out in place");
  }
  for (bool accumulate : {false, true}) {
    std::vector<float> dx = base;
    cpu::gelu_backward<float>({dx.data(), x.data(), dout.data(), n, accumulate});
    std::vector<float> first;
    for (int run = 0; run < 2; ++run) {
      Dev g = accumulate ? Dev(base) : Dev(n);
      cuda::gelu_backward<float>({g.get(), d_x.get(), d_dout.get(), n, accumulate});
      const auto h = g.host();
      expect_close(h, dx, accumulate ? "gelu dinp (acc)" : "gelu dinp");
      if (run == 0) first = h;
      else EXPECT_EQ(h, first) << "gelu backward not deterministic";
    }
    if (!accumulate) {  // dinp aliasing dout, as the model does to save a buffer
      Dev g(dout);
      cuda::gelu_backward<float>({g.get(), d_x.get(), g.get(), n, false});
      expect_close(g.host(), dx, "gelu dinp in place");
    }
  }
}

TEST(CudaPointwise, ResidualAndScaleMatchCpu) {
  NG_SKIP_WITHOUT_GPU();
  const size_t n = 1001;
  const float alpha = 0.37f;
  const auto x = random_floats(n, 51), g = random_floats(n, 52), skip = random_floats(n, 53);
  Dev d_x(x), d_g(g), d_skip(skip);
  for (bool with_skip : {false, true}) {
    std::vector<float> want(n);
    cpu::residual<float>({want.data(), x.data(), g.data(), with_skip ? skip.data() : nullptr, alpha, n});
    Dev out(n);
    cuda::residual<float>({out.get(), d_x.get(), d_g.get(), with_skip ? d_skip.get() : nullptr, alpha, n});
    expect_close(out.host(), want, "residual");
    Dev inplace(x);  // out aliases x, the usual residual-stream update
    cuda::residual<float>({inplace.get(), inplace.get(), d_g.get(), with_skip ? d_skip.get() : nullptr, alpha, n});
    expect_close(inplace.host(), want, "residual in place");
  }
  const auto base = random_floats(n, 54);
  for (bool accumulate : {false, true}) {
    std::vector<float> want = base;
    cpu::scale<float>({want.data(), x.data(), alpha, n, accumulate});
    Dev dst = accumulate ? Dev(base) : Dev(n);
    cuda::scale<float>({dst.get(), d_x.get(), alpha, n, accumulate});
    expect_close(dst.host(), want, "scale");
    // dst aliasing src: dst = (acc ? x : 0) + alpha x.
    std::vector<float> self = x;
    cpu::scale<float>({self.data(), self.data(), alpha, n, accumulate});
    Dev d_self(x);
    cuda::scale<float>({d_self.get(), d_self.get(), alpha, n, accumulate});
    expect_close(d_self.host(), self, "scale in place");
  }
}
