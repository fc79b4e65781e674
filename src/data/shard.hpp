// Token shards in llm.c's format.
//
// A shard is a header of 256 little-endian int32 followed by the tokens:
//   header[0] = magic, header[1] = version, header[2] = number of tokens; the rest is zero.
//   magic 20240520, version 1: uint16 tokens (GPT-2's vocabulary fits; what normgpt writes).
//   magic 20240801, version 7: uint32 tokens (llm.c's variant for larger vocabularies; read only).
// A file is valid only if its size is exactly 1024 + count * token_bytes, so truncated or padded
// files are caught when they are opened, not halfway through training.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ng {

inline constexpr int kShardHeaderInts = 256;
inline constexpr uint64_t kShardHeaderBytes = kShardHeaderInts * sizeof(int32_t);
inline constexpr int32_t kShardMagicU16 = 20240520;
inline constexpr int32_t kShardVersionU16 = 1;
inline constexpr int32_t kShardMagicU32 = 20240801;
inline constexpr int32_t kShardVersionU32 = 7;

// What open_shard learned from a shard's header, already checked against the file's size.
struct ShardInfo {
  std::string path;
  uint64_t num_tokens = 0;
  int token_bytes = 2;  // 2 (uint16 format) or 4 (uint32 format)
};

// Reads and validates the header only (cheap: one 1 KiB read). UserError naming the file for a
// missing file, bad magic, bad version, or a size that does not match the token count.
ShardInfo open_shard(const std::string& path);

// Reads tokens [first, first + count) of the shard into dst, widening to int32.
// UserError if the range is past the end or the read fails.
void read_shard_tokens(const ShardInfo& shard, uint64_t first, uint64_t count, int32_t* dst);

// All tokens of a shard (for tests and small files).
std::vector<int32_t> read_shard(const std::string& path);

// Writes `tokens` as a uint16 shard (magic 20240520, version 1), atomically. UserError if an id is
// outside [0, 65535] or there are more tokens than the header's int32 count can hold.
void write_shard(const std::string& path, std::span<const int32_t> tokens);
void write_shard(const std::string& path, std::span<const uint16_t> tokens);

// Expands shell glob patterns (`data/x/train_*.bin`) into files: each pattern's matches sorted by
// name, patterns in the order given. A plain path is a pattern that matches itself. UserError
// naming `what` (e.g. "data.train") and the pattern if a pattern matches no file.
std::vector<std::string> expand_patterns(const std::vector<std::string>& patterns, const std::string& what);

}  // namespace ng
