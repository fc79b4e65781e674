// Config loading: defaults, full files, extends, --set, strict checking, round trip, docs drift.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "config/schema.hpp"
#include "core/errors.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kFixtures = fs::path(NORMGPT_FIXTURES) / "config";

// Runs f, which must throw ng::UserError with a one-line message containing every substring.
void expect_user_error(const std::function<void()>& f, const std::vector<std::string>& subs) {
  try {
    f();
  } catch (const ng::UserError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
    for (const auto& s : subs) EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected ng::UserError, got another exception: " << e.what();
    return;
  }
  ADD_FAILURE() << "expected ng::UserError, nothing was thrown";
}

void expect_json_error(const std::string& text, const std::vector<std::string>& subs) {
  SCOPED_TRACE(text);
  expect_user_error([&] { ng::config_from_json(json::parse(text), "x.json"); }, subs);
}

class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("normgpt_test_config_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
};

TEST(Config, Defaults) {
  const ng::Config c = ng::config_from_json(json::object(), "empty");
  EXPECT_EQ(c.model.n_layer, 4);
  EXPECT_EQ(c.model.vocab_size, 257);
  EXPECT_EQ(c.norm.strategy, "pre");
  EXPECT_FALSE(c.norm.embed_norm.has_value());
  EXPECT_DOUBLE_EQ(c.optim.lr, 6e-4);
  EXPECT_EQ(c.optim.schedule, "cosine");
  EXPECT_TRUE(c.data.train.empty());
  EXPECT_EQ(c.device, "auto");
  EXPECT_EQ(c.seed, 1337u);
}

TEST(Config, FullFile) {
  const ng::Config c = ng::load_config((kFixtures / "full.json").string());
  EXPECT_EQ(c.model.n_layer, 6);
  EXPECT_EQ(c.model.n_head, 3);
  EXPECT_EQ(c.model.d_model, 96);
  EXPECT_EQ(c.model.seq_len, 32);
  EXPECT_EQ(c.model.max_seq_len, 48);
  EXPECT_EQ(c.model.vocab_size, 300);
  EXPECT_EQ(c.model.padded_vocab, 320);
  EXPECT_EQ(c.model.init, "plain");
  EXPECT_EQ(c.model.init_from, "models/x.bin");
  EXPECT_EQ(c.norm.strategy, "geonorm");
  EXPECT_EQ(c.norm.function, "rmsnorm");
  EXPECT_DOUBLE_EQ(c.norm.eps, 1e-6);
  EXPECT_EQ(c.norm.embed_norm, std::optional<bool>(true));
  EXPECT_EQ(c.norm.final_norm, std::optional<bool>(false));
  EXPECT_DOUBLE_EQ(c.norm.mixln.post_fraction, 0.5);
  EXPECT_EQ(c.norm.geonorm.decay, "sqrt");
  EXPECT_DOUBLE_EQ(c.norm.geonorm.clamp, 0.5);
  EXPECT_FALSE(c.norm.geonorm.learn_angle);
  EXPECT_FALSE(c.norm.geonorm.input_norm);
  EXPECT_DOUBLE_EQ(c.optim.lr, 0.001);
  EXPECT_EQ(c.optim.schedule, "linear");
  EXPECT_EQ(c.optim.warmup_steps, 10);
  EXPECT_DOUBLE_EQ(c.optim.min_lr_ratio, 0.1);
  EXPECT_DOUBLE_EQ(c.optim.weight_decay, 0.1);
  EXPECT_EQ(c.optim.decay_params, "all");
  EXPECT_DOUBLE_EQ(c.optim.beta1, 0.8);
  EXPECT_DOUBLE_EQ(c.optim.beta2, 0.99);
  EXPECT_DOUBLE_EQ(c.optim.eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.optim.grad_clip, 0.5);
  EXPECT_EQ(c.train.batch_size, 2);
  EXPECT_EQ(c.train.grad_accum, 3);
  EXPECT_EQ(c.train.steps, 7);
  EXPECT_EQ(c.data.train, (std::vector<std::string>{"a.bin", "b_*.bin"}));
  EXPECT_EQ(c.data.val, (std::vector<std::string>{"v.bin"}));
  EXPECT_TRUE(c.data.shuffle);
  EXPECT_EQ(c.eval.every, 5);
  EXPECT_EQ(c.eval.batches, 2);
  EXPECT_EQ(c.log.every, 2);
  EXPECT_EQ(c.log.layer_stats_every, 3);
  EXPECT_EQ(c.checkpoint.every, 4);
  EXPECT_EQ(c.checkpoint.keep, 2);
  EXPECT_EQ(c.sample.tokens, 16);
  EXPECT_DOUBLE_EQ(c.sample.temperature, 0.7);
  EXPECT_EQ(c.device, "cpu");
  EXPECT_EQ(c.seed, 42u);
}

