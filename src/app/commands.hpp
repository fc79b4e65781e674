// The subcommands other than train and tokenize (which live in train/ and data/).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ng {

struct SampleOptions {
  std::string checkpoint;  // a model.bin
  std::string prompt;
  int tokens = 64;
  double temperature = 1.0;
  uint64_t seed = 1337;
};
void run_sample(const SampleOptions& o);

void run_eval(const std::string& config_path, const std::vector<std::string>& overrides, const std::string& checkpoint);

void run_info(const std::string& config_path, const std::vector<std::string>& overrides);

}  // namespace ng
