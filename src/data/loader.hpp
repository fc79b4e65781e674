// DataLoader: batches of (inputs, targets) from token shards, in order or shuffled, one rank's
// slice at a time.
//
// Samples. All ranks together read spans of B*T*world tokens; rank r's B rows are the B*T+1 tokens
// starting at offset r*B*T in the span (row b starts at b*T; targets are the inputs shifted by one
// token). A shard of n tokens holds floor((n - 1) / (B*T*world)) spans ("samples"); sample s of a
// shard starts at token s*B*T*world. With world = 1, sample s is tokens [s*B*T, s*B*T + B*T].
// Shards too small for one sample are skipped; the tail of a shard after its last sample is unused.
//
// Order, shuffle off: shards in the order of the file list (expand_patterns: each pattern sorted),
// samples in order within a shard; after a shard's last sample the next shard starts at sample 0,
// and after the last shard the first again (the epoch count goes up).
// Order, shuffle on: every epoch visits every sample of every usable shard exactly once, in the
// order of a Fisher-Yates shuffle of the global sample list (shards in file order, samples in order
// within each), drawn from ng::Rng seeded with `seed`. The generator runs on across epochs, so each
// epoch gets a new order; the same seed and data always give the same orders. All ranks of a run
// use the same seed and so agree on every sample.
//
// Reads use pread-style positioned reads of one sample at a time, so memory stays at one batch
// (plus, when shuffling, one 8-byte index per sample of the epoch).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "data/shard.hpp"

namespace ng {

struct LoaderOptions {
  std::vector<std::string> patterns;  // shard files or globs (data.train or data.val)
  int B = 0;
  int T = 0;
  int rank = 0;
  int world = 1;
  bool shuffle = false;
  uint64_t seed = 0;
  std::string what = "data";  // config key named in error messages ("data.train", "data.val")
};

// Enough to resume exactly. Shuffle off: `shard` indexes the usable shards, `sample` is the
// sample within it, `rng` is unused (zero). Shuffle on: `sample` is the position in this epoch's permutation, `shard` is 0,
// and `rng` is the generator state from which this epoch's permutation was drawn.
struct LoaderState {
  uint64_t shard = 0;
  uint64_t sample = 0;
  uint64_t epoch = 0;
  std::array<uint64_t, 4> rng{};
};

class DataLoader {
 public:
  // Expands the patterns and validates every shard's header and size. UserError for a bad file, or
  // when no shard holds a single sample.
  explicit DataLoader(const LoaderOptions& opts);

  // Fills inputs and targets (B*T each, row-major [B][T]) with the next sample and advances.
  void next_batch(int32_t* inputs, int32_t* targets);

  // Back to the start of epoch 0 (the val loader calls this before every evaluation).
  void reset();

  LoaderState state() const;
  // UserError if the state does not fit this data (shards changed since it was saved).
  void set_state(const LoaderState& s);

  uint64_t samples_per_epoch() const { return total_samples_; }
  // Tokens in all matched shards, including any too small to use.
  uint64_t total_tokens() const { return total_tokens_; }
  const std::vector<std::string>& files() const { return files_; }

  // Scans every token of every shard once; UserError naming the file, position and id of the first
  // id outside [0, vocab_size).
  void check_token_ids(int vocab_size) const;

 private:
  struct Shard {
    ShardInfo info;
    uint64_t samples = 0;
  };
  void begin_epoch();  // shuffle on: draws the permutation of the current epoch from rng_
  void advance();

  LoaderOptions opts_;
  std::vector<std::string> files_;
  std::vector<ShardInfo> all_shards_;  // every matched file, for check_token_ids
  std::vector<Shard> shards_;          // usable shards (at least one sample)
  std::vector<uint64_t> first_sample_; // global index of each usable shard's sample 0
  uint64_t total_samples_ = 0;
  uint64_t total_tokens_ = 0;
  uint64_t span_ = 0;  // B*T*world

  // Position.
  uint64_t shard_ = 0, sample_ = 0, epoch_ = 0;
  Rng rng_;
  std::array<uint64_t, 4> epoch_rng_{};  // rng_ state before this epoch's shuffle
  std::vector<uint64_t> perm_;           // shuffle on: global sample ids in this epoch's order
  std::vector<int32_t> buf_;             // one rank's B*T+1 tokens
};

}  // namespace ng
