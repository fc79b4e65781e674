// Properties of the wave-2 strategies (docs/blocks.md) that gradient checks cannot see: nGPT's
// states stay on the unit sphere, the post-step hooks keep every constrained matrix on its
// constraint, anGPT's constant factors keep each stage near unit norm, and the plans refuse what
// they cannot take.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/backend.hpp"
#include "backend/cpu/kernels.hpp"
#include "common/gradcheck.hpp"
#include "config/config.hpp"
#include "core/errors.hpp"
#include "model/constraints.hpp"
#include "model/gpt.hpp"
#include "norm/angpt_factors.hpp"
#include "train/step.hpp"

using namespace ng;

namespace {

ModelDims llama_dims() {
  ModelDims d{3, 2, 16, 29, 32, 9, {}};
  d.arch.rope = true;
  d.arch.swiglu = true;
  d.arch.hidden = 40;
  d.arch.bias = false;
  d.arch.tied = false;
  return d;
}

const int kB = 2, kT = 9;

std::vector<int32_t> tokens(int n, int V, int salt = 0) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = int32_t((i * 7 + 3 + salt * 5) % V);
  return t;
}

template <class T>
double max_row_norm_error(const T* x, int N, int C) {
  double worst = 0;
  for (int n = 0; n < N; ++n) {
    double s = 0;
    for (int c = 0; c < C; ++c) s += double(x[n * C + c]) * x[n * C + c];
    worst = std::max(worst, std::abs(std::sqrt(s) - 1));
  }
  return worst;
}

std::unique_ptr<GPT<float>> build(const std::string& strategy, const ModelDims& d, const Backend<float>& be) {
  NormConfig nc;
  nc.strategy = strategy;
  auto m = std::make_unique<GPT<float>>(d, make_plan(nc, d, "auto"), be, kB, kT);
  init_params(m->table(), m->plan().init, 11, m->params.data());
  apply_constraints(m->plan(), m->table(), m->params.data());
  return m;
}

TEST(Wave2Properties, NgptKeepsEveryHiddenStateOnTheUnitSphere) {
  auto be = make_cpu_backend<float>();
  for (bool rope : {false, true}) {
    ModelDims d = llama_dims();
    d.arch.rope = rope;
    auto m = build("ngpt", d, *be);
    const auto in = tokens(kB * kT, d.V);
    m->forward(in.data(), nullptr);
    const int N = kB * kT;
    for (int l = 0; l < d.L; ++l) {
      // l2 with eps 1e-5 on unit-scale rows: |norm - 1| ~ 5e-6
      EXPECT_LT(max_row_norm_error(m->layer_acts(l).attn.y, N, d.C), 2e-5) << "layer " << l;
      EXPECT_LT(max_row_norm_error(m->layer_acts(l).mlp.y, N, d.C), 2e-5) << "layer " << l;
    }
  }
}

// After optimizer steps with a large learning rate (so the update moves rows well off the
// constraint), the hook has put every constrained row/column back.
TEST(Wave2Properties, PostStepHooksRestoreTheConstraints) {
  auto be = make_cpu_backend<float>();
  for (const char* s : {"ngpt", "angpt"}) {
    for (bool tied : {true, false}) {
      ModelDims d = llama_dims();
      d.arch.tied = tied;
      d.arch.rope = !tied;  // learned positions (a constrained wpe under angpt) in one of the two
      auto m = build(s, d, *be);
      EXPECT_LT(constraint_violation(m->plan(), m->table(), m->params.data()), 1e-6) << s << " at init";
      OptimConfig oc;
      oc.lr = 0.05;
      oc.grad_clip = 0;
      LrSchedule sched{oc.lr, "constant", 0, 0.0, 3};
      AdamW<float> opt(m->backend(), m->table(), oc);
      for (int step = 0; step < 3; ++step) {
        const std::vector<float> before = m->params.to_host();
        auto next = [&](int32_t* i, int32_t* t) {
          const auto a = tokens(kB * kT + 1, d.V, step);
          std::copy(a.begin(), a.end() - 1, i);
          std::copy(a.begin() + 1, a.end(), t);
        };
        train_step(*m, opt, sched, oc, step, 1, next);
        EXPECT_LT(constraint_violation(m->plan(), m->table(), m->params.data()), 1e-6) << s << " step " << step;
        // the step really moved the constrained matrices (the check is not vacuous)
        const ParamTensor& w = m->table().get("qkvw");
        double moved = 0;
        for (size_t k = w.offset; k < w.offset + w.numel; ++k) moved = std::max(moved, double(std::abs(m->params[k] - before[k])));
        EXPECT_GT(moved, 1e-3) << s;
      }
    }
  }
}

