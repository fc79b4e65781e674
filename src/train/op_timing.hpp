// The per-op timing report of `normgpt train` (config key log.op_timing, or NORMGPT_OP_TIMING=1):
// where a training step's time goes, op by op. The times come from a TimedBackend
// (backend/timed_backend.hpp); this file decides whether timing is on and writes the table.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/timed_backend.hpp"

namespace ng {

// log.op_timing, or NORMGPT_OP_TIMING=1. The variable takes 0 or 1 (0 or unset: the key decides);
// anything else is a user error naming it.
bool op_timing_requested(bool config_key);

struct OpTimingReport {
  std::string clock;             // the OpClock's name
  int steps = 0;                 // steps timed
  int warmup_steps = 0;          // steps of this invocation left out before them
  double step_ms = 0;            // wall time of the timed steps, summed
  std::vector<OpTime> rows;      // TimedBackend::totals()
};

// The table for the console: a title line, a header, one line per row that was called (longest
// total first), and "outside ops" (step time no timed call accounts for: host work, launch gaps).
std::vector<std::string> op_timing_lines(const OpTimingReport& r);

// The same as JSON (op_timing.json): {clock, steps, warmup_steps, step_ms, ops: [{op, calls,
// total_ms, ms_per_step, share}], outside_ops: {total_ms, share}}; shares in percent of step_ms.
nlohmann::json op_timing_json(const OpTimingReport& r);

}  // namespace ng
