// Whole-model gradient check in double: every parameter (learnable scalars included) of a tiny
// 4-block model against central finite differences, for every strategy x norm function, plus the
// embed/final norm switches and the block options (docs/blocks.md).
#include <gtest/gtest.h>

#include "backend/backend.hpp"
#include "common/gradcheck.hpp"
#include "common/tolerances.hpp"
#include "config/config.hpp"
#include "model/gpt.hpp"

using namespace ng;
using namespace ng::test;

namespace {

struct Case {
  std::string strategy;
  std::string function;
  int embed_norm = -1;  // -1: the strategy's default
  int final_norm = -1;
  std::string arch;  // "": GPT-2 blocks; else a preset of arch_for()
};

// Block-option presets. RoPE needs an even head size, so these use C = 8 (hs 4).
BlockArch arch_for(const std::string& name) {
  BlockArch a;
  if (name == "llama") {  // every option away from GPT-2 at once
    a.rope = true;
    a.rope_theta = 50.0;  // a small base so that the short test sequence sees large angles
    a.swiglu = true;
    a.hidden = 10;
    a.bias = false;
    a.qk_norm = QkNorm::Head;
    a.tied = false;
  } else if (name == "llama_noqk") {  // the hypersphere strategies normalize q, k themselves
    a = arch_for("llama");
    a.qk_norm = QkNorm::None;
  } else if (name == "qkfull") {
    a.qk_norm = QkNorm::Full;
    a.hidden = 12;
  } else if (name == "rope_gelu") {
    a.rope = true;
    a.rope_theta = 50.0;
    a.qk_norm = QkNorm::Head;
  }
  return a;
}

std::string case_name(const Case& c) {
  std::string s = c.strategy + "_" + c.function + (c.arch.empty() ? "" : "_" + c.arch);
  if (c.embed_norm >= 0) s += c.embed_norm ? "_embed" : "_noembed";
  if (c.final_norm >= 0) s += c.final_norm ? "_final" : "_nofinal";
  return s;
}

// Worst relative FD error over all tensors, with each tensor's error reported on failure.
double max_fd_error(const Case& c, double weight_std, bool expect_pass) {
  ModelDims d{4, 2, 6, 11, 13, 7, {}};  // L, NH, C, V, Vp, maxT: odd sizes, padded vocab
  if (!c.arch.empty()) {
    d.C = 8;
    d.arch = arch_for(c.arch);
  }
  NormConfig nc;
  nc.strategy = c.strategy;
  nc.function = c.function;
  if (c.embed_norm >= 0) nc.embed_norm = c.embed_norm == 1;
  if (c.final_norm >= 0) nc.final_norm = c.final_norm == 1;
  const ModelPlan plan = make_plan(nc, d, "auto");
  auto be = make_cpu_backend<double>();
  const int B = 2, T = 5;
  GPT<double> model(d, plan, *be, B, T);
  auto init = randn(model.params.size(), 42, weight_std);
  for (size_t i = 0; i < init.size(); ++i) model.params[i] = init[i];
  for (const auto& t : model.table().tensors())
    if (t.kind == ParamKind::Gain || t.name.rfind("geoa", 0) == 0 || t.name == "sqk" || t.name == "suv" ||
        t.name == "sz")
      for (size_t k = 0; k < t.numel; ++k) model.params[t.offset + k] += 1.0;
  std::vector<int32_t> in = {1, 5, 10, 0, 3, 7, 7, 2, 9, 4}, tg = {5, 10, 0, 3, 8, 7, 2, 9, 4, 6};
  model.zero_grad();
  model.forward(in.data(), tg.data());
  model.backward(1.0);
  const std::vector<double> analytic = model.grads.to_host();
  double worst = 0;
  for (const auto& t : model.table().tensors()) {
    std::vector<double> x(model.params.begin() + t.offset, model.params.begin() + t.offset + t.numel);
    std::vector<double> g(analytic.begin() + t.offset, analytic.begin() + t.offset + t.numel);
    auto loss = [&] {
      std::copy(x.begin(), x.end(), model.params.begin() + t.offset);
      return model.forward(in.data(), tg.data());
    };
    GradError e = fd_check(x, g, loss);
    std::copy(x.begin(), x.end(), model.params.begin() + t.offset);
    // Some gradients are exactly zero by symmetry (a bias on k shifts every score of a query
    // equally, which the softmax ignores): there only the absolute error can be judged.
    const bool zero_grad = e.norm < 1e-9;
    if (expect_pass && zero_grad) {
      EXPECT_LT(e.max_abs, 1e-9) << t.name << " (zero gradient)";
    } else if (expect_pass) {
      EXPECT_LT(e.rel(), Tolerances<double>::value.fd_rel) << t.name << " max abs err " << e.max_abs;
    }
    if (zero_grad) continue;
    worst = std::max(worst, e.rel());
  }
  return worst;
}

class ModelFD : public ::testing::TestWithParam<Case> {};

TEST_P(ModelFD, EveryParameter) {
  const double worst = max_fd_error(GetParam(), 0.3, true);
  std::printf("[fd %s] max relative gradient error %.3g\n", case_name(GetParam()).c_str(), worst);
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const std::string& s : strategy_names())
    for (const char* f : {"layernorm", "rmsnorm"}) cases.push_back({s, f, -1, -1, ""});
  // the switches, on strategies whose default is the opposite
  cases.push_back({"pre", "layernorm", 1, 0, ""});
  cases.push_back({"post", "rmsnorm", 1, 1, ""});
  cases.push_back({"geonorm", "layernorm", 0, 0, ""});
  // the block options
  cases.push_back({"pre", "rmsnorm", -1, -1, "llama"});
  cases.push_back({"pre", "layernorm", -1, -1, "qkfull"});
  cases.push_back({"peri", "layernorm", -1, -1, "rope_gelu"});
  cases.push_back({"dyt", "layernorm", -1, -1, "rope_gelu"});
  cases.push_back({"residual", "rmsnorm", -1, -1, "llama"});
  cases.push_back({"hybridnorm", "layernorm", -1, -1, "qkfull"});
  cases.push_back({"hybridnorm_star", "rmsnorm", -1, -1, "rope_gelu"});
  for (const char* s : {"ngpt", "angpt"}) {
    cases.push_back({s, "layernorm", -1, -1, "llama_noqk"});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Strategies, ModelFD, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) { return case_name(info.param); });

}  // namespace