TEST(Wave2Properties, ConstraintsActAlongTheRightAxis) {
  ModelDims d{1, 1, 2, 3, 3, 2, {}};
  ModelPlan plan;
  plan.constrained = {{"wte"}, {"attprojw", true}};
  ParamTable table(d, plan);
  std::vector<double> p(table.total(), 0.0);
  const ParamTensor& wte = table.get("wte");      // (3, 2): rows (3,4), (0.3,0.4), (0,0)
  const ParamTensor& proj = table.get("attprojw");  // (1, 2, 2): columns (2,0), (0,0.5)
  const double w[] = {3, 4, 0.3, 0.4, 0, 0};
  std::copy(w, w + 6, p.begin() + wte.offset);
  const double a[] = {2, 0, 0, 0.5};
  std::copy(a, a + 4, p.begin() + proj.offset);
  std::vector<double> q = p;
  plan.constraint = ConstraintMode::Normalize;
  apply_constraints(plan, table, q.data());
  const double wn[] = {0.6, 0.8, 0.6, 0.8, 0, 0}, an[] = {1, 0, 0, 1};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(q[wte.offset + i], wn[i], 1e-15);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(q[proj.offset + i], an[i], 1e-15);
  q = p;
  plan.constraint = ConstraintMode::UnitBall;
  apply_constraints(plan, table, q.data());
  const double wb[] = {0.6, 0.8, 0.3, 0.4, 0, 0}, ab[] = {1, 0, 0, 0.5};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(q[wte.offset + i], wb[i], 1e-15);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(q[proj.offset + i], ab[i], 1e-15);
  EXPECT_EQ(constraint_violation(plan, table, q.data()), 0.0);
  EXPECT_NEAR(constraint_violation(plan, table, p.data()), 4.0, 1e-12);  // the (3,4) row: norm 5
}

// Random unit inputs through each anGPT stage with unit-row weights: every output norm near 1.
std::vector<double> unit_rows(int rows, int cols, uint64_t seed) {
  auto v = test::randn(size_t(rows) * cols, seed);
  for (int r = 0; r < rows; ++r) {
    double s = 0;
    for (int c = 0; c < cols; ++c) s += v[size_t(r) * cols + c] * v[size_t(r) * cols + c];
    for (int c = 0; c < cols; ++c) v[size_t(r) * cols + c] /= std::sqrt(s);
  }
  return v;
}

double mean_row_norm(const std::vector<double>& x, int N, int C) {
  double sum = 0;
  for (int n = 0; n < N; ++n) {
    double s = 0;
    for (int c = 0; c < C; ++c) s += x[size_t(n) * C + c] * x[size_t(n) * C + c];
    sum += std::sqrt(s);
  }
  return sum / N;
}

TEST(Wave2Properties, AngptFactorsKeepEveryStageNearUnitNorm) {
  const int N = 64, C = 512;
  for (bool swiglu : {false, true}) {
    const int H = swiglu ? 1376 : 4 * C, F = swiglu ? 2 * H : H;
    const double c_fc = std::sqrt(double(C) / H), c_act = angpt_activation_factor(swiglu, H),
                 c_down = std::sqrt(double(H) / C);
    const auto x = unit_rows(N, C, 1), w_up = unit_rows(F, C, 2), w_down = unit_rows(C, H, 3);
    std::vector<double> up(size_t(N) * F), act(size_t(N) * H), out(size_t(N) * C);
    cpu::matmul_forward<double>({up.data(), x.data(), w_up.data(), nullptr, N, C, F});
    for (auto& v : up) v *= c_fc;
    // each of gate and up (swiglu) is a unit-norm vector of width H
    std::vector<double> first(up.begin(), up.begin() + size_t(N) * F);
    if (swiglu) {
      cpu::swiglu_forward<double>({act.data(), up.data(), N, H});
    } else {
      cpu::gelu_forward<double>({act.data(), up.data(), size_t(N) * H});
    }
    for (auto& v : act) v *= c_act;
    cpu::matmul_forward<double>({out.data(), act.data(), w_down.data(), nullptr, N, H, C});
    for (auto& v : out) v *= c_down;
    const double n_up = mean_row_norm(up, N, F) / (swiglu ? std::sqrt(2.0) : 1.0);
    const double n_act = mean_row_norm(act, N, H), n_out = mean_row_norm(out, N, C);
    std::printf("[angpt %s] H %d c_act %.4f: mean norms up %.3f act %.3f down %.3f\n", swiglu ? "swiglu" : "gelu", H,
                c_act, n_up, n_act, n_out);
    EXPECT_NEAR(n_up, 1.0, 0.05);
    EXPECT_NEAR(n_act, 1.0, 0.1);
    EXPECT_NEAR(n_out, 1.0, 0.1);
  }
  // for small pre-activations gelu ~ silu ~ z/2: the factors tend to 2 and 2 sqrt(H)
  EXPECT_NEAR(angpt_activation_factor(false, 65536), 2.0, 0.02);
  EXPECT_NEAR(angpt_activation_factor(true, 65536) / std::sqrt(65536.0), 2.0, 0.02);
}

