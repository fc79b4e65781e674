#include "data/tokenize_cmd.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <span>

#include <fmt/format.h>

#include "core/binary_io.hpp"
#include "core/errors.hpp"
#include "data/shard.hpp"
#include "data/tokenizer.hpp"

namespace ng {

namespace {

namespace fs = std::filesystem;

constexpr size_t kChunkBytes = size_t(1) << 20;          // encode this much at a time
constexpr uint64_t kBigInputBytes = uint64_t(32) << 20;  // above this total, print progress every 10%

bool ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string read_whole_file(const std::string& path, uint64_t size) {
  std::string text(size, '\0');
  if (size > 0) read_exact(path, 0, text.data(), size, "text");
  return text;
}

// Writes tokens[0, n) as shards named PREFIX_000000.bin, ... of at most shard_tokens each.
std::vector<std::string> write_split(const fs::path& dir, const std::string& prefix, std::span<const uint16_t> tokens,
                                     uint64_t shard_tokens) {
  std::vector<std::string> files;
  for (uint64_t first = 0; first < tokens.size(); first += shard_tokens) {
    const uint64_t n = std::min<uint64_t>(shard_tokens, tokens.size() - first);
    const std::string path = (dir / fmt::format("{}_{:06d}.bin", prefix, files.size())).string();
    write_shard(path, tokens.subspan(first, n));
    files.push_back(path);
  }
  return files;
}

// True for the names write_split gives: train_NNNNNN.bin or val_NNNNNN.bin.
bool is_shard_name(std::string_view name) {
  for (std::string_view prefix : {"train_", "val_"}) {
    if (!name.starts_with(prefix) || !name.ends_with(".bin")) continue;
    const std::string_view digits = name.substr(prefix.size(), name.size() - prefix.size() - 4);
    return digits.size() == 6 && std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  }
  return false;
}

// Removes shard files in `dir` that this run did not write.
void remove_stale_shards(const fs::path& dir, const std::vector<std::string>& written) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!is_shard_name(name)) continue;
    const bool ours_now = std::any_of(written.begin(), written.end(),
                                      [&](const std::string& w) { return fs::path(w).filename() == name; });
    if (ours_now) continue;
    fmt::print("tokenize: removing stale shard {} from an earlier run\n", entry.path().string());
    fs::remove(entry.path());
  }
}

}  // namespace

size_t find_chunk_end(std::string_view text, size_t from, size_t target) {
  for (size_t p = std::max<size_t>(from + target, 1); p + 1 < text.size(); ++p)
    if (text[p] == ' ' && ascii_letter(text[p - 1]) && ascii_letter(text[p + 1])) return p;
  return text.size();
}

TokenizeSummary run_tokenize(const TokenizeOptions& opts) {
  NG_REQUIRE(!opts.inputs.empty(), "tokenize: no input files (--input FILE...)");
  NG_REQUIRE(!opts.output_dir.empty(), "tokenize: no output directory (--output-dir DIR)");
  NG_REQUIRE(std::isfinite(opts.val_fraction) && opts.val_fraction >= 0 && opts.val_fraction < 1,
             "tokenize: --val-fraction {} must be in [0, 1)", opts.val_fraction);
  NG_REQUIRE(opts.shard_tokens >= 1 && opts.shard_tokens <= uint64_t(std::numeric_limits<int32_t>::max()),
             "tokenize: shard size {} tokens must be in [1, 2^31)", opts.shard_tokens);
  // Check every input before spending time on any of them.
  std::vector<uint64_t> sizes;
  TokenizeSummary sum;
  for (const std::string& in : opts.inputs) {
    sizes.push_back(file_size_or_fail(in));
    sum.input_bytes += sizes.back();
  }
  NG_REQUIRE(sum.input_bytes > 0, "tokenize: the {} input file(s) are all empty; nothing to write",
             opts.inputs.size());
  const auto tok = make_tokenizer(opts.tokenizer, opts.vocab_dir);
  NG_CHECK(tok->vocab_size() <= 65536, "tokenizer {} has {} ids; uint16 shards hold 65536", tok->name(),
           tok->vocab_size());

  const auto t0 = std::chrono::steady_clock::now();
  const bool report = sum.input_bytes >= kBigInputBytes;
  std::vector<uint16_t> stream;
  std::vector<int32_t> ids;
  const uint64_t report_every = sum.input_bytes / 10 + 1;
  uint64_t done_bytes = 0, next_report = report_every;
  for (size_t f = 0; f < opts.inputs.size(); ++f) {
    const std::string text = read_whole_file(opts.inputs[f], sizes[f]);
    stream.push_back(uint16_t(tok->eot_id()));
    for (size_t pos = 0; pos < text.size();) {
      const size_t end = find_chunk_end(text, pos, kChunkBytes);
      ids.clear();
      tok->encode_into(std::string_view(text).substr(pos, end - pos), ids);
      stream.insert(stream.end(), ids.begin(), ids.end());  // ids < vocab_size <= 65536
      done_bytes += end - pos;
      pos = end;
      if (report && done_bytes >= next_report) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        fmt::print("tokenize: {:.0f}/{:.0f} MB, {} tokens, {:.1f} MB/s\n", done_bytes / 1e6, sum.input_bytes / 1e6,
                   stream.size(), done_bytes / 1e6 / std::max(s, 1e-9));
        std::fflush(stdout);
        next_report += report_every;
      }
    }
  }

  const uint64_t n = stream.size();
  sum.val_tokens = uint64_t(std::floor(opts.val_fraction * double(n)));
  sum.train_tokens = n - sum.val_tokens;
  NG_REQUIRE(opts.val_fraction == 0 || sum.val_tokens > 0,
             "tokenize: --val-fraction {} of {} tokens leaves an empty val split; use more text or 0", opts.val_fraction,
             n);

  std::error_code ec;
  fs::create_directories(opts.output_dir, ec);
  NG_REQUIRE(!ec && fs::is_directory(opts.output_dir), "tokenize: cannot create output directory {}{}",
             opts.output_dir, ec ? ": " + ec.message() : "");
  const std::span<const uint16_t> all(stream);
  sum.train_files = write_split(opts.output_dir, "train", all.first(sum.train_tokens), opts.shard_tokens);
  sum.val_files = write_split(opts.output_dir, "val", all.subspan(sum.train_tokens), opts.shard_tokens);
  std::vector<std::string> written = sum.train_files;
  written.insert(written.end(), sum.val_files.begin(), sum.val_files.end());
  remove_stale_shards(opts.output_dir, written);

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("tokenize: {} file(s), {} bytes -> {} {} tokens in {:.1f} s; train {} tokens in {} shard(s), "
             "val {} tokens in {} shard(s), written to {}\n",
             opts.inputs.size(), sum.input_bytes, n, tok->name(), secs, sum.train_tokens, sum.train_files.size(),
             sum.val_tokens, sum.val_files.size(), opts.output_dir);
  return sum;
}

}  // namespace ng
