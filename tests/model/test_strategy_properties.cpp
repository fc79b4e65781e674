// Structural properties each strategy must have (NORMS.md), checked on the forward pass.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/backend.hpp"
#include "common/gradcheck.hpp"
#include "config/config.hpp"
#include "model/gpt.hpp"

using namespace ng;

namespace {

const ModelDims kDims{4, 2, 16, 29, 32, 9, {}};
const int kB = 2, kT = 9;

ModelDims dims_with_layers(int L) {
  ModelDims d = kDims;
  d.L = L;
  return d;
}

// Default init, then matrices and embeddings replaced by N(0, 0.3^2): large enough that the
// norms' eps (1e-5) is negligible next to the variances and the sublayers do real work.
template <class T>
std::unique_ptr<GPT<T>> build(const std::string& strategy, const std::string& function, const Backend<T>& be,
                              uint64_t seed = 5) {
  NormConfig nc;
  nc.strategy = strategy;
  nc.function = function;
  auto m = std::make_unique<GPT<T>>(kDims, make_plan(nc, kDims, "auto"), be, kB, kT);
  init_params(m->table(), m->plan().init, seed, m->params.data());
  auto noise = test::randn(m->params.size(), seed + 1, 0.3);
  for (const auto& t : m->table().tensors())
    if (t.kind == ParamKind::Matrix || t.kind == ParamKind::Embedding)
      for (size_t k = 0; k < t.numel; ++k) m->params[t.offset + k] = T(noise[t.offset + k]);
  return m;
}

std::vector<int32_t> tokens() {
  std::vector<int32_t> t(kB * kT);
  for (size_t i = 0; i < t.size(); ++i) t[i] = int32_t((i * 7 + 3) % kDims.V);
  return t;
}

template <class T>
std::vector<double> row_norms(const T* x, int N, int C) {
  std::vector<double> r(N);
  for (int n = 0; n < N; ++n) {
    double s = 0;
    for (int c = 0; c < C; ++c) s += double(x[n * C + c]) * x[n * C + c];
    r[n] = std::sqrt(s);
  }
  return r;
}

TEST(StrategyProperties, GeoNormKeepsTheStreamNormThroughEveryBlock) {
  auto be = make_cpu_backend<float>();
  for (const char* fn : {"layernorm", "rmsnorm"}) {
    auto m = build<float>("geonorm", fn, *be);
    auto in = tokens();
    m->forward(in.data(), nullptr);
    const int N = kB * kT;
    // the stream's norm after the embed norm, before block 0
    const auto first = row_norms(m->layer_acts(0).attn.y, N, kDims.C);
    for (int l = 0; l < kDims.L; ++l)
      for (const float* y : {m->layer_acts(l).attn.y, m->layer_acts(l).mlp.y}) {
        const auto r = row_norms(y, N, kDims.C);
        for (int n = 0; n < N; ++n) EXPECT_NEAR(r[n], first[n], 1e-5 * first[n]) << fn << " layer " << l << " row " << n;
      }
    // and that norm is the embed norm's radius sqrt(d) (gains 1, biases 0 at init)
    for (int n = 0; n < N; ++n) EXPECT_NEAR(first[n], std::sqrt(double(kDims.C)), 1e-3) << fn;
    // the updates did turn the stream (the test is not vacuous)
    EXPECT_GT(m->layer_acts(0).attn.angle[0], 1e-3);
  }
}

TEST(StrategyProperties, PostDeepNormB2TStreamsAreNormalizedAfterEveryBlock) {
  auto be = make_cpu_backend<double>();
  for (const char* s : {"post", "deepnorm", "b2t"})
    for (const char* fn : {"layernorm", "rmsnorm"}) {
      auto m = build<double>(s, fn, *be);
      auto in = tokens();
      m->forward(in.data(), nullptr);
      const int N = kB * kT, C = kDims.C;
      for (int l = 0; l < kDims.L; ++l)
        for (const double* y : {m->layer_acts(l).attn.y, m->layer_acts(l).mlp.y})
          for (int n = 0; n < N; ++n) {
            double mean = 0, ms = 0;
            for (int c = 0; c < C; ++c) mean += y[n * C + c] / C;
            for (int c = 0; c < C; ++c) ms += y[n * C + c] * y[n * C + c] / C;
            if (std::string(fn) == "layernorm") {
              EXPECT_NEAR(mean, 0.0, 1e-9) << s << " layer " << l;
            }
            const double var = std::string(fn) == "layernorm" ? ms - mean * mean : ms;
            EXPECT_NEAR(var, 1.0, 1e-3) << s << " " << fn << " layer " << l;  // var/(var + eps)
          }
    }
}

TEST(StrategyProperties, LnsIsPreWithNormOutputsScaledByInverseSqrtDepth) {
  auto be = make_cpu_backend<double>();
  for (const char* fn : {"layernorm", "rmsnorm"}) {
    auto lns = build<double>("lns", fn, *be);
    auto pre = build<double>("pre", fn, *be);
    pre->params.from_host(lns->params.to_host());  // identical weights (the presets differ only in init)
    auto rnd = test::randn(pre->params.size(), 3, 0.2);
    for (size_t i = 0; i < rnd.size(); ++i) pre->params[i] += rnd[i];
    lns->params.from_host(pre->params.to_host());
    // scale pre's input-norm gains and biases of block l by 1/sqrt(l+1)
    for (const char* name : {"ln1w", "ln1b", "ln2w", "ln2b"})
      for (int l = 0; l < kDims.L; ++l) {
        double* p = pre->tensor(pre->params.data(), name, l);
        for (int c = 0; c < kDims.C; ++c) p[c] /= std::sqrt(double(l + 1));
      }
    auto in = tokens();
    lns->forward(in.data(), nullptr);
    pre->forward(in.data(), nullptr);
    const size_t n = size_t(kB) * kT * kDims.Vp;
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; ++i) {
      diff = std::max(diff, std::abs(lns->logits()[i] - pre->logits()[i]));
      scale = std::max(scale, std::abs(pre->logits()[i]));
    }
    EXPECT_LT(diff, 1e-12 * scale) << fn;
    // ...and without the rescaling they differ (the factors are really there)
    auto plain = build<double>("pre", fn, *be);
    plain->params.from_host(lns->params.to_host());
    plain->forward(in.data(), nullptr);
    double d2 = 0;
    for (size_t i = 0; i < n; ++i) d2 = std::max(d2, std::abs(lns->logits()[i] - plain->logits()[i]));
    EXPECT_GT(d2, 1e-3 * scale) << fn;
  }
}

