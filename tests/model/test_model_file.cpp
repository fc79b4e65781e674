// llm.c model files and resume-state files: byte-identical round trips and every rejection.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/cli.hpp"
#include "config/config.hpp"
#include "core/errors.hpp"
#include "model/model_file.hpp"
#include "train/checkpoint.hpp"
#include "train/model_setup.hpp"

using namespace ng;
using namespace ng::test;

namespace {

const std::string kFx = std::string(NORMGPT_FIXTURES) + "/reference/pre_layernorm";

ModelPlan plan_for(const ModelFileInfo& info, const char* function = "layernorm") {
  NormConfig nc;
  nc.function = function;
  return make_plan(nc, info.dims, "auto");
}

TEST(ModelFile, Fp32RoundTripIsByteIdentical) {
  TempDir dir("model_file");
  const ModelFileInfo info = read_model_info(kFx + "/model.bin");
  EXPECT_EQ(info.version, 3);
  EXPECT_FALSE(info.has_strategy);
  EXPECT_EQ(info.dims.L, 3);
  EXPECT_EQ(info.dims.Vp, 64);
  const ModelPlan plan = plan_for(info);
  ParamTable table(info.dims, plan);
  std::vector<float> p(table.total());
  load_model_file(kFx + "/model.bin", table, plan, p.data());
  write_model_file(dir / "out.bin", table, plan, p.data());
  EXPECT_EQ(slurp(dir / "out.bin"), slurp(kFx + "/model.bin"));
}

TEST(ModelFile, Bf16RoundTripIsByteIdenticalAndCloseToFp32) {
  TempDir dir("model_file_bf16");
  const ModelFileInfo info = read_model_info(kFx + "/model_bf16.bin");
  EXPECT_EQ(info.version, 5);
  const ModelPlan plan = plan_for(info);
  ParamTable table(info.dims, plan);
  std::vector<float> bf(table.total()), fp(table.total());
  load_model_file(kFx + "/model_bf16.bin", table, plan, bf.data());
  load_model_file(kFx + "/model.bin", table, plan, fp.data());
  for (size_t i = 0; i < fp.size(); ++i) ASSERT_NEAR(bf[i], fp[i], std::abs(fp[i]) * (1.0 / 256) + 1e-30) << i;
  write_model_file(dir / "out.bin", table, plan, bf.data(), kModelVersionBf16);
  EXPECT_EQ(slurp(dir / "out.bin"), slurp(kFx + "/model_bf16.bin"));
}

TEST(ModelFile, RmsnormRejectsNonZeroNormBiases) {
  const ModelFileInfo info = read_model_info(kFx + "/model.bin");  // layernorm fixture: biases != 0
  const ModelPlan plan = plan_for(info, "rmsnorm");
  ParamTable table(info.dims, plan);
  std::vector<float> p(table.total());
  try {
    load_model_file(kFx + "/model.bin", table, plan, p.data());
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("norm bias 'ln1b' is non-zero"), std::string::npos) << e.what();
  }
}

TEST(ModelFile, StrategyIsRecordedAndEnforced) {
  TempDir dir("model_file_strategy");
  const ModelFileInfo info = read_model_info(kFx + "/model.bin");
  NormConfig nc;
  nc.embed_norm = true;  // not plain GPT-2: the extension is written, with the extra tensor appended
  const ModelPlan with_embed = make_plan(nc, info.dims, "auto");
  ParamTable table(info.dims, with_embed);
  std::vector<float> p(table.total(), 0.5f);
  write_model_file(dir / "m.bin", table, with_embed, p.data());
  const ModelFileInfo back = read_model_info(dir / "m.bin");
  EXPECT_TRUE(back.has_strategy);
  EXPECT_EQ(back.strategy, "pre");
  EXPECT_TRUE(back.embed_norm);
  EXPECT_EQ(back.extra_elements, table.total() - table.gpt2_total());
  std::vector<float> q(table.total());
  load_model_file(dir / "m.bin", table, with_embed, q.data());
  EXPECT_EQ(p, q);
  // ...and it does not load into a plan that differs.
  const ModelPlan plain = plan_for(info);
  ParamTable plain_table(info.dims, plain);
  std::vector<float> r(plain_table.total());
  EXPECT_THROW(load_model_file(dir / "m.bin", plain_table, plain, r.data()), UserError);
}

