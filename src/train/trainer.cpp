#include "train/trainer.hpp"

#include <sys/statvfs.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/chrono.h>
#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "backend/registry.hpp"
#include "backend/timed_backend.hpp"
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
#include "train/data_parallel.hpp"
#include "train/divergence.hpp"
#include "train/evaluate.hpp"
#include "train/layer_stats.hpp"
#include "train/model_setup.hpp"
#include "train/op_timing.hpp"
#include "train/signals.hpp"
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

// Fault injection for the failure tests: NORMGPT_FAULT=fail|hang|nan with NORMGPT_FAULT_RANK and
// NORMGPT_FAULT_STEP makes that rank throw, stop answering, or report a NaN loss (a deterministic
// divergence, for the divergence guard's tests) at that step. Returns true for nan.
bool maybe_inject_fault(int rank, int step) {
  static const char* kind = std::getenv("NORMGPT_FAULT");
  if (!kind) return false;
  static const int at_rank = std::atoi(std::getenv("NORMGPT_FAULT_RANK") ? std::getenv("NORMGPT_FAULT_RANK") : "0");
  static const int at_step = std::atoi(std::getenv("NORMGPT_FAULT_STEP") ? std::getenv("NORMGPT_FAULT_STEP") : "0");
  if (rank != at_rank || step != at_step) return false;
  if (std::string(kind) == "nan") return true;
  if (std::string(kind) == "hang")
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  fail_internal(__FILE__, __LINE__, fmt::format("injected fault on rank {} at step {}", rank, step));
}

// Fails before writing when the file system cannot hold `bytes` more (with 5% to spare).
void require_disk_space(const fs::path& dir, uint64_t bytes) {
  struct statvfs st {};
  if (statvfs(dir.c_str(), &st) != 0) return;  // cannot tell: let the write itself report
  const uint64_t avail = uint64_t(st.f_bavail) * st.f_frsize;
  NG_REQUIRE(avail >= bytes + bytes / 20, "not enough disk space in {} for a checkpoint: need {:.1f} MiB, {:.1f} MiB free",
             dir.string(), bytes / 1048576.0, avail / 1048576.0);
}

// Steps of an invocation left out of the per-op timing (warm-up).
constexpr int kOpTimingWarmupSteps = 1;

// One training run: the state shared by the loop, checkpoints, eval and the summary. T is the
// storage precision (float, or bf16 with fp32 master weights in the optimizer).
template <class T>
class Trainer {
 public:
  Trainer(const TrainOptions& o, const Config& cfg, const fs::path& run)
      : o_(o), cfg_(cfg), run_(run), metrics_path_(run / "metrics.jsonl"), comm_(&process_communicator(cfg.dist.timeout_s)) {
    root_ = comm_->is_root();
    if (!root_) log_->set_level(spdlog::level::err);  // one console, rank 0's; errors from any rank
  }

  int run() {
    prepare();
    if (o_.resume && start_ == cfg_.train.steps) {
      log_->info("{} is already at step {} of {}: nothing to do", run_.string(), start_, cfg_.train.steps);
      return 0;
    }
    try {
      return loop();
    } catch (...) {
      finish("failed");
      throw;
    }
  }

 private:
  void prepare();
  int loop();
  void save_checkpoint(int steps_done);
  void run_eval(int step);
  void finish(const char* status);
  void log_step(int done, const StepResult& r, double step_s);
  void write_layer_stats(const std::vector<T>& params_before, int step);
  void report_op_timing();
  std::string state_file_name() const {
    return cfg_.dist.zero ? fmt::format("state_r{}.bin", comm_->rank()) : std::string("state.bin");
  }

