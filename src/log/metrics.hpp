// RUN/metrics.jsonl: one JSON object per line, appended and flushed as the run goes (DESIGN.md).
// Readers tolerate a partial last line (a crash mid-write); so does trim_metrics.
#pragma once

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace ng {

class MetricsWriter {
 public:
  explicit MetricsWriter(const std::string& path);  // appends
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;
  void write(const nlohmann::json& row);

 private:
  std::FILE* f_ = nullptr;
  std::string path_;
};

// Keeps only the rows with "step" < `step` (used on --resume, so rows logged after the checkpoint
// by the interrupted run are not duplicated). Drops unparsable lines. Atomic rewrite.
void trim_metrics(const std::string& path, long step);

}  // namespace ng