TEST(Config, RoundTrip) {
  // full.json sets every key to a non-default value, so a key whose reader and writer disagree
  // (or two keys sharing a field) shows up as a difference.
  const json full = json::parse(std::ifstream(kFixtures / "full.json"));
  const json defaults = ng::config_to_json(ng::Config{});
  for (const auto& k : ng::config_detail::config_keys()) {
    const json* v = &full;
    std::stringstream ss(k.path);
    for (std::string part; std::getline(ss, part, '.');) v = &v->at(part);
    EXPECT_NE(*v, k.default_value) << k.path << " is not set to a non-default value in full.json";
  }
  for (const json& src : {defaults, full}) {
    const ng::Config c = ng::config_from_json(src, "src");
    const json j = ng::config_to_json(c);
    const json again = ng::config_to_json(ng::config_from_json(json::parse(j.dump()), "dump"));
    EXPECT_EQ(j, again);
  }
  const json j = ng::config_to_json(ng::config_from_json(full, "full"));
  json expect = full;
  expect["data"]["val"] = json::array({"v.bin"});  // a single string reads as a one-element list
  EXPECT_EQ(j, expect);
  EXPECT_TRUE(defaults["norm"]["embed_norm"].is_null());
  EXPECT_EQ(defaults["seed"], 1337);
}

TEST_F(ConfigFiles, ExtendsChainDeepMerge) {
  const ng::Config c = ng::load_config((kFixtures / "sub" / "chain_leaf.json").string());
  EXPECT_EQ(c.model.n_layer, 3);             // mid overrides base
  EXPECT_EQ(c.model.n_head, 2);              // from base
  EXPECT_EQ(c.model.d_model, 64);            // from base
  EXPECT_DOUBLE_EQ(c.optim.lr, 0.03);        // leaf overrides mid overrides base
  EXPECT_EQ(c.optim.warmup_steps, 5);        // sibling keys of an overridden key survive
  EXPECT_DOUBLE_EQ(c.optim.weight_decay, 0.1);
  EXPECT_EQ(c.norm.strategy, "peri");
  EXPECT_DOUBLE_EQ(c.norm.geonorm.clamp, 0.5);  // two levels deep: mid's clamp + leaf's decay
  EXPECT_EQ(c.norm.geonorm.decay, "none");
  EXPECT_EQ(c.data.train, (std::vector<std::string>{"leaf.bin"}));  // arrays are replaced
  EXPECT_EQ(c.data.val, (std::vector<std::string>{"base_val.bin"}));
  EXPECT_EQ(c.seed, 7u);
}

TEST_F(ConfigFiles, ExtendsCycle) {
  const std::string a = write("a.json", R"({"extends": "b.json"})");
  write("b.json", R"({"extends": "a.json", "seed": 1})");
  expect_user_error([&] { ng::load_config(a); }, {"extends cycle", "a.json -> ", "b.json -> ", "a.json"});
  const std::string self = write("self.json", R"({"extends": "./self.json"})");
  expect_user_error([&] { ng::load_config(self); }, {"extends cycle", "self.json"});
}