  const TrainOptions& o_;
  const Config& cfg_;
  const fs::path run_, metrics_path_;
  Stopwatch wall_;
  Communicator* comm_;  // the process's (dist/communicator.hpp); outlives the trainer
  bool root_ = true;  // rank 0 writes the run directory; every rank validates and trains
  ModelSpec spec_;
  std::unique_ptr<DataLoader> train_data_, val_data_;
  std::unique_ptr<Backend<T>> backend_;
  TimedBackend<T>* timed_ = nullptr;  // backend_ itself when log.op_timing is on, else null
  int timed_steps_ = 0;
  double timed_ms_ = 0;  // wall time of the timed steps
  std::unique_ptr<Communicator> grad_comm_;  // NCCL for device gradients across ranks, else null
  std::unique_ptr<GPT<T>> model_;
  std::unique_ptr<DataParallel<T>> dp_;
  std::unique_ptr<AdamW<T>> opt_;
  std::unique_ptr<MetricsWriter> metrics_;
  std::shared_ptr<spdlog::logger> log_ = console();
  long tokens_per_step_ = 0, run_tokens_ = 0;
  int start_ = 0, steps_done_ = 0;
  double train_loss_ = NAN, last_val_ = NAN, train_s_ = 0;
  int skipped_ = 0;
};

template <class T>
void Trainer<T>::prepare() {
  std::string resume_from;
  if (o_.resume) {
    NG_REQUIRE(fs::is_directory(run_), "--resume: run directory {} does not exist", run_.string());
    check_resume_config(run_ / "config.json", cfg_);
    resume_from = latest_checkpoint(run_.string());
  } else if (root_) {
    NG_REQUIRE(!fs::exists(run_ / "config.json") && !fs::exists(metrics_path_) && !fs::exists(run_ / "checkpoints"),
               "run directory {} already holds a run (use --resume to continue it, or another -o)", run_.string());
  }
  spec_ = resolve_model(cfg_);
  const int B = cfg_.train.batch_size, Tlen = cfg_.model.seq_len;
  train_data_ = std::make_unique<DataLoader>(LoaderOptions{cfg_.data.train, B, Tlen, comm_->rank(), comm_->world(),
                                                           cfg_.data.shuffle, cfg_.seed, "data.train"});
  train_data_->check_token_ids(spec_.dims.V);
  if (!cfg_.data.val.empty()) {
    val_data_ = std::make_unique<DataLoader>(
        LoaderOptions{cfg_.data.val, B, Tlen, comm_->rank(), comm_->world(), false, 0, "data.val"});
    val_data_->check_token_ids(spec_.dims.V);
  }
  if constexpr (std::is_same_v<T, bf16>) {
    backend_ = make_backend_bf16(cfg_.device, comm_->local_rank());
  } else {
    backend_ = make_backend(cfg_.device, comm_->local_rank());
  }
  if (op_timing_requested(cfg_.log.op_timing)) {
    auto timed = std::make_unique<TimedBackend<T>>(std::move(backend_), make_op_clock(resolve_device(cfg_.device)));
    timed_ = timed.get();
    backend_ = std::move(timed);
  }
  // Gradients in device memory travel over NCCL; metrics and barriers stay on the process's (MPI).
  grad_comm_ = make_gradient_communicator(*backend_, *comm_);
  model_ = std::make_unique<GPT<T>>(spec_.dims, spec_.plan, *backend_, B, Tlen);
  std::vector<float> weights = initialize_model(*model_, cfg_);
  dp_ = std::make_unique<DataParallel<T>>(grad_comm_ ? *grad_comm_ : *comm_, *backend_, model_->params.size(),
                                          cfg_.dist.zero == 1, cfg_.dist.overlap);
  opt_ = std::make_unique<AdamW<T>>(*backend_, model_->table(), cfg_.optim, dp_->shard());
  if (!resume_from.empty()) {
    load_weights(*model_, (fs::path(resume_from) / "model.bin").string(), weights);
    const fs::path state = fs::path(resume_from) / state_file_name();
    NG_REQUIRE(fs::exists(state), "--resume: {} is missing (was the run started with another dist.zero or number of "
               "processes?)", state.string());
    TrainState st = read_state_file(state.string(), dp_->shard().size(), comm_->world());
    NG_REQUIRE(st.step <= cfg_.train.steps, "--resume: checkpoint is at step {}, beyond train.steps {}", st.step,
               cfg_.train.steps);
    opt_->set_moments(st.m, st.v);
    train_data_->set_state(st.loader);
    start_ = int(st.step);
  }
  opt_->set_master(weights);  // mixed precision: the fp32 weights the bf16 copy was rounded from

  // Everything the user gave has been checked: only now touch the run directory.
  if (root_) {
    fs::create_directories(run_ / "checkpoints");
    write_json(run_ / "config.json", config_to_json(cfg_));
    // rows after the checkpoint are redone (a finished run is left exactly as it is)
    if (o_.resume && start_ < cfg_.train.steps) trim_metrics(metrics_path_.string(), start_);
    metrics_ = std::make_unique<MetricsWriter>(metrics_path_.string());
    log_to_file((run_ / "train.log").string());
  }
  if (o_.resume && resume_from.empty()) log_->info("resuming {}: no checkpoint yet, starting from step 0", run_.string());
  if (o_.resume && !resume_from.empty()) log_->info("resuming {} from step {}", run_.string(), start_);

  tokens_per_step_ = long(B) * Tlen * cfg_.train.grad_accum * comm_->world();
  const size_t n = model_->params.size();
  log_->info("model: {} ({}), {} layers, {} heads, d_model {}, vocab {} (padded {}), context {}; {:.2f}M parameters",
             spec_.plan.strategy, norm_function_name(spec_.plan.function), spec_.dims.L, spec_.dims.NH, spec_.dims.C,
             spec_.dims.V, spec_.dims.Vp, spec_.dims.maxT, n / 1e6);
  if (!spec_.dims.arch.is_gpt2(spec_.dims.C)) log_->info("blocks: {}", describe_blocks(spec_.dims));
  {
    // weights in T, gradients, moments (and master weights) in fp32, plus the activation arena
    const double state = double(n) * (sizeof(T) + sizeof(grad_t<T>) + 2 * sizeof(float) +
                                      (is_mixed_precision<T> ? sizeof(float) : 0));
    log_->info("device: {}, precision {}; memory {:.1f} MiB (weights, gradients, optimizer state {:.1f} MiB; "
               "activations {:.1f} MiB)", backend_->name(), is_mixed_precision<T> ? "bf16 (fp32 master weights)" : "fp32",
               (state + double(model_->activation_bytes())) / 1048576.0, state / 1048576.0,
               double(model_->activation_bytes()) / 1048576.0);
  }
  log_->info("train: {} steps x {} tokens (B {} x T {} x grad_accum {} x {} rank(s)); data {} tokens; "
             "{:.1f} MFLOP/token (6N + 12LTd)",
             cfg_.train.steps, tokens_per_step_, B, Tlen, cfg_.train.grad_accum, comm_->world(),
             train_data_->total_tokens(), flops_per_token(spec_.dims, n, Tlen) / 1e6);
  if (comm_->world() > 1)
    log_->info("data parallel: {} ranks, gradients over {}, {}", comm_->world(), dp_->comm().name(),
               cfg_.dist.zero ? "ZeRO-1 (optimizer state sharded)"
               : dp_->overlaps() ? "gradients all-reduced block by block during the backward pass"
                                 : "gradients all-reduced");
  if (timed_) log_->info("op timing: on ({}); the table follows the run", timed_->clock_name());
  log_->info("run directory: {}", run_.string());
}

