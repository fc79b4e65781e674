// Console logging: spdlog to stdout and, during training, to RUN/train.log as well.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace ng {

// The process-wide logger; plain "[HH:MM:SS] message" lines.
std::shared_ptr<spdlog::logger> console();

// Adds RUN/train.log (appended) as a second sink of console().
void log_to_file(const std::string& path);

// "3m12s", "1h04m", "45s".
std::string format_duration(double seconds);

}  // namespace ng
