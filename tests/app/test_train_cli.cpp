// End-to-end training through the executable: determinism, stop/resume, init_from, run-directory
// contracts. Data: small synthetic shards written here, so the tests need no downloaded corpus.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "common/cli.hpp"
#include "common/tolerances.hpp"
#include "data/shard.hpp"

using namespace ng;
using namespace ng::test;
using nlohmann::json;

namespace {

// Byte-level "text" with some structure, so the loss can drop.
std::vector<int32_t> synthetic_tokens(size_t n, uint32_t seed) {
  std::vector<int32_t> t(n);
  const std::string words[] = {"the ", "cat ", "sat ", "on ", "a ", "mat. ", "and ", "dog ", "ran ", "far "};
  uint32_t x = seed;
  size_t i = 0;
  while (i < n) {
    x = x * 1664525u + 1013904223u;
    for (char c : words[(x >> 16) % 10])
      if (i < n) t[i++] = static_cast<unsigned char>(c);
  }
  return t;
}

class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    write_shard(dir_ / "train_000000.bin", synthetic_tokens(40000, 1));
    write_shard(dir_ / "val_000000.bin", synthetic_tokens(5000, 2));
    json cfg = {{"model", {{"n_layer", 2}, {"n_head", 2}, {"d_model", 32}, {"seq_len", 32}, {"vocab_size", 257}}},
                {"optim", {{"lr", 3e-3}, {"warmup_steps", 3}, {"weight_decay", 0.1}}},
                {"train", {{"batch_size", 4}, {"steps", 12}}},
                {"data", {{"train", dir_ / "train_*.bin"}, {"val", dir_ / "val_*.bin"}}},
                {"eval", {{"every", 4}, {"batches", 2}}},
                {"checkpoint", {{"every", 5}, {"keep", 0}}},
                {"seed", 7}};
    std::ofstream(dir_ / "cfg.json") << cfg.dump(2);
  }
  std::string train(const std::string& run, const std::string& extra = "") {
    return "train -c " + (dir_ / "cfg.json") + " -o " + (dir_ / run) + " " + extra;
  }
  std::vector<double> losses(const std::string& run, const char* key = "train_loss") {
    std::vector<double> v;
    for (const auto& r : metric_rows(dir_ / run + "/metrics.jsonl", key)) v.push_back(r[key].get<double>());
    return v;
  }
  TempDir dir_{"train_cli"};
};

TEST_F(TrainCli, RunDirectoryContract) {
  auto r = normgpt(train("a"));
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string run = dir_ / "a";
  for (const char* f : {"config.json", "metrics.jsonl", "train.log", "summary.json", "checkpoints/latest",
                        "checkpoints/step_00000005/model.bin", "checkpoints/step_00000005/state.bin",
                        "checkpoints/step_00000012/model.bin"})
    EXPECT_TRUE(std::filesystem::exists(run + "/" + f)) << f;
  EXPECT_EQ(slurp(run + "/checkpoints/latest"), "step_00000012\n");
  const json summary = json::parse(slurp(run + "/summary.json"));
  EXPECT_EQ(summary["status"], "completed");
  EXPECT_EQ(summary["steps"], 12);
  EXPECT_EQ(summary["tokens"], 12 * 4 * 32);
  for (const char* k : {"final_train_loss", "final_val_loss", "best_val_loss", "wall_s", "tokens_per_s"})
    EXPECT_TRUE(summary[k].is_number()) << k;
  auto train_rows = metric_rows(run + "/metrics.jsonl", "train_loss");
  ASSERT_EQ(train_rows.size(), 12u);
  for (int s = 0; s < 12; ++s) {
    EXPECT_EQ(train_rows[s]["step"], s);
    EXPECT_EQ(train_rows[s]["tokens"], (s + 1) * 4 * 32);
    for (const char* k : {"lr", "grad_norm", "step_ms", "tokens_per_s"}) EXPECT_TRUE(train_rows[s][k].is_number());
  }
  // val at steps 0, 4, 8 (before those updates) and at the end (12)
  auto val_rows = metric_rows(run + "/metrics.jsonl", "val_loss");
  ASSERT_EQ(val_rows.size(), 4u);
  EXPECT_EQ(val_rows[3]["step"], 12);
  EXPECT_LT(val_rows[3]["val_loss"].get<double>(), val_rows[0]["val_loss"].get<double>());
  EXPECT_DOUBLE_EQ(summary["final_val_loss"].get<double>(), val_rows[3]["val_loss"].get<double>());
  // the resolved config is complete and loads again
  const json resolved = json::parse(slurp(run + "/config.json"));
  EXPECT_EQ(resolved["model"]["d_model"], 32);
  EXPECT_EQ(resolved["norm"]["strategy"], "pre");
  EXPECT_EQ(resolved["optim"]["beta2"], 0.95);
  // the console lines went to train.log too
  EXPECT_NE(slurp(run + "/train.log").find("step    12/12 | loss"), std::string::npos);
}