TEST_F(ConfigFiles, ExtendsErrorsNameTheirFile) {
  const std::string child = write("child.json", R"({"extends": "base/missing.json"})");
  expect_user_error([&] { ng::load_config(child); }, {"config file not found", "missing.json", "extended by"});
  write("bad_base.json", R"({"model": {"n_layers": 2}})");
  const std::string c2 = write("c2.json", R"({"extends": "bad_base.json", "seed": 3})");
  expect_user_error([&] { ng::load_config(c2); }, {"bad_base.json: unknown key 'model.n_layers'"});
  write("range_base.json", R"({"optim": {"lr": -1}})");
  const std::string c3 = write("c3.json", R"({"extends": "range_base.json", "seed": 3})");
  expect_user_error([&] { ng::load_config(c3); }, {"range_base.json: optim.lr: must be > 0, got -1"});
  const std::string c4 = write("c4.json", R"({"extends": 5})");
  expect_user_error([&] { ng::load_config(c4); }, {"extends: expected string, got number"});
}

TEST_F(ConfigFiles, SetOverrides) {
  const std::string f = write("c.json", R"({"norm": {"embed_norm": true}})");
  const ng::Config c = ng::load_config(
      f, {"model.n_layer=6", "optim.lr=1e-3", "data.shuffle=true", "norm.strategy=peri",
          "norm.function=\"rmsnorm\"", "data.train=[\"a.bin\",\"b.bin\"]", "data.val=data/*.bin",
          "norm.embed_norm=null", "seed=5", "seed=9"});
  EXPECT_EQ(c.model.n_layer, 6);
  EXPECT_DOUBLE_EQ(c.optim.lr, 1e-3);
  EXPECT_TRUE(c.data.shuffle);
  EXPECT_EQ(c.norm.strategy, "peri");
  EXPECT_EQ(c.norm.function, "rmsnorm");
  EXPECT_EQ(c.data.train, (std::vector<std::string>{"a.bin", "b.bin"}));
  EXPECT_EQ(c.data.val, (std::vector<std::string>{"data/*.bin"}));
  EXPECT_FALSE(c.norm.embed_norm.has_value());
  EXPECT_EQ(c.seed, 9u);  // the later --set wins
}

TEST_F(ConfigFiles, SetErrors) {
  const std::string f = write("c.json", "{}");
  auto load = [&](const std::string& o) { return [=] { ng::load_config(f, {o}); }; };
  expect_user_error(load("foo.bar=1"), {"--set foo.bar: unknown key 'foo.bar'"});
  expect_user_error(load("model.n_layers=1"), {"--set model.n_layers: unknown key", "did you mean 'model.n_layer'"});
  expect_user_error(load("model.n_layer"), {"--set model.n_layer", "key.path=value"});
  expect_user_error(load("=3"), {"key.path=value"});
  expect_user_error(load("model={}"), {"--set model", "section"});
  expect_user_error(load("model.n_layer=abc"), {"--set model.n_layer: expected integer, got string"});
  expect_user_error(load("model.n_layer=0"), {"--set model.n_layer: must be >= 1, got 0"});
  expect_user_error(load("model.n_head=3"), {"--set", "model.d_model (128) must be divisible by model.n_head (3)"});
}

TEST_F(ConfigFiles, MissingFileAndParseError) {
  const std::string missing = (dir_ / "nope.json").string();
  expect_user_error([&] { ng::load_config(missing); }, {"config file not found: " + missing});
  const std::string bad = write("bad.json", "{\n  \"model\": {\"n_layer\": 4,}\n}\n");
  expect_user_error([&] { ng::load_config(bad); }, {bad + ": JSON parse error at line 2 column", "unexpected"});
  const std::string arr = write("arr.json", "[1, 2]");
  expect_user_error([&] { ng::load_config(arr); }, {"arr.json: expected a JSON object at the top level"});
}

TEST(Config, UnknownKeys) {
  expect_json_error(R"({"modle": {}})", {"x.json: unknown key 'modle'", "did you mean 'model'"});
  expect_json_error(R"({"model": {"n_layers": 2}})", {"x.json: unknown key 'model.n_layers'",
                                                      "(did you mean 'model.n_layer'?)"});
  expect_json_error(R"({"norm": {"geonorm": {"clmap": 1}}})", {"unknown key 'norm.geonorm.clmap'",
                                                               "did you mean 'norm.geonorm.clamp'"});
  expect_json_error(R"({"train": {"lr": 1}})", {"unknown key 'train.lr'", "did you mean 'optim.lr'"});
  expect_json_error(R"({"model": 5})", {"x.json: model: expected object, got number"});
  ng::config_from_json(json::parse(R"({"extends": "base.json"})"), "x.json");  // resolved already
}

