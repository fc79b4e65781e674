// `normgpt train`: the training loop with eval, checkpoints, resume and the run directory
// (DESIGN.md, "Run directory" and "metrics.jsonl").
#pragma once

#include <string>
#include <vector>

namespace ng {

struct TrainOptions {
  std::string config_path;
  std::vector<std::string> overrides;  // --set key.path=value
  std::string run_dir;                 // -o; empty: runs/<config name>-<date>-<time>
  bool resume = false;
  int stop_after = 0;  // > 0: stop after this many steps of this invocation, checkpoint, exit 0
};

// Returns the process exit code: 0 completed or stopped as asked, 3 diverged.
int run_train(const TrainOptions& opts);

// The run directory a train invocation used last (for scripts printing where the run is).
std::string default_run_dir(const std::string& config_path);

}  // namespace ng