template <class T>
void Trainer<T>::save_checkpoint(int steps_done) {
  // The weights of record: the optimizer's fp32 master copy under mixed precision.
  const std::vector<float> params = opt_->has_master() ? opt_->master_host() : model_->params_to_host();
  for (float p : params)
    NG_CHECK(std::isfinite(p), "refusing to checkpoint non-finite parameters at step {}", steps_done);
  // Rank 0 prepares the directory, the owners of optimizer state write it, rank 0 writes the model
  // and publishes (rename, then `latest`) only after every rank is done.
  const std::string name = checkpoint_name(steps_done);
  const fs::path tmp = run_ / "checkpoints" / (name + ".tmp");
  const uint64_t n = model_->params.size();
  if (root_) {
    fs::remove_all(tmp);
    require_disk_space(run_ / "checkpoints", n * sizeof(float) + 2 * n * sizeof(float) + 4096);
    fs::create_directories(tmp);
  }
  comm_->barrier();
  if (root_ || cfg_.dist.zero) {
    TrainState st{steps_done, comm_->rank(), comm_->world(), {}, train_data_->state(), opt_->m_host(), opt_->v_host()};
    write_state_file((tmp / state_file_name()).string(), st);
  }
  comm_->barrier();
  if (root_) {
    write_model_file((tmp / "model.bin").string(), model_->table(), model_->plan(), params.data());
    publish_checkpoint(run_.string(), tmp.string(), name, cfg_.checkpoint.keep);
    log_->info("checkpoint: {}", (run_ / "checkpoints" / name).string());
  }
  comm_->barrier();
}