TEST(Config, Types) {
  expect_json_error(R"({"model": {"n_layer": "4"}})", {"x.json: model.n_layer: expected integer, got string"});
  expect_json_error(R"({"model": {"n_layer": 1.5}})", {"model.n_layer: expected integer, got 1.5"});
  expect_json_error(R"({"model": {"n_layer": 1e10}})", {"model.n_layer: expected integer"});
  EXPECT_EQ(ng::config_from_json(json::parse(R"({"model": {"n_layer": 2.0}})"), "x").model.n_layer, 2);
  expect_json_error(R"({"optim": {"lr": "fast"}})", {"optim.lr: expected number, got string"});
  EXPECT_DOUBLE_EQ(ng::config_from_json(json::parse(R"({"optim": {"lr": 1}})"), "x").optim.lr, 1.0);
  expect_json_error(R"({"data": {"shuffle": 1}})", {"data.shuffle: expected boolean, got number"});
  expect_json_error(R"({"norm": {"strategy": 3}})", {"norm.strategy: expected string, got number"});
  expect_json_error(R"({"norm": {"embed_norm": "yes"}})", {"norm.embed_norm: expected boolean or null, got string"});
  expect_json_error(R"({"data": {"train": 3}})", {"data.train: expected string or array of strings, got number"});
  expect_json_error(R"({"data": {"train": ["a", 3]}})", {"data.train[1]: expected string, got number"});
  expect_json_error(R"({"data": {"val": [""]}})", {"data.val: empty path"});
  expect_json_error(R"({"seed": -1})", {"seed: expected non-negative integer, got -1"});
  EXPECT_EQ(ng::config_from_json(json::parse(R"({"seed": 18446744073709551615})"), "x").seed,
            18446744073709551615ull);
}

