#include "data/loader.hpp"

#include <algorithm>
#include <limits>
#include <numeric>

#include <fmt/ranges.h>

#include "core/errors.hpp"

namespace ng {

DataLoader::DataLoader(const LoaderOptions& opts) : opts_(opts) {
  NG_REQUIRE(opts.B > 0 && opts.T > 0, "{}: batch size and sequence length must be positive (B={}, T={})", opts.what,
             opts.B, opts.T);
  NG_REQUIRE(opts.world >= 1 && opts.rank >= 0 && opts.rank < opts.world, "{}: rank {} outside world of {}", opts.what,
             opts.rank, opts.world);
  span_ = uint64_t(opts.B) * uint64_t(opts.T) * uint64_t(opts.world);
  files_ = expand_patterns(opts.patterns, opts.what);
  uint64_t largest = 0;
  for (const std::string& f : files_) {
    ShardInfo info = open_shard(f);
    total_tokens_ += info.num_tokens;
    largest = std::max(largest, info.num_tokens);
    // One sample needs span_ + 1 tokens: the last target is the token after the span.
    const uint64_t samples = info.num_tokens == 0 ? 0 : (info.num_tokens - 1) / span_;
    if (samples > 0) {
      first_sample_.push_back(total_samples_);
      total_samples_ += samples;
      shards_.push_back({info, samples});
    }
    all_shards_.push_back(std::move(info));
  }
  NG_REQUIRE(!shards_.empty(),
             "{}: no shard holds one batch: B*T*world+1 = {}*{}*{}+1 = {} tokens needed, the largest of the {} "
             "file(s) matching {} has {}",
             opts.what, opts.B, opts.T, opts.world, span_ + 1, files_.size(), fmt::join(opts.patterns, " "), largest);
  buf_.resize(size_t(opts.B) * opts.T + 1);
  reset();
}

void DataLoader::reset() {
  shard_ = sample_ = epoch_ = 0;
  rng_.reseed(opts_.seed);
  if (opts_.shuffle) begin_epoch();
}

void DataLoader::begin_epoch() {
  epoch_rng_ = rng_.state();
  perm_.resize(total_samples_);
  std::iota(perm_.begin(), perm_.end(), uint64_t(0));
  for (uint64_t i = total_samples_; i > 1; --i) std::swap(perm_[i - 1], perm_[rng_.below(i)]);
}

void DataLoader::next_batch(int32_t* inputs, int32_t* targets) {
  uint64_t shard = shard_, local = sample_;
  if (opts_.shuffle) {
    const uint64_t global = perm_[sample_];
    shard = uint64_t(std::upper_bound(first_sample_.begin(), first_sample_.end(), global) - first_sample_.begin()) - 1;
    local = global - first_sample_[shard];
  }
  const uint64_t rows = uint64_t(opts_.B) * opts_.T;
  const uint64_t start = local * span_ + uint64_t(opts_.rank) * rows;
  read_shard_tokens(shards_[shard].info, start, rows + 1, buf_.data());
  std::copy(buf_.begin(), buf_.end() - 1, inputs);
  std::copy(buf_.begin() + 1, buf_.end(), targets);
  advance();
}

void DataLoader::advance() {
  ++sample_;
  if (opts_.shuffle) {
    if (sample_ == total_samples_) {
      sample_ = 0;
      ++epoch_;
      begin_epoch();
    }
    return;
  }
  if (sample_ == shards_[shard_].samples) {
    sample_ = 0;
    if (++shard_ == shards_.size()) {
      shard_ = 0;
      ++epoch_;
    }
  }
}

LoaderState DataLoader::state() const {
  LoaderState s{shard_, sample_, epoch_, {}};
  if (opts_.shuffle) s.rng = epoch_rng_;
  return s;
}

void DataLoader::set_state(const LoaderState& s) {
  if (opts_.shuffle) {
    const bool rng_set = s.rng != decltype(s.rng){};  // xoshiro's state is never all zero
    NG_REQUIRE(s.shard == 0 && s.sample < total_samples_ && rng_set,
               "{}: saved loader position (sample {} of {}) does not fit this shuffled data; was it saved with "
               "data.shuffle false or other shards?",
               opts_.what, s.sample, total_samples_);
    rng_.set_state(s.rng);
    begin_epoch();
  } else {
    NG_REQUIRE(s.shard < shards_.size() && s.sample < shards_[s.shard].samples,
               "{}: saved loader position (shard {}, sample {}) does not fit the {} usable shard(s); did the data "
               "change since it was saved?",
               opts_.what, s.shard, s.sample, shards_.size());
  }
  shard_ = s.shard;
  sample_ = s.sample;
  epoch_ = s.epoch;
}

void DataLoader::check_token_ids(int vocab_size) const {
  constexpr uint64_t kChunk = uint64_t(1) << 22;
  std::vector<int32_t> buf;
  for (const ShardInfo& shard : all_shards_) {
    for (uint64_t first = 0; first < shard.num_tokens; first += kChunk) {
      const uint64_t n = std::min(kChunk, shard.num_tokens - first);
      buf.resize(n);
      read_shard_tokens(shard, first, n, buf.data());
      uint64_t bad = std::numeric_limits<uint64_t>::max();
      const int32_t* p = buf.data();
#pragma omp parallel for reduction(min : bad)
      for (int64_t i = 0; i < int64_t(n); ++i)
        if (uint32_t(p[i]) >= uint32_t(vocab_size)) bad = std::min(bad, uint64_t(i));
      NG_REQUIRE(bad == std::numeric_limits<uint64_t>::max(),
                 "{}: token id {} at position {} is outside the model's vocabulary [0, {})", shard.path,
                 uint32_t(p[bad]), first + bad, vocab_size);
    }
  }
}

}  // namespace ng