template <class T>
void Trainer<T>::run_eval(int step) {
  if (!val_data_) return;
  last_val_ = evaluate(*model_, *val_data_, cfg_.eval.batches);
  comm_->allreduce_mean(&last_val_, 1);
  if (root_) metrics_->write({{"step", step}, {"val_loss", last_val_}});
  log_->info("step {:>5}/{} | val loss {:.4f}", step, cfg_.train.steps, last_val_);
}

template <class T>
void Trainer<T>::finish(const char* status) {
  if (!root_ || !metrics_) return;
  json summary = {{"status", status},
                  {"steps", steps_done_},
                  {"tokens", long(steps_done_) * tokens_per_step_},
                  {"final_train_loss", number_or_null(train_loss_)},
                  {"final_val_loss", number_or_null(last_val_)},
                  {"best_val_loss", number_or_null(best_val_in(metrics_path_))},
                  {"wall_s", wall_.seconds()},
                  {"tokens_per_s", train_s_ > 0 ? run_tokens_ / train_s_ : 0.0}};
  if (cfg_.train.on_divergence == "skip") summary["skipped_steps"] = skipped_;
  write_json(run_ / "summary.json", summary);
  if (std::string(status) != "failed") report_op_timing();
}

template <class T>
void Trainer<T>::report_op_timing() {
  if (!timed_) return;
  const OpTimingReport report{timed_->clock_name(), timed_steps_, kOpTimingWarmupSteps, timed_ms_, timed_->totals()};
  for (const std::string& line : op_timing_lines(report)) log_->info("{}", line);
  write_json(run_ / "op_timing.json", op_timing_json(report));
}

// Per-block statistics of this rank, averaged over ranks (ZeRO-1 first gathers the gradients).
template <class T>
void Trainer<T>::write_layer_stats(const std::vector<T>& params_before, int step) {
  dp_->gather_grads(*model_);
  json row = layer_stats(*model_, params_before, step);
  std::vector<double> values;
  for (auto& l : row["layers"])
    for (auto& [k, v] : l.items())
      if (k != "layer") values.push_back(v.template get<double>());
  comm_->allreduce_mean(values.data(), values.size());
  size_t i = 0;
  for (auto& l : row["layers"])
    for (auto& [k, v] : l.items())
      if (k != "layer") v = values[i++];
  if (root_) metrics_->write(row);
}

template <class T>
void Trainer<T>::log_step(int done, const StepResult& r, double step_s) {
  if ((done - 1) % cfg_.log.every != 0 && done != cfg_.train.steps) return;
  const double eta = train_s_ / (done - start_) * (cfg_.train.steps - done);
  log_->info("step {:>5}/{} | loss {:.4f} | lr {:.2e} | norm {:.3f} | {:.1f} ms | {:.0f} tok/s | ETA {}", done,
             cfg_.train.steps, r.loss, r.lr, r.grad_norm, step_s * 1e3, tokens_per_step_ / step_s,
             format_duration(eta));
}

