// Per-op timing (log.op_timing, NORMGPT_OP_TIMING=1) through the command line: configs/tiny.json
// for a few steps over a byte shard made by `normgpt tokenize` from the repository's own text.
// The table names only ops of the op list, counts calls per timed step as the model makes them,
// its shares (with "outside ops") add up to 100%, and timing changes no result. Wrong types and
// values of the switch are one-line errors with exit code 2. On the device path (the guarded
// stand-in registered as "cuda") a timed run equals the untimed CPU run bitwise.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "backend/registry.hpp"
#include "backend/timed_backend.hpp"
#include "common/cli.hpp"
#include "common/guarded_backend.hpp"
#include "data/shard.hpp"
#include "train/trainer.hpp"

using namespace ng::test;
using nlohmann::json;

namespace {

const std::string kSrc = NORMGPT_SOURCE_DIR;

class OpTimingCli : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("NORMGPT_OP_TIMING");
    CliResult r = normgpt("tokenize --tokenizer byte --val-fraction 0.1 --output-dir " + (dir_ / "shard") +
                          " --input " + kSrc + "/README.md " + kSrc + "/configs/README.md " + kSrc + "/docs/cuda.md");
    ASSERT_EQ(r.code, 0) << r.out;
  }
  void TearDown() override { unsetenv("NORMGPT_OP_TIMING"); }
  // `normgpt train` of configs/tiny.json into dir_/run for `steps` steps, plus `extra` flags.
  CliResult train(const std::string& run, int steps, const std::string& extra = "") {
    return normgpt("train -c " + kSrc + "/configs/tiny.json -o " + (dir_ / run) + " --set train.steps=" +
                   std::to_string(steps) + " --set 'data.train=\"" + (dir_ / "shard") + "/train_*.bin\"'" +
                   " --set 'data.val=\"" + (dir_ / "shard") + "/val_*.bin\"' --set eval.batches=1 " + extra);
  }
  json timing(const std::string& run) { return json::parse(slurp(dir_ / run + "/op_timing.json")); }
  std::map<std::string, long> calls(const json& t) {
    std::map<std::string, long> c;
    for (const auto& row : t["ops"]) c[row["op"].get<std::string>()] = row["calls"].get<long>();
    return c;
  }
  // Every metrics row without its timing fields.
  std::vector<json> rows(const std::string& run) {
    std::vector<json> out;
    std::ifstream f(dir_ / run + "/metrics.jsonl");
    std::string line;
    while (std::getline(f, line)) {
      json j = json::parse(line);
      for (const char* k : {"step_ms", "tokens_per_s"}) j.erase(k);
      out.push_back(j);
    }
    return out;
  }
  void expect_rejected(const std::string& run, const std::string& extra, const std::string& needle) {
    CliResult r = train(run, 2, extra);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << r.out;
    const std::string last = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
    EXPECT_NE(last.find("error"), std::string::npos) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "not one line:\n" << r.out;
    EXPECT_FALSE(std::filesystem::exists(dir_ / run));
  }
  TempDir dir_{"op_timing_cli"};
};

TEST_F(OpTimingCli, EnvironmentSwitchGivesATableOfTheStepsOps) {
  const int steps = 5, timed = steps - 1;  // the first step is warm-up
  setenv("NORMGPT_OP_TIMING", "1", 1);
  CliResult r = train("run", steps);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("op timing (wall clock): 4 step(s) after 1 warm-up step(s)"), std::string::npos) << r.out;
  EXPECT_NE(slurp(dir_ / "run/train.log").find("outside ops"), std::string::npos);  // the table is in train.log too

  const json t = timing("run");
  EXPECT_EQ(t["steps"], timed);
  EXPECT_EQ(t["warmup_steps"], 1);
  EXPECT_EQ(t["clock"], "wall clock");
  std::set<std::string> known;
  for (std::string_view op : ng::kOpNames) known.insert(std::string(op));
  for (std::string_view call : ng::kTimedMemoryCalls) known.insert(std::string(call));
  const std::map<std::string, long> c = calls(t);
  for (const auto& [op, n] : c) {
    EXPECT_TRUE(known.count(op)) << op << " is not an op of the list";
    EXPECT_EQ(n % timed, 0) << op << ": " << n << " calls in " << timed << " steps";
    EXPECT_NE(r.out.find(op), std::string::npos) << op << " missing from the console table";
  }
  // tiny.json: 2 pre-LN layernorm blocks, grad_accum 1: per step one embedding, a loss, 2
  // attentions, 4 matmuls per block plus the head, 2 norms per block plus the final one.
  EXPECT_EQ(c.at("encoder_forward"), timed);
  EXPECT_EQ(c.at("encoder_backward"), timed);
  EXPECT_EQ(c.at("crossentropy_forward"), timed);
  EXPECT_EQ(c.at("attention_forward"), 2 * timed);
  EXPECT_EQ(c.at("attention_backward"), 2 * timed);
  EXPECT_EQ(c.at("matmul_forward"), 9 * timed);
  EXPECT_EQ(c.at("matmul_backward"), 9 * timed);
  EXPECT_EQ(c.at("norm_forward"), 5 * timed);
  EXPECT_EQ(c.at("sum_squares"), timed);
  EXPECT_GE(c.at("adamw_update"), timed);

  double shares = t["outside_ops"]["share"].get<double>(), ops_ms = t["outside_ops"]["total_ms"].get<double>();
  for (const auto& row : t["ops"]) {
    shares += row["share"].get<double>();
    ops_ms += row["total_ms"].get<double>();
  }
  EXPECT_NEAR(shares, 100.0, 0.5);
  EXPECT_NEAR(ops_ms, t["step_ms"].get<double>(), 0.005 * t["step_ms"].get<double>());
  EXPECT_LT(t["outside_ops"]["share"].get<double>(), 50.0) << "most of a CPU step is in its ops";
}