// Block options (docs/blocks.md) travel in the header: a llama-style nGPT model round-trips, the
// shapes follow the options (no wpe, no biases, SwiGLU widths, an untied head), and a config with
// other block options is refused with a message naming both.
TEST(ModelFile, BlockOptionsAreRecordedAndEnforced) {
  TempDir dir("model_file_arch");
  ModelDims d{2, 2, 16, 29, 32, 9, {}};
  d.arch.rope = true;
  d.arch.rope_theta = 500000.0;
  d.arch.swiglu = true;
  d.arch.hidden = 40;
  d.arch.bias = false;
  d.arch.qk_norm = QkNorm::None;
  d.arch.tied = false;
  NormConfig nc;
  nc.strategy = "ngpt";
  nc.ngpt.alpha_init = 0.2;  // not in the shapes: the recorded norm section carries it
  const ModelPlan plan = make_plan(nc, d, "auto");
  ParamTable table(d, plan);
  EXPECT_EQ(table.get("wpe").numel, 0u);
  EXPECT_EQ(table.get("fcb").numel, 0u);
  EXPECT_EQ(table.get("fcw").numel, size_t(2 * 80 * 16));
  EXPECT_EQ(table.get("fcprojw").numel, size_t(2 * 16 * 40));
  EXPECT_EQ(table.get("lmheadw").numel, size_t(32 * 16));
  std::vector<float> p(table.total());
  for (size_t i = 0; i < p.size(); ++i) p[i] = float(i % 97) / 97.0f - 0.5f;
  write_model_file(dir / "m.bin", table, plan, p.data());
  const ModelFileInfo back = read_model_info(dir / "m.bin");
  EXPECT_TRUE(back.has_strategy);
  EXPECT_TRUE(back.dims.arch.rope && back.dims.arch.swiglu && !back.dims.arch.bias && !back.dims.arch.tied);
  EXPECT_EQ(back.dims.arch.hidden, 40);
  EXPECT_EQ(back.dims.arch.rope_theta, 500000.0);
  const ModelSpec alone = model_spec_from_file(dir / "m.bin");  // what sample/eval rebuild
  EXPECT_EQ(alone.plan.strategy, "ngpt");
  EXPECT_DOUBLE_EQ(alone.plan.blocks[1].mlp.lerp.alpha_scale, 0.2 * 4.0);  // alpha_init sqrt(C)
  EXPECT_TRUE(alone.dims.arch.swiglu && alone.dims.arch.hidden == 40);
  std::vector<float> q(table.total());
  load_model_file(dir / "m.bin", table, plan, q.data());
  EXPECT_EQ(p, q);
  for (auto change : {+[](ModelDims& x) { x.arch.rope = false; }, +[](ModelDims& x) { x.arch.hidden = 48; },
                      +[](ModelDims& x) { x.arch.tied = true; }}) {
    ModelDims other = d;
    change(other);
    const ModelPlan op = make_plan(nc, other, "auto");
    ParamTable ot(other, op);
    std::vector<float> r(ot.total());
    try {
      load_model_file(dir / "m.bin", ot, op, r.data());
      ADD_FAILURE() << "loaded into other block options";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("block options"), std::string::npos) << e.what();
    }
  }
}

TEST(ModelFile, RejectsBadFiles) {
  TempDir dir("model_file_bad");
  const std::string good = slurp(kFx + "/model.bin");
  auto expect_msg = [&](const std::string& bytes, const std::string& needle) {
    std::ofstream(dir / "bad.bin", std::ios::binary) << bytes;
    try {
      read_model_info(dir / "bad.bin");
      FAIL() << "accepted a bad file; wanted '" << needle << "'";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_msg(good.substr(0, 100), "too short");
  expect_msg(good.substr(0, good.size() - 4), "header implies");
  std::string bad_magic = good;
  bad_magic[0] ^= 1;
  expect_msg(bad_magic, "bad magic");
  std::string bad_version = good;
  bad_version[4] = 4;
  expect_msg(bad_version, "version 4");
  std::string bad_dims = good;
  bad_dims[5 * 4] = 7;  // NH 7 does not divide C 16
  expect_msg(bad_dims, "invalid dimensions");
  EXPECT_THROW(read_model_info(dir / "absent.bin"), UserError);
  // a header whose sizes overflow 64 bits (found while fuzzing; kept as a regression input)
  expect_msg(slurp(std::string(NORMGPT_SOURCE_DIR) + "/fuzz/regressions/model_file/size_overflow_fp32"),
             "header implies");
}

TEST(StateFile, RoundTripAndRejections) {
  TempDir dir("state_file");
  TrainState s;
  s.step = 42;
  s.world = 1;
  s.rng = {1, 2, 3, 4};
  s.loader = {3, 17, 2, {5, 6, 7, 8}};
  s.m = {0.5f, -1.0f, 2.0f};
  s.v = {0.25f, 1.0f, 4.0f};
  write_state_file(dir / "state.bin", s);
  const TrainState b = read_state_file(dir / "state.bin", 3);
  EXPECT_EQ(b.step, 42);
  EXPECT_EQ(b.rng, s.rng);
  EXPECT_EQ(b.loader.shard, 3u);
  EXPECT_EQ(b.loader.sample, 17u);
  EXPECT_EQ(b.loader.epoch, 2u);
  EXPECT_EQ(b.loader.rng, s.loader.rng);
  EXPECT_EQ(b.m, s.m);
  EXPECT_EQ(b.v, s.v);
  EXPECT_THROW(read_state_file(dir / "state.bin", 4), UserError);     // other model size
  EXPECT_THROW(read_state_file(dir / "state.bin", 3, 2), UserError);  // other world size
  std::filesystem::resize_file(dir / "state.bin", std::filesystem::file_size(dir / "state.bin") - 1);
  EXPECT_THROW(read_state_file(dir / "state.bin", 3), UserError);
  std::ofstream(dir / "junk.bin") << std::string(200, 'j');
  EXPECT_THROW(read_state_file(dir / "junk.bin", 3), UserError);
}

}  // namespace
