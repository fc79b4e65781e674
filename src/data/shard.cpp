#include "data/shard.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <glob.h>
#include <limits>

#include "core/binary_io.hpp"
#include "core/errors.hpp"

namespace ng {

ShardInfo open_shard(const std::string& path) {
  const uint64_t size = file_size_or_fail(path);
  NG_REQUIRE(size >= kShardHeaderBytes, "{}: file too short for a token shard ({} bytes, the header alone is {})",
             path, size, kShardHeaderBytes);
  std::array<int32_t, kShardHeaderInts> h{};
  read_exact(path, 0, h.data(), kShardHeaderBytes, "token shard header");
  ShardInfo info{path, 0, 2};
  if (h[0] == kShardMagicU16) {
    NG_REQUIRE(h[1] == kShardVersionU16, "{}: bad version {} (expected {} for a uint16 token shard)", path, h[1],
               kShardVersionU16);
    info.token_bytes = 2;
  } else if (h[0] == kShardMagicU32) {
    NG_REQUIRE(h[1] == kShardVersionU32, "{}: bad version {} (expected {} for a uint32 token shard)", path, h[1],
               kShardVersionU32);
    info.token_bytes = 4;
  } else {
    fail_user("{}: bad magic {} (expected {} token shard, or {} uint32 token shard)", path, h[0], kShardMagicU16,
              kShardMagicU32);
  }
  NG_REQUIRE(h[2] >= 0, "{}: negative token count {} in header", path, h[2]);
  info.num_tokens = uint64_t(h[2]);
  const uint64_t expected = kShardHeaderBytes + info.num_tokens * uint64_t(info.token_bytes);
  NG_REQUIRE(size == expected, "{}: file size {} does not match its header ({} tokens of {} bytes need {} bytes){}",
             path, size, info.num_tokens, info.token_bytes, expected, size < expected ? "; truncated?" : "");
  return info;
}

void read_shard_tokens(const ShardInfo& shard, uint64_t first, uint64_t count, int32_t* dst) {
  NG_REQUIRE(first <= shard.num_tokens && count <= shard.num_tokens - first,
             "{}: token range [{}, {}) is past its {} tokens", shard.path, first, first + count, shard.num_tokens);
  const uint64_t offset = kShardHeaderBytes + first * uint64_t(shard.token_bytes);
  if (shard.token_bytes == 4) {
    // int32 and uint32 share a layout; ids >= 2^31 show up negative and fail check_token_ids.
    read_exact(shard.path, offset, dst, count * 4, "tokens");
    return;
  }
  std::vector<uint16_t> buf(count);
  read_exact(shard.path, offset, buf.data(), count * 2, "tokens");
  std::copy(buf.begin(), buf.end(), dst);
}

std::vector<int32_t> read_shard(const std::string& path) {
  const ShardInfo info = open_shard(path);
  std::vector<int32_t> tokens(info.num_tokens);
  read_shard_tokens(info, 0, info.num_tokens, tokens.data());
  return tokens;
}

void write_shard(const std::string& path, std::span<const uint16_t> tokens) {
  NG_REQUIRE(tokens.size() <= uint64_t(std::numeric_limits<int32_t>::max()),
             "{}: {} tokens do not fit one shard (at most {})", path, tokens.size(), std::numeric_limits<int32_t>::max());
  std::array<int32_t, kShardHeaderInts> h{};
  h[0] = kShardMagicU16;
  h[1] = kShardVersionU16;
  h[2] = int32_t(tokens.size());
  write_file_atomic(path, {{h.data(), kShardHeaderBytes}, {tokens.data(), tokens.size_bytes()}});
}

void write_shard(const std::string& path, std::span<const int32_t> tokens) {
  std::vector<uint16_t> narrow(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    NG_REQUIRE(tokens[i] >= 0 && tokens[i] <= 65535, "{}: token id {} at position {} does not fit a uint16 shard",
               path, tokens[i], i);
    narrow[i] = uint16_t(tokens[i]);
  }
  write_shard(path, std::span<const uint16_t>(narrow));
}

std::vector<std::string> expand_patterns(const std::vector<std::string>& patterns, const std::string& what) {
  NG_REQUIRE(!patterns.empty(), "{}: no shard files given", what);
  std::vector<std::string> files;
  for (const std::string& pattern : patterns) {
    glob_t g{};
    const int rc = ::glob(pattern.c_str(), GLOB_ERR, nullptr, &g);
    std::vector<std::string> matches;
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) matches.emplace_back(g.gl_pathv[i]);
    ::globfree(&g);
    NG_REQUIRE(rc == 0 || rc == GLOB_NOMATCH, "{}: cannot expand \"{}\" (read error)", what, pattern);
    NG_REQUIRE(!matches.empty(), "{}: \"{}\" matches no file", what, pattern);
    std::sort(matches.begin(), matches.end());
    files.insert(files.end(), matches.begin(), matches.end());
  }
  return files;
}

}  // namespace ng
