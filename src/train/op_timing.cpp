#include "train/op_timing.hpp"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "core/errors.hpp"

namespace ng {
namespace {

// The rows that were called, longest total first (ties in list order).
std::vector<OpTime> called_rows(const OpTimingReport& r) {
  std::vector<OpTime> rows;
  for (const OpTime& t : r.rows)
    if (t.calls > 0) rows.push_back(t);
  std::stable_sort(rows.begin(), rows.end(), [](const OpTime& a, const OpTime& b) { return a.ms > b.ms; });
  return rows;
}

double share(double ms, double step_ms) { return step_ms > 0 ? 100.0 * ms / step_ms : 0.0; }

// Step time no timed call accounts for. Never negative: clock rounding aside, the calls of a step
// run inside it.
double outside_ms(const OpTimingReport& r) {
  double ops = 0;
  for (const OpTime& t : r.rows) ops += t.ms;
  return std::max(0.0, r.step_ms - ops);
}

}  // namespace

bool op_timing_requested(bool config_key) {
  const char* env = std::getenv("NORMGPT_OP_TIMING");
  const std::string v = env ? env : "";
  NG_REQUIRE(v.empty() || v == "0" || v == "1", "NORMGPT_OP_TIMING: expected 0 or 1, got '{}'", v);
  return config_key || v == "1";
}

std::vector<std::string> op_timing_lines(const OpTimingReport& r) {
  std::vector<std::string> lines;
  if (r.steps == 0) {
    lines.push_back(fmt::format("op timing ({}): no step was timed (the first {} step(s) of a run are warm-up)",
                                r.clock, r.warmup_steps));
    return lines;
  }
  lines.push_back(fmt::format("op timing ({}): {} step(s) after {} warm-up step(s), {:.3f} ms/step", r.clock,
                              r.steps, r.warmup_steps, r.step_ms / r.steps));
  lines.push_back(fmt::format("  {:<24} {:>9} {:>12} {:>10} {:>7}", "op", "calls", "total ms", "ms/step", "share"));
  for (const OpTime& t : called_rows(r))
    lines.push_back(fmt::format("  {:<24} {:>9} {:>12.3f} {:>10.4f} {:>6.1f}%", t.name, t.calls, t.ms,
                                t.ms / r.steps, share(t.ms, r.step_ms)));
  const double outside = outside_ms(r);
  lines.push_back(fmt::format("  {:<24} {:>9} {:>12.3f} {:>10.4f} {:>6.1f}%", "outside ops", "-", outside,
                              outside / r.steps, share(outside, r.step_ms)));
  return lines;
}

nlohmann::json op_timing_json(const OpTimingReport& r) {
  nlohmann::json ops = nlohmann::json::array();
  for (const OpTime& t : called_rows(r))
    ops.push_back({{"op", std::string(t.name)},
                   {"calls", t.calls},
                   {"total_ms", t.ms},
                   {"ms_per_step", r.steps > 0 ? t.ms / r.steps : 0.0},
                   {"share", share(t.ms, r.step_ms)}});
  const double outside = outside_ms(r);
  return {{"clock", r.clock},
          {"steps", r.steps},
          {"warmup_steps", r.warmup_steps},
          {"step_ms", r.step_ms},
          {"ops", ops},
          {"outside_ops", {{"total_ms", outside}, {"share", share(outside, r.step_ms)}}}};
}

}  // namespace ng
