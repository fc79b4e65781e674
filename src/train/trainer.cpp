#include "train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/chrono.h>
#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "config/config.hpp"
#include "core/binary_io.hpp"
#include "core/errors.hpp"
#include "core/timer.hpp"
#include "data/loader.hpp"
#include "dist/communicator.hpp"
#include "log/console.hpp"
#include "log/metrics.hpp"
#include "model/model_file.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluate.hpp"
#include "train/layer_stats.hpp"
#include "train/model_setup.hpp"
#include "train/step.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace ng {
namespace {

void write_json(const fs::path& path, const json& j) {
  const std::string s = j.dump(2) + "\n";
  write_file_atomic(path.string(), {{s.data(), s.size()}});
}

// On --resume the config may change only how long the run goes on and what it logs.
void check_resume_config(const fs::path& saved_path, const Config& cfg) {
  NG_REQUIRE(fs::exists(saved_path), "--resume: {} is missing", saved_path.string());
  std::ifstream f(saved_path);
  json saved = json::parse(f, nullptr, false);
  NG_REQUIRE(!saved.is_discarded(), "--resume: {} is not valid JSON", saved_path.string());
  json now = config_to_json(cfg);
  for (json* j : {&saved, &now}) {
    (*j)["train"].erase("steps");
    for (const char* section : {"log", "checkpoint", "eval", "sample"}) j->erase(section);
  }
  const json diff = json::diff(saved, now);
  if (!diff.empty()) {
    std::string path = diff[0]["path"].get<std::string>().substr(1);
    std::replace(path.begin(), path.end(), '/', '.');
    fail_user("--resume: config key '{}' differs from the run's {} (only train.steps, eval.*, log.*, checkpoint.* "
              "may change)",
              path, saved_path.string());
  }
}

double best_val_in(const fs::path& metrics_path) {
  double best = INFINITY;
  std::ifstream in(metrics_path);
  std::string line;
  while (std::getline(in, line)) {
    auto row = json::parse(line, nullptr, false);
    if (!row.is_discarded() && row.is_object() && row.contains("val_loss") && row["val_loss"].is_number())
      best = std::min(best, row["val_loss"].get<double>());
  }
  return best;
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

}  // namespace

std::string default_run_dir(const std::string& config_path) {
  const auto now = std::chrono::system_clock::now();
  return fmt::format("runs/{}-{:%Y%m%d-%H%M%S}", fs::path(config_path).stem().string(),
                     std::chrono::floor<std::chrono::seconds>(now));
}

int run_train(const TrainOptions& o) {
  Stopwatch wall;
  const Config cfg = load_config(o.config_path, o.overrides);
  NG_REQUIRE(cfg.device != "cuda", "device: 'cuda' requested, but this build has no CUDA backend yet (use cpu or auto)");
  auto log = console();

  const fs::path run = o.run_dir.empty() ? fs::path(default_run_dir(o.config_path)) : fs::path(o.run_dir);
  const fs::path metrics_path = run / "metrics.jsonl";
  std::string resume_from;
  if (o.resume) {
    NG_REQUIRE(fs::is_directory(run), "--resume: run directory {} does not exist", run.string());
    resume_from = latest_checkpoint(run.string());
    NG_REQUIRE(!resume_from.empty(), "--resume: {} has no checkpoint to resume from", run.string());
    check_resume_config(run / "config.json", cfg);
  } else {
    NG_REQUIRE(!fs::exists(run / "config.json") && !fs::exists(metrics_path) && !fs::exists(run / "checkpoints"),
               "run directory {} already holds a run (use --resume to continue it, or another -o)", run.string());
  }
  const ModelSpec spec = resolve_model(cfg);
  const int B = cfg.train.batch_size, T = cfg.model.seq_len;
  LocalCommunicator comm;
  DataLoader train_data({cfg.data.train, B, T, comm.rank(), comm.world(), cfg.data.shuffle, cfg.seed, "data.train"});
  train_data.check_token_ids(spec.dims.V);
  std::unique_ptr<DataLoader> val_data;
  if (!cfg.data.val.empty()) {
    val_data = std::make_unique<DataLoader>(LoaderOptions{cfg.data.val, B, T, comm.rank(), comm.world(), false, 0, "data.val"});
    val_data->check_token_ids(spec.dims.V);
  }

  auto backend = make_cpu_backend<float>();
  GPT<float> model(spec.dims, spec.plan, *backend, B, T);
  initialize_model(model, cfg);

  // Everything the user gave has been checked: only now touch the run directory.
  fs::create_directories(run / "checkpoints");
  write_json(run / "config.json", config_to_json(cfg));
  log_to_file((run / "train.log").string());
  AdamW<float> opt(model.table(), cfg.optim);
  const LrSchedule schedule{cfg.optim.lr, cfg.optim.schedule, cfg.optim.warmup_steps, cfg.optim.min_lr_ratio,
                            cfg.train.steps};
  int start = 0;
  if (o.resume) {
    load_model_file((fs::path(resume_from) / "model.bin").string(), model.table(), model.plan(), model.params.data());
    TrainState st = read_state_file((fs::path(resume_from) / "state.bin").string(), model.params.size());
    NG_REQUIRE(st.world == comm.world(), "--resume: checkpoint was written by {} processes, this run has {}", st.world,
               comm.world());
    opt.m() = std::move(st.m);
    opt.v() = std::move(st.v);
    train_data.set_state(st.loader);
    start = int(st.step);
    NG_REQUIRE(start <= cfg.train.steps, "--resume: checkpoint is at step {}, beyond train.steps {}", start,
               cfg.train.steps);
    trim_metrics(metrics_path.string(), start);
    log->info("resuming {} from {} (step {})", run.string(), resume_from, start);
  }
  MetricsWriter metrics(metrics_path.string());

  const long tokens_per_step = long(B) * T * cfg.train.grad_accum * comm.world();
  const size_t n_params = model.params.size();
  log->info("model: {} ({}), {} layers, {} heads, d_model {}, vocab {} (padded {}), context {}; {:.2f}M parameters",
            spec.plan.strategy, norm_function_name(spec.plan.function), spec.dims.L, spec.dims.NH, spec.dims.C,
            spec.dims.V, spec.dims.Vp, spec.dims.maxT, n_params / 1e6);
  log->info("train: {} steps x {} tokens (B {} x T {} x grad_accum {} x {} rank(s)); data {} tokens; {:.1f} MFLOP/token "
            "(6N + 12LTd)",
            cfg.train.steps, tokens_per_step, B, T, cfg.train.grad_accum, comm.world(), train_data.total_tokens(),
            flops_per_token(spec.dims, n_params, T) / 1e6);
  log->info("run directory: {}", run.string());

  auto save_checkpoint = [&](int steps_done) {
    const std::string name = checkpoint_name(steps_done);
    const fs::path tmp = run / "checkpoints" / (name + ".tmp");
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    write_model_file((tmp / "model.bin").string(), model.table(), model.plan(), model.params.data());
    TrainState st{steps_done, comm.rank(), comm.world(), {}, train_data.state(), opt.m(), opt.v()};
    write_state_file((tmp / "state.bin").string(), st);
    publish_checkpoint(run.string(), tmp.string(), name, cfg.checkpoint.keep);
    log->info("checkpoint: {}", (run / "checkpoints" / name).string());
  };
  double last_val = NAN;
  auto run_eval = [&](int step) {
    if (!val_data) return;
    last_val = evaluate(model, *val_data, cfg.eval.batches);
    metrics.write({{"step", step}, {"val_loss", last_val}});
    log->info("step {:>5}/{} | val loss {:.4f}", step, cfg.train.steps, last_val);
  };
  auto finish = [&](const char* status, int steps_done, double train_loss, double run_s, long run_tokens) {
    json summary = {{"status", status},
                    {"steps", steps_done},
                    {"tokens", long(steps_done) * tokens_per_step},
                    {"final_train_loss", number_or_null(train_loss)},
                    {"final_val_loss", number_or_null(last_val)},
                    {"best_val_loss", number_or_null(best_val_in(metrics_path))},
                    {"wall_s", wall.seconds()},
                    {"tokens_per_s", run_s > 0 ? run_tokens / run_s : 0.0}};
    write_json(run / "summary.json", summary);
  };

  double train_loss = NAN, train_s = 0;
  std::vector<float> params_before;
  long run_tokens = 0;
  for (int step = start; step < cfg.train.steps; ++step) {
    if (cfg.eval.every > 0 && step % cfg.eval.every == 0) run_eval(step);
    const bool stats_due = cfg.log.layer_stats_every > 0 && step % cfg.log.layer_stats_every == 0;
    if (stats_due) params_before = model.params;
    Stopwatch sw;
    const StepResult r = train_step(model, opt, comm, schedule, cfg.optim, step, cfg.train.grad_accum,
                                    [&](int32_t* in, int32_t* tg) { train_data.next_batch(in, tg); });
    const double step_s = sw.seconds();
    train_s += step_s;
    run_tokens += tokens_per_step;
    train_loss = r.loss;
    metrics.write({{"step", step},
                   {"tokens", long(step + 1) * tokens_per_step},
                   {"train_loss", number_or_null(r.loss)},
                   {"lr", r.lr},
                   {"grad_norm", number_or_null(r.grad_norm)},
                   {"step_ms", step_s * 1e3},
                   {"tokens_per_s", tokens_per_step / step_s}});
    if (stats_due) metrics.write(layer_stats(model, params_before, r.clip_factor, step));
    if (!std::isfinite(r.loss) || !std::isfinite(r.grad_norm)) {
      log->error("step {}: loss {} / grad norm {} is not finite: the run diverged", step, r.loss, r.grad_norm);
      finish("diverged", step, r.loss, train_s, run_tokens);
      return 3;
    }
    const int done = step + 1;
    if (step % cfg.log.every == 0 || done == cfg.train.steps) {
      const double eta = train_s / (done - start) * (cfg.train.steps - done);
      log->info("step {:>5}/{} | loss {:.4f} | lr {:.2e} | norm {:.3f} | {:.1f} ms | {:.0f} tok/s | ETA {}", done,
                cfg.train.steps, r.loss, r.lr, r.grad_norm, step_s * 1e3, tokens_per_step / step_s,
                format_duration(eta));
    }
    if (done == cfg.train.steps) break;
    if (o.stop_after > 0 && done - start >= o.stop_after) {
      save_checkpoint(done);
      finish("interrupted", done, train_loss, train_s, run_tokens);
      log->info("stopped after {} steps as asked; continue with --resume", o.stop_after);
      return 0;
    }
    if (cfg.checkpoint.every > 0 && done % cfg.checkpoint.every == 0) save_checkpoint(done);
  }
  run_eval(cfg.train.steps);
  save_checkpoint(cfg.train.steps);
  finish("completed", cfg.train.steps, train_loss, train_s, run_tokens);
  log->info("done: {} steps, final train loss {:.4f}, val loss {}, {} ({:.0f} tok/s)", cfg.train.steps, train_loss,
            val_data ? fmt::format("{:.4f}", last_val) : "n/a (no data.val)", format_duration(wall.seconds()),
            train_s > 0 ? run_tokens / train_s : 0.0);
  return 0;
}

}  // namespace ng
