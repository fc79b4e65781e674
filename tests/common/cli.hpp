// Running the normgpt executable from tests: exit code plus captured output, and scratch dirs.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/tempdir.hpp"

namespace ng::test {

struct CliResult {
  int code = -1;
  std::string out;  // stdout and stderr together
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs `normgpt <args>` through the shell (args are pasted as given: quote them yourself).
inline CliResult normgpt(const std::string& args) {
  static int counter = 0;
  const auto log = std::filesystem::temp_directory_path() /
                   ("normgpt_cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".log");
  const std::string cmd = std::string(NORMGPT_BIN) + " " + args + " > " + log.string() + " 2>&1";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(log);
  std::filesystem::remove(log);
  return r;
}

// The rows of a metrics.jsonl that have `key`.
inline std::vector<nlohmann::json> metric_rows(const std::filesystem::path& file, const std::string& key) {
  std::vector<nlohmann::json> rows;
  std::ifstream f(file);
  std::string line;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains(key)) rows.push_back(j);
  }
  return rows;
}

}  // namespace ng::test

#include <signal.h>
#include <spawn.h>

#include <chrono>
#include <thread>

extern char** environ;

namespace ng::test {

// Starts `normgpt <args>` in the background (output to `log`); returns its pid.
inline pid_t spawn_normgpt(const std::string& args, const std::string& log) {
  const std::string cmd = "exec " + std::string(NORMGPT_BIN) + " " + args + " > " + log + " 2>&1";
  pid_t pid = -1;
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) return -1;
  return pid;
}

// Waits for `pid`; returns its exit code, or 128 + signal when a signal ended it.
inline int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Polls until `file` has at least `rows` lines with `key` (or `timeout_s` passes).
inline bool wait_for_rows(const std::filesystem::path& file, const std::string& key, size_t rows,
                          double timeout_s = 60) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < until) {
    if (metric_rows(file, key).size() >= rows) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

}  // namespace ng::test