template <class T>
int Trainer<T>::loop() {
  install_stop_handlers();
  DivergenceGuard guard(cfg_.train);
  LrSchedule schedule{cfg_.optim.lr, cfg_.optim.schedule, cfg_.optim.warmup_steps, cfg_.optim.min_lr_ratio,
                      cfg_.train.steps};
  std::vector<T> params_before;
  steps_done_ = start_;
  for (int step = start_; step < cfg_.train.steps; ++step) {
    if (cfg_.eval.every > 0 && step % cfg_.eval.every == 0) run_eval(step);
    const bool inject_nan = maybe_inject_fault(comm_->rank(), step);
    const bool stats_due = cfg_.log.layer_stats_every > 0 && step % cfg_.log.layer_stats_every == 0;
    if (stats_due) params_before = model_->params.to_host();
    // Per-op timing covers the step only (not eval, layer statistics or checkpoints), and not the
    // invocation's first steps, which pay for allocations, library handles and module loads.
    const bool time_ops = timed_ && step - start_ >= kOpTimingWarmupSteps;
    if (timed_) timed_->set_timing(time_ops);
    Stopwatch sw;
    StepResult r = compute_gradients(*model_, *dp_, cfg_.train.grad_accum,
                                     [&](int32_t* in, int32_t* tg) { train_data_->next_batch(in, tg); });
    if (inject_nan) r.loss = std::nan("");
    std::string why;
    const auto verdict = guard.judge(r.loss, r.grad_norm, why);
    if (verdict == DivergenceGuard::Verdict::Apply) {
      apply_update(*model_, *opt_, *dp_, schedule, cfg_.optim, step, r);
    } else {
      r.lr = schedule.at(step);
    }
    // Reading the clock waits for the step's last kernels; counted in the step, since the next
    // step would wait for them anyway.
    if (time_ops) timed_->read_clock();
    const double step_s = sw.seconds();
    if (time_ops) {
      ++timed_steps_;
      timed_ms_ += step_s * 1e3;
    }
    if (timed_) timed_->set_timing(false);
    train_s_ += step_s;
    run_tokens_ += tokens_per_step_;
    train_loss_ = r.loss;
    json row = {{"step", step},
                {"tokens", long(step + 1) * tokens_per_step_},
                {"train_loss", number_or_null(r.loss)},
                {"lr", r.lr},
                {"grad_norm", number_or_null(r.grad_norm)},
                {"step_ms", step_s * 1e3},
                {"tokens_per_s", tokens_per_step_ / step_s}};
    if (verdict != DivergenceGuard::Verdict::Apply) row["skipped"] = true;
    skipped_ = guard.skipped();
    if (root_) metrics_->write(row);
    if (verdict == DivergenceGuard::Verdict::Stop) {
      log_->error("step {}: {}: the run diverged; its checkpoints are kept as they were", step, why);
      finish("diverged");
      return 3;
    }
    if (verdict == DivergenceGuard::Verdict::Skip) log_->warn("step {}: {}: update skipped", step, why);
    if (stats_due) write_layer_stats(params_before, step);
    steps_done_ = step + 1;
    log_step(steps_done_, r, step_s);
    if (steps_done_ == cfg_.train.steps) break;
    const bool asked = o_.stop_after > 0 && steps_done_ - start_ >= o_.stop_after;
    // Every rank must agree to stop at the same step (a signal may reach only some of them).
    double stop_votes = stop_requested() ? 1.0 : 0.0;
    comm_->allreduce_sum(&stop_votes, 1);
    if (asked || stop_votes > 0) {
      save_checkpoint(steps_done_);
      finish("interrupted");
      if (asked) log_->info("stopped after {} steps as asked; continue with --resume", o_.stop_after);
      else log_->info("stopped by signal {} at step {}; continue with --resume", stop_signal(), steps_done_);
      return 0;
    }
    if (cfg_.checkpoint.every > 0 && steps_done_ % cfg_.checkpoint.every == 0) save_checkpoint(steps_done_);
  }
  run_eval(cfg_.train.steps);
  save_checkpoint(cfg_.train.steps);
  finish("completed");
  log_->info("done: {} steps, final train loss {:.4f}, val loss {}, {} ({:.0f} tok/s)", cfg_.train.steps, train_loss_,
             val_data_ ? fmt::format("{:.4f}", last_val_) : "n/a (no data.val)", format_duration(wall_.seconds()),
             train_s_ > 0 ? run_tokens_ / train_s_ : 0.0);
  return 0;
}

}  // namespace

std::string default_run_dir(const std::string& config_path) {
  const auto now = std::chrono::system_clock::now();
  return fmt::format("runs/{}-{:%Y%m%d-%H%M%S}", fs::path(config_path).stem().string(),
                     std::chrono::floor<std::chrono::seconds>(now));
}

int run_train(const TrainOptions& o) {
  const Config cfg = load_config(o.config_path, o.overrides);
  const fs::path run = o.run_dir.empty() ? fs::path(default_run_dir(o.config_path)) : fs::path(o.run_dir);
  if (resolve_precision(cfg.precision, resolve_device(cfg.device)) == "bf16") return Trainer<bf16>(o, cfg, run).run();
  return Trainer<float>(o, cfg, run).run();
}

}  // namespace ng