TEST(StrategyProperties, PlansHaveTheDocumentedShape) {
  NormConfig nc;
  nc.strategy = "mixln";
  nc.mixln.post_fraction = 0.5;
  ModelPlan p = make_plan(nc, dims_with_layers(4), "auto");
  for (int l = 0; l < 4; ++l) {
    const Combine want = l < 2 ? Combine::NormAdd : Combine::Add;
    EXPECT_EQ(p.blocks[l].attn.combine, want) << l;
    EXPECT_EQ(p.blocks[l].mlp.combine, want) << l;
    EXPECT_EQ(p.blocks[l].attn.input_norm.active(), l >= 2) << l;
  }
  nc.mixln.post_fraction = 0.25;
  p = make_plan(nc, dims_with_layers(3), "auto");  // floor(0.75) = 0 post blocks
  EXPECT_EQ(p.blocks[0].attn.combine, Combine::Add);

  nc.strategy = "sandwich";
  p = make_plan(nc, dims_with_layers(2), "auto");
  EXPECT_EQ(p.strategy, "peri");
  EXPECT_EQ(p.blocks[1].mlp.output_norm.tensor, "lno2");

  nc.strategy = "deepnorm";
  p = make_plan(nc, dims_with_layers(6), "auto");
  EXPECT_DOUBLE_EQ(p.blocks[0].attn.alpha, std::pow(12.0, 0.25));
  EXPECT_EQ(p.init, "deepnorm");
  EXPECT_FALSE(p.final_norm.active());

  nc.strategy = "lns";
  p = make_plan(nc, dims_with_layers(4), "auto");
  EXPECT_EQ(p.init, "plain");
  EXPECT_DOUBLE_EQ(p.blocks[3].mlp.input_scale, 0.5);

  nc.strategy = "geonorm";
  nc.geonorm.decay = "linear";
  p = make_plan(nc, dims_with_layers(4), "auto");
  EXPECT_TRUE(p.embed_norm.active());
  EXPECT_DOUBLE_EQ(p.blocks[1].attn.geo.decay, 0.75);
  nc.embed_norm = false;
  nc.geonorm.input_norm = false;
  p = make_plan(nc, dims_with_layers(4), "auto");
  EXPECT_FALSE(p.embed_norm.active());
  EXPECT_FALSE(p.blocks[0].attn.input_norm.active());
}

TEST(StrategyProperties, DeepNormInitScalesValueOutputAndMlpOnly) {
  const ModelDims d{4, 2, 16, 29, 32, 9, {}};
  NormConfig nc;
  nc.strategy = "deepnorm";
  const ModelPlan p = make_plan(nc, d, "auto");
  ParamTable t(d, p);
  std::vector<double> deep(t.total()), plain(t.total());
  init_params(t, "deepnorm", 11, deep.data());
  init_params(t, "plain", 11, plain.data());
  const double beta = std::pow(8.0 * d.L, -0.25);
  const ParamTensor& qkv = t.get("qkvw");
  const size_t C = d.C, per = qkv.numel / d.L;
  for (int l = 0; l < d.L; ++l)
    for (size_t k = 0; k < per; ++k) {
      const size_t i = qkv.offset + l * per + k;
      EXPECT_DOUBLE_EQ(deep[i], k >= 2 * C * C ? plain[i] * beta : plain[i]);
    }
  const ParamTensor& fc = t.get("fcprojw");
  for (size_t k = 0; k < fc.numel; ++k) EXPECT_DOUBLE_EQ(deep[fc.offset + k], plain[fc.offset + k] * beta);
}

}  // namespace