TEST_F(OpTimingCli, ConfigKeyScalesCallsWithAccumulationAndChangesNoResult) {
  ASSERT_EQ(train("plain", 3, "--set train.grad_accum=2").code, 0);
  CliResult r = train("timed", 3, "--set train.grad_accum=2 --set log.op_timing=true");
  ASSERT_EQ(r.code, 0) << r.out;
  const std::map<std::string, long> c = calls(timing("timed"));
  EXPECT_EQ(c.at("encoder_forward"), 2 * 2);  // 2 timed steps x 2 micro-batches
  EXPECT_EQ(c.at("sum_squares"), 2);
  EXPECT_EQ(rows("timed"), rows("plain"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "plain/op_timing.json"));
}

TEST_F(OpTimingCli, BadSwitchesAreOneLineErrors) {
  expect_rejected("r1", "--set log.op_timing=yes", "log.op_timing: expected boolean, got string");
  expect_rejected("r2", "--set log.op_timing=1", "log.op_timing: expected boolean");
  setenv("NORMGPT_OP_TIMING", "yes", 1);
  expect_rejected("r3", "", "NORMGPT_OP_TIMING: expected 0 or 1, got 'yes'");
  setenv("NORMGPT_OP_TIMING", "0", 1);  // off: the key decides
  ASSERT_EQ(train("off", 2).code, 0);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "off/op_timing.json"));
}

// In process: the guarded backend (memory the host may not touch) as device "cuda", wrapped by the
// decorator. The table covers its ops with the host's wall clock (it registers no clock).
TEST(OpTimingDevicePath, TimedGuardedRunEqualsTheCpuRunBitwise) {
  using namespace ng;
  DeviceBackendFactory f{"cuda", +[]() { return 1; },
                         +[](int) -> std::unique_ptr<Backend<float>> { return std::make_unique<GuardedBackend<float>>(); }};
  f.make_bf16 = +[](int) -> std::unique_ptr<Backend<bf16>> { return std::make_unique<GuardedBackend<bf16>>(); };
  register_device_backend(f);
  TempDir dir("op_timing_device");
  std::vector<int32_t> toks(20000);
  for (size_t i = 0; i < toks.size(); ++i) toks[i] = int32_t(97 + (i * 7919) % 13);
  write_shard(dir / "train_000000.bin", toks);
  const json cfg = {{"model", {{"n_layer", 2}, {"n_head", 2}, {"d_model", 16}, {"seq_len", 16}, {"vocab_size", 257}}},
                    {"train", {{"batch_size", 2}, {"steps", 4}}},
                    {"data", {{"train", dir / "train_*.bin"}}},
                    {"log", {{"layer_stats_every", 2}}}};
  std::ofstream(dir / "cfg.json") << cfg.dump();
  auto train = [&](const std::string& run, const std::string& device, const std::string& precision, bool timed) {
    TrainOptions o;
    o.config_path = dir / "cfg.json";
    o.overrides = {"device=" + device, "precision=" + precision, std::string("log.op_timing=") + (timed ? "true" : "false")};
    o.run_dir = dir / run;
    return run_train(o);
  };
  for (const char* precision : {"fp32", "bf16"}) {
    const std::string p = precision;
    ASSERT_EQ(train("cpu_" + p, "cpu", p, false), 0);
    ASSERT_EQ(train("dev_" + p, "cuda", p, true), 0);
    auto rows = [&](const std::string& run) {
      std::vector<json> out;
      for (const json& row : metric_rows(dir / run + "/metrics.jsonl", "step")) {
        json j = row;
        for (const char* k : {"step_ms", "tokens_per_s"}) j.erase(k);
        out.push_back(j);
      }
      return out;
    };
    EXPECT_EQ(rows("cpu_" + p), rows("dev_" + p)) << precision;
    const json t = json::parse(slurp(dir / "dev_" + p + "/op_timing.json"));
    EXPECT_EQ(t["steps"], 3) << precision;
    EXPECT_EQ(t["clock"], "wall clock");
  }
}

}  // namespace