TEST(Wave2Properties, NuResidualKeepsUnitNorm) {
  const int N = 64, C = 512;
  const auto h = unit_rows(N, C, 4), f = unit_rows(N, C, 5);
  for (double a : {0.05, 0.3, 0.7}) {
    std::vector<double> alpha(C, a), out(size_t(N) * C);
    cpu::lerp_forward<double>({out.data(), h.data(), f.data(), alpha.data(), 1.0, false, true, N, C});
    EXPECT_NEAR(mean_row_norm(out, N, C), 1.0, 0.02) << "a = " << a;
  }
}

TEST(Wave2Properties, PlansOfTheNewStrategies) {
  ModelDims d{3, 2, 8, 11, 16, 8, {}};
  NormConfig nc;
  nc.strategy = "hybridnorm_star";
  ModelPlan p = make_plan(nc, d, "auto");
  EXPECT_EQ(p.blocks[0].attn.input_norm.tensor, "ln1");  // block 0: plain pre
  EXPECT_FALSE(p.blocks[0].qkv.any());
  for (int l = 1; l < 3; ++l) {
    EXPECT_FALSE(p.blocks[l].attn.input_norm.active());
    EXPECT_EQ(p.blocks[l].qkv.v.tensor, "lnv");
    EXPECT_TRUE(p.blocks[l].qkv.q.per_head);
    EXPECT_TRUE(p.blocks[l].mlp.residual_from_input);
  }
  d.arch.qk_norm = QkNorm::Full;  // hybridnorm takes the axis from model.qk_norm
  EXPECT_FALSE(make_plan(nc, d, "auto").blocks[1].qkv.q.per_head);

  nc.strategy = "residual";
  p = make_plan(nc, ModelDims{3, 2, 8, 11, 16, 8, {}}, "auto");
  EXPECT_TRUE(p.dual_stream && p.final_norm.active());
  EXPECT_TRUE(p.blocks[2].mlp.dual && p.blocks[0].attn.combine == Combine::NormAdd);

  nc.strategy = "ngpt";
  p = make_plan(nc, ModelDims{3, 2, 8, 11, 16, 8, {}}, "auto");
  EXPECT_FALSE(p.final_norm.active());
  EXPECT_TRUE(p.embed_norm.l2 && p.embed_norm.tensor.empty());
  EXPECT_EQ(p.constraint, ConstraintMode::Normalize);
  EXPECT_DOUBLE_EQ(p.blocks[0].qkv.softmax_scale, 2.0);  // sqrt(hs) with hs 4
  nc.strategy = "angpt";
  p = make_plan(nc, ModelDims{3, 2, 8, 11, 16, 8, {}}, "auto");
  EXPECT_EQ(p.constraint, ConstraintMode::UnitBall);
  EXPECT_NEAR(p.factors.fc, 0.5, 1e-15);  // sqrt(C / 4C)
  EXPECT_NEAR(p.factors.fcproj, 2.0, 1e-15);
  EXPECT_NEAR(p.factors.embed, 1 / std::sqrt(2.0), 1e-15);

  // what the plans refuse, as one-line user errors
  d = ModelDims{3, 2, 8, 11, 16, 8, {}};
  d.arch.qk_norm = QkNorm::Head;
  for (const char* s : {"ngpt", "angpt"}) {
    nc.strategy = s;
    try {
      make_plan(nc, d, "auto");
      ADD_FAILURE() << s << " accepted model.qk_norm head";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("model.qk_norm"), std::string::npos) << e.what();
    }
    NormConfig with_final = nc;
    with_final.final_norm = true;
    EXPECT_THROW(make_plan(with_final, ModelDims{3, 2, 8, 11, 16, 8, {}}, "auto"), UserError) << s;
  }
}

}  // namespace
