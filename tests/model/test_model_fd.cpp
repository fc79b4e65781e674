// Whole-model gradient check in double: every parameter of a tiny model against central finite
// differences of the loss, for each norm function and with the optional embed norm.
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
  const char* function;
  bool embed_norm;
  bool final_norm;
};

class ModelFD : public ::testing::TestWithParam<Case> {};

TEST_P(ModelFD, EveryParameter) {
  const Case c = GetParam();
  const ModelDims d{3, 2, 6, 11, 13, 7};  // L, NH, C, V, Vp, maxT: odd sizes, padded vocab
  NormConfig nc;
  nc.function = c.function;
  nc.embed_norm = c.embed_norm;
  nc.final_norm = c.final_norm;
  const ModelPlan plan = make_plan(nc, d.L, "auto");
  auto be = make_cpu_backend<double>();
  const int B = 2, T = 5;
  GPT<double> model(d, plan, *be, B, T);
  // Larger-than-default weights so every path carries a visible gradient.
  auto init = randn(model.params.size(), 42, 0.3);
  for (size_t i = 0; i < init.size(); ++i) model.params[i] = init[i];
  for (const auto& t : model.table().tensors())
    if (t.kind == ParamKind::Gain)
      for (size_t k = 0; k < t.numel; ++k) model.params[t.offset + k] += 1.0;
  std::vector<int32_t> in = {1, 5, 10, 0, 3, 7, 7, 2, 9, 4}, tg = {5, 10, 0, 3, 8, 7, 2, 9, 4, 6};
  model.zero_grad();
  model.forward(in.data(), tg.data());
  model.backward(1.0);
  std::vector<double> analytic = model.grads;
  auto loss = [&] { return model.forward(in.data(), tg.data()); };
  for (const auto& t : model.table().tensors()) {
    std::vector<double> x(model.params.begin() + t.offset, model.params.begin() + t.offset + t.numel);
    std::vector<double> g(analytic.begin() + t.offset, analytic.begin() + t.offset + t.numel);
    auto wrapped = [&] {
      std::copy(x.begin(), x.end(), model.params.begin() + t.offset);
      return loss();
    };
    GradError e = fd_check(x, g, wrapped);
    std::copy(x.begin(), x.end(), model.params.begin() + t.offset);
    EXPECT_LT(e.rel(), Tolerances<double>::value.fd_rel) << t.name << " max abs err " << e.max_abs;
  }
}

INSTANTIATE_TEST_SUITE_P(Pre, ModelFD,
                         ::testing::Values(Case{"layernorm", false, true}, Case{"rmsnorm", false, true},
                                           Case{"layernorm", true, true}, Case{"rmsnorm", true, false}),
                         [](const auto& info) {
                           return std::string(info.param.function) + (info.param.embed_norm ? "_embed" : "") +
                                  (info.param.final_norm ? "_final" : "_nofinal");
                         });

}  // namespace