TEST(Config, RangeAndEnumRules) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"model": {"n_layer": 0}})", "model.n_layer: must be >= 1, got 0"},
      {R"({"model": {"n_head": 0}})", "model.n_head: must be >= 1"},
      {R"({"model": {"d_model": 0}})", "model.d_model: must be >= 1"},
      {R"({"model": {"seq_len": 0}})", "model.seq_len: must be >= 1"},
      {R"({"model": {"vocab_size": 0}})", "model.vocab_size: must be >= 1"},
      {R"({"model": {"d_model": 100, "n_head": 3}})", "model.d_model (100) must be divisible by model.n_head (3)"},
      {R"({"model": {"max_seq_len": 32, "seq_len": 64}})", "model.max_seq_len (32) must be 0 or >= model.seq_len (64)"},
      {R"({"model": {"max_seq_len": -1}})", "model.max_seq_len: must be >= 0"},
      {R"({"model": {"padded_vocab": 100}})", "model.padded_vocab (100) must be 0 or >= model.vocab_size (257)"},
      {R"({"model": {"init": "xavier"}})", "model.init: must be one of auto | gpt2 | plain | deepnorm, got 'xavier'"},
      {R"({"norm": {"strategy": ""}})", "norm.strategy: must be a non-empty string"},
      {R"({"norm": {"function": "batchnorm"}})", "norm.function: must be one of layernorm | rmsnorm"},
      {R"({"norm": {"eps": 0}})", "norm.eps: must be > 0, got 0"},
      {R"({"norm": {"mixln": {"post_fraction": 1.5}}})", "norm.mixln.post_fraction: must be in [0, 1], got 1.5"},
      {R"({"norm": {"geonorm": {"decay": "exp"}}})", "norm.geonorm.decay: must be one of harmonic | sqrt"},
      {R"({"norm": {"geonorm": {"clamp": 0}}})", "norm.geonorm.clamp: must be in (0, pi], got 0"},
      {R"({"norm": {"geonorm": {"clamp": 3.2}}})", "norm.geonorm.clamp: must be in (0, pi]"},
      {R"({"optim": {"lr": 0}})", "optim.lr: must be > 0"},
      {R"({"optim": {"schedule": "cos"}})", "optim.schedule: must be one of cosine | linear | constant, got 'cos'"},
      {R"({"optim": {"warmup_steps": -1}})", "optim.warmup_steps: must be >= 0"},
      {R"({"optim": {"min_lr_ratio": -0.1}})", "optim.min_lr_ratio: must be in [0, 1]"},
      {R"({"optim": {"min_lr_ratio": 1.1}})", "optim.min_lr_ratio: must be in [0, 1]"},
      {R"({"optim": {"weight_decay": -0.1}})", "optim.weight_decay: must be >= 0"},
      {R"({"optim": {"decay_params": "none"}})", "optim.decay_params: must be one of matrices_embeddings | matrices | all"},
      {R"({"optim": {"beta1": 1}})", "optim.beta1: must be in [0, 1), got 1"},
      {R"({"optim": {"beta2": -0.5}})", "optim.beta2: must be in [0, 1)"},
      {R"({"optim": {"eps": 0}})", "optim.eps: must be > 0"},
      {R"({"optim": {"grad_clip": -1}})", "optim.grad_clip: must be >= 0"},
      {R"({"train": {"batch_size": 0}})", "train.batch_size: must be >= 1"},
      {R"({"train": {"grad_accum": 0}})", "train.grad_accum: must be >= 1"},
      {R"({"train": {"steps": 0}})", "train.steps: must be >= 1"},
      {R"({"eval": {"every": -1}})", "eval.every: must be >= 0"},
      {R"({"eval": {"batches": -1}})", "eval.batches: must be >= 0"},
      {R"({"log": {"every": 0}})", "log.every: must be >= 1"},
      {R"({"log": {"layer_stats_every": -1}})", "log.layer_stats_every: must be >= 0"},
      {R"({"checkpoint": {"every": -1}})", "checkpoint.every: must be >= 0"},
      {R"({"checkpoint": {"keep": -1}})", "checkpoint.keep: must be >= 0"},
      {R"({"sample": {"tokens": -1}})", "sample.tokens: must be >= 0"},
      {R"({"sample": {"temperature": 0}})", "sample.temperature: must be > 0"},
      {R"({"device": "tpu"})", "device: must be one of auto | cpu | cuda, got 'tpu'"},
  };
  for (const auto& [text, msg] : cases) expect_json_error(text, {"x.json: ", msg});
  // Boundaries that are allowed.
  ng::config_from_json(json::parse(R"({"norm": {"geonorm": {"clamp": 3.141592653589793}},
      "optim": {"beta1": 0, "min_lr_ratio": 1, "grad_clip": 0},
      "model": {"max_seq_len": 64, "padded_vocab": 257}})"), "x.json");
}

TEST(Config, EveryKeyDocumentedInReadme) {
  std::ifstream in(fs::path(NORMGPT_SOURCE_DIR) / "configs" / "README.md");
  ASSERT_TRUE(in) << "configs/README.md not found";
  std::map<std::string, std::pair<std::string, std::string>> rows;  // key -> (type, default)
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    for (std::string cell; std::getline(ss, cell, '|');) {
      cell.erase(0, cell.find_first_not_of(' '));
      cell.erase(cell.find_last_not_of(' ') + 1);
      cells.push_back(cell);
    }
    ASSERT_GE(cells.size(), 3u) << line;
    auto strip = [](const std::string& s) { return s.size() >= 2 ? s.substr(1, s.size() - 2) : s; };
    rows[strip(cells[0])] = {cells[1], strip(cells[2])};
  }
  std::set<std::string> keys;
  for (const auto& k : ng::config_detail::config_keys()) {
    keys.insert(k.path);
    auto it = rows.find(k.path);
    if (it == rows.end()) {
      ADD_FAILURE() << "configs/README.md has no row for " << k.path;
      continue;
    }
    EXPECT_EQ(it->second.first, k.type) << k.path;
    EXPECT_EQ(json::parse(it->second.second), k.default_value) << k.path;
  }
  for (const auto& [key, _] : rows) EXPECT_TRUE(keys.count(key)) << "README row for unknown key " << key;
}

TEST(Config, ShippedConfigsLoad) {
  const fs::path dir = fs::path(NORMGPT_SOURCE_DIR) / "configs";
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".json") continue;
    SCOPED_TRACE(e.path().string());
    EXPECT_NO_THROW(ng::load_config(e.path().string()));
  }
}

}  // namespace
