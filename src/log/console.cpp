#include "log/console.hpp"

#include <cmath>

#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace ng {

std::shared_ptr<spdlog::logger> console() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = std::make_shared<spdlog::logger>("normgpt", std::make_shared<spdlog::sinks::stdout_sink_mt>());
    l->set_pattern("[%H:%M:%S] %v");
    l->flush_on(spdlog::level::info);
    return l;
  }();
  return logger;
}

void log_to_file(const std::string& path) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false);
  sink->set_pattern("[%Y-%m-%d %H:%M:%S] %v");
  console()->sinks().push_back(sink);
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long t = std::lround(s);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, int((t % 3600) / 60));
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, int(t % 60));
  return fmt::format("{}s", t);
}

}  // namespace ng
