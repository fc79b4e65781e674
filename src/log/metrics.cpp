#include "log/metrics.hpp"

#include <filesystem>
#include <fstream>

#include "core/binary_io.hpp"
#include "core/errors.hpp"

namespace ng {

MetricsWriter::MetricsWriter(const std::string& path) : path_(path) {
  f_ = std::fopen(path.c_str(), "a");
  NG_REQUIRE(f_ != nullptr, "cannot open {} for writing", path);
}

MetricsWriter::~MetricsWriter() {
  if (f_) std::fclose(f_);
}

void MetricsWriter::write(const nlohmann::json& row) {
  const std::string line = row.dump() + "\n";
  NG_REQUIRE(std::fwrite(line.data(), 1, line.size(), f_) == line.size() && std::fflush(f_) == 0,
             "failed writing {} (disk full?)", path_);
}

void trim_metrics(const std::string& path, long step) {
  if (!std::filesystem::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    auto row = nlohmann::json::parse(line, nullptr, false);
    if (row.is_discarded() || !row.is_object() || !row.contains("step")) continue;
    if (row["step"].get<long>() < step) kept += line + "\n";
  }
  write_file_atomic(path, {{kept.data(), kept.size()}});
}

}  // namespace ng
