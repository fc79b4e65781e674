// Checkpoints: RUN/checkpoints/step_%08d/{model.bin,state.bin}, then RUN/checkpoints/latest (a
// text file naming that directory) written last. A checkpoint directory is assembled under a
// temporary name and renamed into place, so a crash never leaves a half-written one behind and
// `latest` always names a complete checkpoint.
//
// state.bin (resume state; under ZeRO-1 one state_r<rank>.bin per rank holding that rank's
// optimizer shard; little-endian):
//   uint32 magic kStateMagic, uint32 version 1, int64 step (optimizer steps done), int32 rank,
//   int32 world, uint64 n_params, uint64 rng[4], uint64 loader{shard, sample, epoch, rng[4]},
//   then float32 m[n_params], float32 v[n_params] (AdamW moments).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/loader.hpp"

namespace ng {

constexpr uint32_t kStateMagic = 0x5453474e;  // "NGST"
constexpr uint32_t kStateVersion = 1;

struct TrainState {
  int64_t step = 0;
  int32_t rank = 0;
  int32_t world = 1;
  std::array<uint64_t, 4> rng{};
  LoaderState loader;
  std::vector<float> m, v;
};

void write_state_file(const std::string& path, const TrainState& s);
// Checks magic, version, the world size it was written with (the global batch depends on it) and
// sizes against the file length and `n_params` (this rank's optimizer shard).
TrainState read_state_file(const std::string& path, uint64_t n_params, int world = 1);

std::string checkpoint_name(int64_t step);  // "step_00000100"

// Directory of the checkpoint `latest` points to, or "" when the run has none.
std::string latest_checkpoint(const std::string& run_dir);

// Moves a fully written checkpoint directory `tmp_dir` into place as checkpoints/<name>, updates
// `latest`, then deletes the oldest complete checkpoints beyond `keep` (0 = keep all).
void publish_checkpoint(const std::string& run_dir, const std::string& tmp_dir, const std::string& name, int keep);

}  // namespace ng
