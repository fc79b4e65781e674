#include "app/commands.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "backend/registry.hpp"
#include "config/config.hpp"
#include "core/errors.hpp"
#include "core/rng.hpp"
#include "data/loader.hpp"
#include "data/tokenizer.hpp"
#include "model/model_file.hpp"
#include "train/evaluate.hpp"
#include "train/model_setup.hpp"

namespace ng {

void run_sample(const SampleOptions& o) {
  NG_REQUIRE(o.tokens >= 1, "-n: need at least 1 token, got {}", o.tokens);
  NG_REQUIRE(o.temperature > 0, "--temperature must be > 0, got {}", o.temperature);
  const ModelSpec spec = model_spec_from_file(o.checkpoint);
  const char* tok_name = spec.dims.V == 257 ? "byte" : spec.dims.V == 50257 ? "gpt2" : nullptr;
  NG_REQUIRE(tok_name != nullptr, "{}: no tokenizer for vocab size {} (byte = 257, gpt2 = 50257)", o.checkpoint,
             spec.dims.V);
  auto tokenizer = make_tokenizer(tok_name);
  auto backend = make_cpu_backend<float>();
  const int T = spec.dims.maxT;
  GPT<float> model(spec.dims, spec.plan, *backend, 1, T);
  std::vector<float> weights;
  load_weights(model, o.checkpoint, weights);

  std::vector<int32_t> ids = o.prompt.empty() ? std::vector<int32_t>{tokenizer->eot_id()} : tokenizer->encode(o.prompt);
  std::fputs(o.prompt.c_str(), stdout);
  std::fflush(stdout);
  Rng rng(o.seed);
  std::vector<int32_t> window(T, 0);
  std::vector<double> p(spec.dims.V);
  for (int i = 0; i < o.tokens; ++i) {
    // The last T tokens as context; causal attention makes the zero padding after them harmless.
    const size_t len = std::min<size_t>(ids.size(), size_t(T));
    std::fill(window.begin(), window.end(), 0);
    std::copy(ids.end() - long(len), ids.end(), window.begin());
    model.forward(window.data(), nullptr);
    const std::vector<float> logits = model.logits_at(0, int(len) - 1);
    double maxv = -INFINITY, sum = 0;
    for (int v = 0; v < spec.dims.V; ++v) maxv = std::max(maxv, double(logits[v]) / o.temperature);
    for (int v = 0; v < spec.dims.V; ++v) sum += p[v] = std::exp(double(logits[v]) / o.temperature - maxv);
    double u = rng.uniform() * sum;
    int next = spec.dims.V - 1;
    for (int v = 0; v < spec.dims.V; ++v) {
      if ((u -= p[v]) < 0) {
        next = v;
        break;
      }
    }
    ids.push_back(next);
    std::fputs(tokenizer->decode(std::vector<int32_t>{next}).c_str(), stdout);
    std::fflush(stdout);
  }
  std::fputs("\n", stdout);
}

void run_eval(const std::string& config_path, const std::vector<std::string>& overrides, const std::string& checkpoint) {
  const Config cfg = load_config(config_path, overrides);
  NG_REQUIRE(!cfg.data.val.empty(), "{}: data.val is empty; eval needs validation shards", config_path);
  const ModelSpec spec = resolve_model(cfg);
  auto backend = make_backend(cfg.device);
  GPT<float> model(spec.dims, spec.plan, *backend, cfg.train.batch_size, cfg.model.seq_len);
  std::vector<float> weights;
  load_weights(model, checkpoint, weights);
  DataLoader val({cfg.data.val, cfg.train.batch_size, cfg.model.seq_len, 0, 1, false, 0, "data.val"});
  val.check_token_ids(spec.dims.V);
  const double loss = evaluate(model, val, cfg.eval.batches);
  std::printf("%s\n", nlohmann::json({{"checkpoint", checkpoint}, {"val_loss", loss}, {"batches", cfg.eval.batches}})
                          .dump()
                          .c_str());
}

namespace {

// The device a config's `device` key picks on this machine, or why it cannot.
std::string resolve_device_or_reason(const std::string& device) {
  try {
    return resolve_device(device);
  } catch (const UserError& e) {
    return std::string("nothing (") + e.what() + ")";
  }
}

}  // namespace

void run_info(const std::string& config_path, const std::vector<std::string>& overrides) {
  const Config cfg = load_config(config_path, overrides);
  const ModelSpec spec = resolve_model(cfg);
  const ParamTable table(spec.dims, spec.plan);
  const ModelDims& d = spec.dims;
  const int B = cfg.train.batch_size, T = cfg.model.seq_len;
  std::printf("resolved config (%s):\n%s\n\n", config_path.c_str(), config_to_json(cfg).dump(2).c_str());
  std::printf("model: strategy %s, norm %s, init %s; L %d, heads %d, d_model %d, V %d (padded %d), context %d\n",
              spec.plan.strategy.c_str(), norm_function_name(spec.plan.function), spec.plan.init.c_str(), d.L, d.NH,
              d.C, d.V, d.Vp, d.maxT);
  std::printf("blocks: %s\n\n", describe_blocks(d).c_str());
  std::printf("%-12s %-18s %12s\n", "tensor", "shape", "parameters");
  for (const auto& t : table.tensors()) {
    std::string shape;
    for (auto s : t.shape) shape += (shape.empty() ? "" : "x") + std::to_string(s);
    std::printf("%-12s %-18s %12zu\n", t.name.c_str(), shape.c_str(), t.numel);
  }
  const size_t n = table.total();
  std::printf("%-12s %-18s %12zu  (%.3fM)\n\n", "total", "", n, n / 1e6);
  const double fpt = flops_per_token(d, n, T);
  std::printf("FLOPs per token: %.4g (6N + 12*L*T*d = 6*%zu + 12*%d*%d*%d), %.4g per step of %ld tokens\n", fpt, n,
              d.L, T, d.C, fpt * B * T * cfg.train.grad_accum, long(B) * T * cfg.train.grad_accum);
  // Memory per process: weights in the storage precision; gradients, AdamW moments (and master
  // weights under bf16) in fp32; the activation arena (llm.c's layout, in the storage precision;
  // the exact figure is logged by `normgpt train`).
  const std::string dev = resolve_device_or_reason(cfg.device);
  const bool bf = resolve_precision(cfg.precision, dev) == "bf16";
  const double wb = bf ? 2 : 4;
  const size_t N = size_t(B) * T, C = d.C;
  size_t act = N * C * (2 + d.L * 16) + size_t(d.L) * B * d.NH * T * T + N * d.Vp;  // the GPT activation arena
  act += N * C * 9 + size_t(B) * d.NH * T * T;                                      // backward scratch
  const double mib = 1.0 / (1 << 20);
  std::printf("device: %s resolves to %s here; precision %s\n", cfg.device.c_str(), dev.c_str(),
              bf ? "bf16 (bf16 weights and activations; fp32 gradients, master weights, AdamW moments, statistics)"
                 : "fp32");
  std::printf("memory estimate per process: weights %.1f MiB, gradients %.1f MiB, AdamW state %.1f MiB, "
              "activations ~%.1f MiB (naive attention; flash keeps less); total ~%.1f MiB\n",
              n * wb * mib, n * 4 * mib, (bf ? 3 : 2) * n * 4 * mib, act * wb * mib,
              (n * wb + n * 4 + (bf ? 3 : 2) * n * 4 + act * wb) * mib);
}

}  // namespace ng
