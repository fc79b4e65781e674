#include "train/checkpoint.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "core/binary_io.hpp"
#include "core/errors.hpp"

namespace fs = std::filesystem;

namespace ng {
namespace {

struct StateHeader {
  uint32_t magic;
  uint32_t version;
  int64_t step;
  int32_t rank;
  int32_t world;
  uint64_t n_params;
  uint64_t rng[4];
  uint64_t loader[7];
};

}  // namespace

void write_state_file(const std::string& path, const TrainState& s) {
  NG_CHECK(s.m.size() == s.v.size(), "moment sizes differ");
  StateHeader h{};
  h.magic = kStateMagic;
  h.version = kStateVersion;
  h.step = s.step;
  h.rank = s.rank;
  h.world = s.world;
  h.n_params = s.m.size();
  std::copy(s.rng.begin(), s.rng.end(), h.rng);
  h.loader[0] = s.loader.shard;
  h.loader[1] = s.loader.sample;
  h.loader[2] = s.loader.epoch;
  std::copy(s.loader.rng.begin(), s.loader.rng.end(), h.loader + 3);
  const uint64_t bytes = s.m.size() * sizeof(float);
  write_file_atomic(path, {{&h, sizeof(h)}, {s.m.data(), bytes}, {s.v.data(), bytes}});
}

TrainState read_state_file(const std::string& path, uint64_t n_params, int world) {
  const uint64_t size = file_size_or_fail(path);
  NG_REQUIRE(size >= sizeof(StateHeader), "{}: too short for a resume state file", path);
  StateHeader h;
  read_exact(path, 0, &h, sizeof(h), "state header");
  NG_REQUIRE(h.magic == kStateMagic, "{}: bad magic (not a normgpt state file)", path);
  NG_REQUIRE(h.version == kStateVersion, "{}: unsupported state file version {} (expected {})", path, h.version,
             kStateVersion);
  NG_REQUIRE(h.world == world,
             "{}: checkpoint was written by {} processes, this run has {} (the global batch would change; resume "
             "with the same number of processes)",
             path, h.world, world);
  NG_REQUIRE(h.n_params == n_params, "{}: holds optimizer state for {} parameters, the model has {}", path,
             h.n_params, n_params);
  NG_REQUIRE(h.step >= 0, "{}: negative step {}", path, h.step);
  const uint64_t expect = sizeof(StateHeader) + 2 * n_params * sizeof(float);
  NG_REQUIRE(size == expect, "{}: file is {} bytes, expected {} (truncated?)", path, size, expect);
  TrainState s;
  s.step = h.step;
  s.rank = h.rank;
  s.world = h.world;
  std::copy(h.rng, h.rng + 4, s.rng.begin());
  s.loader.shard = h.loader[0];
  s.loader.sample = h.loader[1];
  s.loader.epoch = h.loader[2];
  std::copy(h.loader + 3, h.loader + 7, s.loader.rng.begin());
  s.m.resize(n_params);
  s.v.resize(n_params);
  read_exact(path, sizeof(StateHeader), s.m.data(), n_params * sizeof(float), "first moments");
  read_exact(path, sizeof(StateHeader) + n_params * sizeof(float), s.v.data(), n_params * sizeof(float),
             "second moments");
  return s;
}

std::string checkpoint_name(int64_t step) { return fmt::format("step_{:08d}", step); }

std::string latest_checkpoint(const std::string& run_dir) {
  const fs::path latest = fs::path(run_dir) / "checkpoints" / "latest";
  if (!fs::exists(latest)) return "";
  std::ifstream f(latest);
  std::string name;
  std::getline(f, name);
  NG_REQUIRE(!name.empty() && name.find('/') == std::string::npos, "{}: does not name a checkpoint", latest.string());
  const fs::path dir = fs::path(run_dir) / "checkpoints" / name;
  NG_REQUIRE(fs::exists(dir / "model.bin") && (fs::exists(dir / "state.bin") || fs::exists(dir / "state_r0.bin")),
             "{}: names {}, which is missing model.bin or its state file", latest.string(), dir.string());
  return dir.string();
}

void publish_checkpoint(const std::string& run_dir, const std::string& tmp_dir, const std::string& name, int keep) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  const fs::path dst = root / name;
  std::error_code ec;
  fs::remove_all(dst, ec);  // a re-written step (after a resume) replaces its older copy
  fs::rename(tmp_dir, dst, ec);
  NG_REQUIRE(!ec, "cannot move checkpoint into {}: {}", dst.string(), ec.message());
  const std::string line = name + "\n";
  write_file_atomic((root / "latest").string(), {{line.data(), line.size()}});
  if (keep <= 0) return;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && e.path().filename().string().rfind("step_", 0) == 0 &&
        e.path().extension() != ".tmp")
      names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());  // zero-padded step numbers sort in step order
  for (size_t i = 0; i + size_t(keep) < names.size(); ++i)
    if (names[i] != name) fs::remove_all(root / names[i], ec);
}

}  // namespace ng
