// Small helpers for the binary files normgpt reads and writes (shards, model files, resume state).
// Every reader checks what it reads against the file length (DESIGN.md: "every binary file is
// checked on read"); failures are UserErrors naming the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ng {

// Size of a file in bytes; UserError if it cannot be opened.
uint64_t file_size_or_fail(const std::string& path);

// Reads exactly `bytes` at `offset`; UserError naming `path` and `what` if the file is shorter.
void read_exact(const std::string& path, uint64_t offset, void* dst, uint64_t bytes, const char* what);

// Writes `bytes` to `path` through a temporary file in the same directory, flushed and renamed,
// so a crash never leaves a half-written file under the final name.
void write_file_atomic(const std::string& path, const std::vector<std::pair<const void*, uint64_t>>& chunks);

}  // namespace ng
