// Shared bits of the libFuzzer harnesses: a private temp directory per process and a way to put
// the fuzzer's bytes into a file there (the readers under test take paths, not buffers).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include <unistd.h>

namespace ng_fuzz {

// mkdtemp once per process; removed at exit. Fuzzers run one input at a time, so reusing the same
// file names for every input is safe.
inline const std::string& temp_dir() {
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/normgpt_fuzz.XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    static std::string keep = templ;
    std::atexit([] {
      std::string cmd = "rm -rf '" + keep + "'";
      if (std::system(cmd.c_str()) != 0) {
      }
    });
    return templ;
  }();
  return dir;
}

inline void write_file(const std::string& path, std::string_view bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    std::perror(path.c_str());
    std::abort();
  }
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
  std::fclose(f);
}

inline void remove_file(const std::string& path) { ::unlink(path.c_str()); }

// NG_FUZZ_VERBOSE=1: print every rejection, to check what a seed or regression input exercises.
inline void rejected(const std::exception& e) {
  static const bool verbose = std::getenv("NG_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "UserError: %s\n", e.what());
}

// A broken oracle: print and abort, so libFuzzer saves the input as a crash.
[[noreturn]] inline void finding(const char* what) {
  std::fprintf(stderr, "FUZZ FINDING: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

}  // namespace ng_fuzz
