// The PyTorch twin (scripts/reference/) as the outside reference: logits, loss, every gradient and
// ten AdamW steps of losses, in fp32 and double, from fixtures made by
// `/usr/bin/python3 scripts/reference/make_fixtures.py` (float64 "truth").
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "common/gradcheck.hpp"
#include "common/tolerances.hpp"
#include "config/config.hpp"
#include "model/gpt.hpp"
#include "model/model_file.hpp"
#include "train/model_setup.hpp"
#include "train/step.hpp"

using namespace ng;
using nlohmann::json;

namespace {

json read_fixture(const std::string& name) {
  std::ifstream f(std::string(NORMGPT_FIXTURES) + "/reference/" + name + "/fixture.json");
  EXPECT_TRUE(f.good()) << "missing fixture " << name;
  return json::parse(f);
}

template <class T>
double rel_err(const T* got, const std::vector<double>& want) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, std::abs(double(got[i]) - want[i]));
    norm += want[i] * want[i];
  }
  return diff / std::max(std::sqrt(norm), 1e-30);
}

template <class T>
void check_fixture(const std::string& name) {
  const test::Tolerance tol = test::Tolerances<T>::value;
  const json fx = read_fixture(name);
  const std::string dir = std::string(NORMGPT_FIXTURES) + "/reference/" + name;
  // Wave-2 fixtures (docs/blocks.md) carry their block options ("model") and every tensor
  // ("params"); the others carry a plain llm.c model.bin plus the strategy's extra tensors.
  const bool all_params = fx.contains("params");
  ModelDims dims;
  if (all_params) {
    dims = {fx["L"], fx["NH"], fx["C"], fx["V"], fx["Vp"], fx["maxT"], {}};
    ModelConfig mc = config_from_json(json{{"model", fx["model"]}}, name + "/fixture.json").model;
    mc.d_model = dims.C;
    dims.arch = block_arch(mc);
  } else {
    dims = read_model_info(dir + "/model.bin").dims;
  }
  NormConfig nc;
  if (fx.contains("norm")) {
    nc = config_from_json(json{{"norm", fx["norm"]}}, name + "/fixture.json").norm;
  } else {
    nc.strategy = fx["strategy"];
    nc.function = fx["function"];
  }
  const ModelPlan plan = make_plan(nc, dims, "auto");
  auto be = make_cpu_backend<T>();
  const int B = fx["B"], Tn = fx["T"];
  GPT<T> model(dims, plan, *be, B, Tn);
  const json& values = all_params ? fx["params"] : fx["extra_params"];
  if (!all_params) load_model_file(dir + "/model.bin", model.table(), plan, model.params.data());
  if (all_params) {
    ASSERT_EQ(values.size(), model.table().tensors().size()) << "the fixture and the table disagree on the tensors";
    // the fixture lists its tensors in the twin's order: it must be the table's (docs/blocks.md)
    std::ifstream f(dir + "/fixture.json");
    const auto ordered = nlohmann::ordered_json::parse(f)["params"];
    size_t i = 0;
    for (const auto& [tname, v] : ordered.items()) EXPECT_EQ(tname, model.table().tensors()[i++].name) << "tensor order";
  }
  if (fx.contains("extra_params") || all_params) {
    for (const auto& [tname, v] : values.items()) {
      const ParamTensor& t = model.table().get(tname);
      const std::vector<double> vals = v;
      ASSERT_EQ(vals.size(), t.numel) << tname;
      for (size_t k = 0; k < t.numel; ++k) model.params[t.offset + k] = T(vals[k]);
    }
  }
  if (!all_params) {
    size_t n_extra = 0;
    for (const auto& t : model.table().tensors())
      if (t.offset >= model.table().gpt2_total()) n_extra += t.numel;
    ASSERT_EQ(n_extra, fx.contains("extra_params") ? [&] {
      size_t n = 0;
      for (const auto& [k, v] : fx["extra_params"].items()) n += v.size();
      return n;
    }() : size_t(0)) << "the fixture and the plan disagree on the extra tensors";
  }

  const std::vector<int32_t> tokens = fx["tokens"];
  const size_t n = size_t(B) * Tn;
  auto batch = [&](int s, int32_t* in, int32_t* tg) {
    for (size_t i = 0; i < n; ++i) {
      in[i] = tokens[s * n + i];
      tg[i] = tokens[s * n + i + 1];
    }
  };
  std::vector<int32_t> in(n), tg(n);
  batch(0, in.data(), tg.data());
  model.forward(in.data(), nullptr);
  EXPECT_LT(rel_err(model.logits(), fx["logits"].get<std::vector<double>>()), tol.ref_grad_rel) << "logits";
  model.zero_grad();
  const double loss = model.forward(in.data(), tg.data());
  EXPECT_NEAR(loss, fx["loss"].get<double>(), tol.ref_loss_abs);
  model.backward(1.0);
  double worst_grad = 0, worst_step_loss = 0;
  ASSERT_EQ(fx["grads"].size(), model.table().tensors().size()) << "every tensor's gradient is in the fixture";
  double all_norm2 = 0;
  for (const auto& [tname, want] : fx["grads"].items())
    for (double v : want) all_norm2 += v * v;
  const double all_norm = std::sqrt(all_norm2);
  for (const auto& [tname, want] : fx["grads"].items()) {
    const ParamTensor& t = model.table().get(tname);
    const std::vector<double> w = want;
    ASSERT_EQ(w.size(), t.numel) << tname;
    double err = rel_err(model.grads.data() + t.offset, w);
    // rmsnorm biases are unused: both sides must be exactly zero.
    if (std::all_of(w.begin(), w.end(), [](double v) { return v == 0; })) {
      for (size_t k = 0; k < t.numel; ++k) ASSERT_EQ(model.grads[t.offset + k], T(0)) << tname;
      continue;
    }
    // A gradient that is zero by symmetry (a bias on k shifts all scores of a query equally, which
    // the softmax ignores) is roundoff on both sides: judge it against the whole gradient's norm.
    double wn = 0;
    for (double v : w) wn += v * v;
    if (std::sqrt(wn) < 1e-12 * all_norm) {
      for (size_t k = 0; k < t.numel; ++k)
        EXPECT_LT(std::abs(double(model.grads[t.offset + k])), tol.ref_grad_rel * all_norm) << tname;
      continue;
    }
    EXPECT_LT(err, tol.ref_grad_rel) << "gradient of " << tname;
    worst_grad = std::max(worst_grad, err);
  }

  OptimConfig oc;
  const json& o = fx["optim"];
  oc.lr = o["lr"];
  oc.schedule = o["schedule"];
  oc.warmup_steps = o["warmup_steps"];
  oc.min_lr_ratio = o["min_lr_ratio"];
  oc.weight_decay = o["weight_decay"];
  oc.beta1 = o["beta1"];
  oc.beta2 = o["beta2"];
  oc.eps = o["eps"];
  oc.grad_clip = o["grad_clip"];
  const int steps = fx["steps"];
  LrSchedule sched{oc.lr, oc.schedule, oc.warmup_steps, oc.min_lr_ratio, steps};
  AdamW<T> opt(model.backend(), model.table(), oc);
  for (int s = 0; s < steps; ++s) {
    auto next = [&](int32_t* i, int32_t* t) { batch(s, i, t); };
    StepResult r = train_step(model, opt, sched, oc, s, 1, next);
    EXPECT_NEAR(r.loss, fx["losses"][s].get<double>(), tol.ref_loss_abs) << "step " << s;
    worst_step_loss = std::max(worst_step_loss, std::abs(r.loss - fx["losses"][s].get<double>()));
    EXPECT_NEAR(r.lr, fx["lrs"][s].get<double>(), 1e-12) << "step " << s;
    EXPECT_NEAR(r.grad_norm, fx["grad_norms"][s].get<double>(), 1e3 * tol.ref_loss_abs) << "step " << s;
  }
  // The match figures, for the record (closing notes quote them).
  std::printf("[reference %s %s] |loss diff| %.3g, max grad err (rel to tensor norm) %.3g, max |loss diff| over %d steps %.3g\n",
              name.c_str(), sizeof(T) == 4 ? "fp32" : "fp64", std::abs(loss - fx["loss"].get<double>()), worst_grad,
              steps, worst_step_loss);
}

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(std::string(NORMGPT_FIXTURES) + "/reference"))
    if (std::filesystem::exists(e.path() / "fixture.json")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class Reference : public ::testing::TestWithParam<std::string> {};

TEST_P(Reference, Float) { check_fixture<float>(GetParam()); }
TEST_P(Reference, Double) { check_fixture<double>(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Fixtures, Reference, ::testing::ValuesIn(fixture_names()),
                         [](const auto& info) { return info.param; });

TEST(ReferenceFixtures, CoverEveryStrategyAndFunction) {
  const auto names = fixture_names();
  for (const std::string& s : strategy_names())
    for (const char* f : {"layernorm", "rmsnorm"})
      EXPECT_TRUE(std::find(names.begin(), names.end(), s + "_" + f) != names.end()) << s << "_" << f;
}

}  // namespace