TEST_F(TrainCli, SameSeedSameLosses) {
  ASSERT_EQ(normgpt(train("a")).code, 0);
  ASSERT_EQ(normgpt(train("b")).code, 0);
  EXPECT_EQ(losses("a"), losses("b"));
  EXPECT_EQ(losses("a", "val_loss"), losses("b", "val_loss"));
  ASSERT_EQ(normgpt(train("c", "--set seed=8")).code, 0);
  EXPECT_NE(losses("a"), losses("c"));
}

TEST_F(TrainCli, StopAndResumeEqualsUninterrupted) {
  ASSERT_EQ(normgpt(train("full")).code, 0);
  auto r = normgpt(train("part", "--stop-after 7"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(json::parse(slurp(dir_ / "part/summary.json"))["status"], "interrupted");
  EXPECT_EQ(losses("part").size(), 7u);
  r = normgpt(train("part", "--resume"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(losses("part"), losses("full"));  // bitwise: same losses, in order, no duplicates
  EXPECT_EQ(losses("part", "val_loss"), losses("full", "val_loss"));
  EXPECT_EQ(json::parse(slurp(dir_ / "part/summary.json"))["status"], "completed");
  // resuming a finished run is harmless: nothing more to do, same final state
  EXPECT_EQ(slurp(dir_ / "part/checkpoints/step_00000012/model.bin"),
            slurp(dir_ / "full/checkpoints/step_00000012/model.bin"));
}

TEST_F(TrainCli, ResumeMayExtendStepsButNotChangeTheModel) {
  ASSERT_EQ(normgpt(train("a", "--stop-after 3")).code, 0);
  auto r = normgpt(train("a", "--resume --set optim.lr=1e-2"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("config key 'optim.lr' differs"), std::string::npos) << r.out;
  r = normgpt(train("a", "--resume --set train.steps=14"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(losses("a").size(), 14u);
}

// init_from the PyTorch fixture's model, training on the fixture's token stream: the trainer's
// losses must match the reference's ten AdamW steps (fp32 tolerance).
TEST_F(TrainCli, InitFromMatchesPyTorchReference) {
  const std::string fx_dir = std::string(NORMGPT_FIXTURES) + "/reference/pre_layernorm";
  const json fx = json::parse(slurp(fx_dir + "/fixture.json"));
  write_shard(dir_ / "fx_train_000000.bin", fx["tokens"].get<std::vector<int32_t>>());
  const json& o = fx["optim"];
  json cfg = {{"model", {{"seq_len", fx["T"]}, {"init_from", fx_dir + "/model.bin"}}},
              {"norm", {{"eps", fx["norm_eps"]}}},
              {"optim", o},
              {"train", {{"batch_size", fx["B"]}, {"steps", fx["steps"]}}},
              {"data", {{"train", dir_ / "fx_train_000000.bin"}}},
              {"checkpoint", {{"every", 0}}}};
  std::ofstream(dir_ / "fx.json") << cfg.dump(2);
  auto r = normgpt("train -c " + (dir_ / "fx.json") + " -o " + (dir_ / "fx_run"));
  ASSERT_EQ(r.code, 0) << r.out;
  auto got = losses("fx_run");
  ASSERT_EQ(got.size(), fx["losses"].size());
  for (size_t s = 0; s < got.size(); ++s)
    EXPECT_NEAR(got[s], fx["losses"][s].get<double>(), Tolerances<float>::value.ref_loss_abs) << "step " << s;
  // a model.bin written by a plain GPT-2 run is byte-compatible with llm.c: same header as the input
  const std::string out = slurp(dir_ / "fx_run/checkpoints/step_00000010/model.bin");
  const std::string in = slurp(fx_dir + "/model.bin");
  ASSERT_EQ(out.size(), in.size());
  EXPECT_EQ(out.substr(0, 1024), in.substr(0, 1024));
}

// A checkpoint records its strategy: it samples on its own, and loads only into that strategy.
TEST_F(TrainCli, CheckpointStrategyIsRecordedAndEnforced) {
  auto r = normgpt(train("peri", "--set norm.strategy=peri --set norm.function=rmsnorm"));
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string model = dir_ / "peri/checkpoints/step_00000012/model.bin";
  EXPECT_EQ(normgpt("sample --checkpoint " + model + " -n 5").code, 0);
  r = normgpt("eval -c " + (dir_ / "cfg.json") + " --set norm.strategy=peri --set norm.function=rmsnorm --checkpoint " +
              model);
  EXPECT_EQ(r.code, 0) << r.out;
  r = normgpt("eval -c " + (dir_ / "cfg.json") + " --checkpoint " + model);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("trained with norm.strategy 'peri', config asks for 'pre'"), std::string::npos) << r.out;
  r = normgpt(train("from_peri", "--set model.init_from=" + model));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("norm.strategy 'peri'"), std::string::npos) << r.out;
  // a plain GPT-2 file (a pre/layernorm run) starts any strategy
  r = normgpt(train("geo_from_pre", "--set norm.strategy=geonorm --set model.init_from=" +
                                        (dir_ / "a/checkpoints/step_00000012/model.bin")));
  EXPECT_EQ(r.code, 2) << "no run 'a' yet: the file is missing";
  ASSERT_EQ(normgpt(train("a")).code, 0);
  r = normgpt(train("geo_from_pre2", "--set norm.strategy=geonorm --set model.init_from=" +
                                         (dir_ / "a/checkpoints/step_00000012/model.bin")));
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST_F(TrainCli, SampleEvalInfo) {
  ASSERT_EQ(normgpt(train("a")).code, 0);
  const std::string model = dir_ / "a/checkpoints/step_00000012/model.bin";
  auto r = normgpt("sample --checkpoint " + model + " --prompt 'the cat' -n 20 --seed 3");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("the cat", 0), 0u) << r.out;
  EXPECT_GE(r.out.size(), 8u);
  EXPECT_EQ(r.out, normgpt("sample --checkpoint " + model + " --prompt 'the cat' -n 20 --seed 3").out);
  r = normgpt("eval -c " + (dir_ / "cfg.json") + " --checkpoint " + model);
  ASSERT_EQ(r.code, 0) << r.out;
  const json ev = json::parse(r.out);
  // eval.batches 2 from the start of val: the same number the trainer logged at the end
  EXPECT_NEAR(ev["val_loss"].get<double>(), losses("a", "val_loss").back(), 1e-6);
  r = normgpt("info -c " + (dir_ / "cfg.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  // 2 layers, d 32, V 257 padded to 320, context 32: wte 10240 + wpe 1024 + 2*(12*1024 + 13*32) + 64 = 36736
  EXPECT_NE(r.out.find("36736"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("6N + 12*L*T*d"), std::string::npos);
}

}  // namespace
