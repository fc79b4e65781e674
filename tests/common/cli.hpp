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

// A fresh empty directory under /tmp, removed when the object goes away.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = std::filesystem::temp_directory_path() / ("normgpt_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

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
