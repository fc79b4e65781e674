// Every rejection path of the command line: exit code 2 and a one-line message naming what is
// wrong. Nothing here may crash, hang or touch an existing run.
#include <gtest/gtest.h>

#include <fstream>

#include "common/cli.hpp"
#include "data/shard.hpp"

using namespace ng::test;
using nlohmann::json;

namespace {

class ErrorsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<int32_t> toks(5000);
    for (size_t i = 0; i < toks.size(); ++i) toks[i] = int32_t(i % 200);
    ng::write_shard(dir_ / "train_000000.bin", toks);
    base_ = {{"model", {{"n_layer", 1}, {"n_head", 2}, {"d_model", 16}, {"seq_len", 16}, {"vocab_size", 257}}},
             {"train", {{"batch_size", 2}, {"steps", 2}}},
             {"data", {{"train", dir_ / "train_000000.bin"}}}};
  }
  std::string config(const json& patch = json::object()) {
    json c = base_;
    c.merge_patch(patch);
    const std::string path = dir_ / ("cfg" + std::to_string(n_++) + ".json");
    std::ofstream(path) << c.dump();
    return path;
  }
  // Expects exit code 2 and `needle` in a single-line message.
  void expect_rejected(const std::string& args, const std::string& needle) {
    CliResult r = normgpt(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << "message lacks '" << needle << "':\n" << r.out;
    EXPECT_EQ(r.out.find("terminate called"), std::string::npos) << r.out;
    // The error is one line (the last line of output).
    const std::string last = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
    EXPECT_NE(last.find("error"), std::string::npos) << r.out;
  }
  TempDir dir_{"errors_cli"};
  json base_;
  int n_ = 0;
};

TEST_F(ErrorsCli, ConfigProblems) {
  expect_rejected("train -c " + (dir_ / "nope.json"), "config file not found");
  expect_rejected("train -c " + config({{"model", {{"n_layers", 2}}}}) + " -o " + (dir_ / "r"), "model.n_layers");
  expect_rejected("train -c " + config({{"optim", {{"lr", "fast"}}}}) + " -o " + (dir_ / "r"), "optim.lr");
  expect_rejected("train -c " + config({{"model", {{"d_model", 15}}}}) + " -o " + (dir_ / "r"), "divisible");
  expect_rejected("train -c " + config({{"norm", {{"strategy", "sideways"}}}}) + " -o " + (dir_ / "r"),
                  "unknown strategy 'sideways'");
  expect_rejected("train -c " + config() + " --set train.stepz=3 -o " + (dir_ / "r"), "train.stepz");
  expect_rejected("train -c " + config() + " --set precision=half -o " + (dir_ / "r"), "precision");
  expect_rejected("train -c " + config() + " --set precision=bf16 --set dist.zero=1 -o " + (dir_ / "r"), "dist.zero 1");
  // no GPU here (CI): a build without CUDA, or one that finds no device, refuses device cuda
  if (!std::filesystem::exists("/dev/nvidiactl"))
    expect_rejected("train -c " + config() + " --set device=cuda -o " + (dir_ / "r"), "CUDA");
  std::ofstream(dir_ / "broken.json") << "{\"model\": {";
  expect_rejected("train -c " + (dir_ / "broken.json"), "parse error");
  std::ofstream(dir_ / "overflow.json") << "{\"model\": {\"n_layer\": 1e400}}";  // found by fuzzing
  expect_rejected("info -c " + (dir_ / "overflow.json"), "number overflow");
  // block options (docs/blocks.md) a strategy cannot take, or that the shapes forbid
  expect_rejected("train -c " + config({{"norm", {{"strategy", "ngpt"}}}, {"model", {{"qk_norm", "head"}}}}) + " -o " +
                      (dir_ / "r"),
                  "model.qk_norm");
  expect_rejected("train -c " + config({{"norm", {{"strategy", "angpt"}, {"final_norm", true}}}}) + " -o " + (dir_ / "r"),
                  "no norm layers");
  expect_rejected("train -c " + config({{"model", {{"pos", "rope"}, {"n_head", 2}, {"d_model", 6}}}}) + " -o " +
                      (dir_ / "r"),
                  "even head size");
  expect_rejected("train -c " + config({{"model", {{"mlp", "relu"}}}}) + " -o " + (dir_ / "r"), "model.mlp");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "r"));  // rejected before creating the run directory
}

TEST_F(ErrorsCli, DataProblems) {
  expect_rejected("train -c " + config({{"data", {{"train", dir_ / "missing_*.bin"}}}}) + " -o " + (dir_ / "r1"),
                  "missing_*.bin");
  std::ofstream(dir_ / "garbage.bin") << std::string(2000, 'x');
  expect_rejected("train -c " + config({{"data", {{"train", dir_ / "garbage.bin"}}}}) + " -o " + (dir_ / "r2"),
                  "garbage.bin");
  // tokens beyond the vocabulary: ids up to 199 with vocab_size 100
  expect_rejected("train -c " + config({{"model", {{"vocab_size", 100}}}}) + " -o " + (dir_ / "r3"), "vocab");
  expect_rejected("tokenize --input " + (dir_ / "nothing.txt") + " --output-dir " + (dir_ / "tok"), "nothing.txt");
}

TEST_F(ErrorsCli, ModelAndStateFileProblems) {
  std::ofstream(dir_ / "fake_model.bin") << std::string(4096, '\0');
  expect_rejected("train -c " + config({{"model", {{"init_from", dir_ / "fake_model.bin"}}}}) + " -o " + (dir_ / "r"),
                  "bad magic");
  expect_rejected("sample --checkpoint " + (dir_ / "fake_model.bin"), "bad magic");
  expect_rejected("sample --checkpoint " + (dir_ / "absent.bin"), "absent.bin");
  // a real run, then damage its latest state file: resume refuses it, the model file stays intact
  const std::string cfg = config();
  ASSERT_EQ(normgpt("train -c " + cfg + " -o " + (dir_ / "run") + " --stop-after 1").code, 0);
  const std::string state = dir_ / "run/checkpoints/step_00000001/state.bin";
  std::filesystem::resize_file(state, std::filesystem::file_size(state) - 4);
  expect_rejected("train -c " + cfg + " -o " + (dir_ / "run") + " --resume", "truncated");
  // the model file is a real llm.c file: truncating it is caught by its size check
  const std::string model = dir_ / "run/checkpoints/step_00000001/model.bin";
  std::filesystem::resize_file(model, std::filesystem::file_size(model) - 8);
  expect_rejected("sample --checkpoint " + model, "header implies");
}

TEST_F(ErrorsCli, RunDirectoryProtection) {
  const std::string cfg = config();
  ASSERT_EQ(normgpt("train -c " + cfg + " -o " + (dir_ / "run")).code, 0);
  const std::string before = slurp(dir_ / "run/metrics.jsonl");
  expect_rejected("train -c " + cfg + " -o " + (dir_ / "run"), "already holds a run");
  EXPECT_EQ(slurp(dir_ / "run/metrics.jsonl"), before);
  expect_rejected("train -c " + cfg + " -o " + (dir_ / "fresh") + " --resume", "does not exist");
}

TEST_F(ErrorsCli, FlagProblems) {
  expect_rejected("", "");  // no subcommand
  expect_rejected("train", "--config");
  expect_rejected("train -c " + config() + " --bogus", "--bogus");
  expect_rejected("train -c " + config() + " --stop-after -3", "stop-after");
  expect_rejected("sample --checkpoint x.bin -n 0", "");
  expect_rejected("frobnicate", "frobnicate");
}

}  // namespace
