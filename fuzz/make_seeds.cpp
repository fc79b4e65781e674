// Writes the binary seed inputs of fuzz/corpus/ with normgpt's own writers, so the seeds are valid
// by construction: tiny shards (uint16 and uint32 formats) and tiny model files (plain GPT-2 fp32
// and bf16, and strategies that use the normgpt header extension). Run by scripts/fuzz.sh
// --make-seeds; the output is committed.
//   fuzz_make_seeds OUT_DIR   (writes OUT_DIR/shard/*, OUT_DIR/model_file/*)
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "data/shard.hpp"
#include "model/model_file.hpp"
#include "model/params.hpp"
#include "norm/plan.hpp"

namespace fs = std::filesystem;

static std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Shard seeds carry the fuzz_shard harness's 4 control bytes in front of the file.
static void shard_seed(const fs::path& out, const std::string& control, const std::string& file_bytes) {
  std::ofstream(out, std::ios::binary) << control << file_bytes;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  fs::create_directories(out / "shard");
  fs::create_directories(out / "model_file");
  const fs::path tmp = fs::temp_directory_path() / "normgpt_make_seeds";
  fs::create_directories(tmp);

  // Shards: 20 uint16 tokens; the same as llm.c's uint32 variant; an empty shard.
  std::vector<int32_t> toks;
  for (int i = 0; i < 20; ++i) toks.push_back((i * 37) % 257);
  ng::write_shard((tmp / "s16.bin").string(), std::span<const int32_t>(toks));
  const std::string s16 = slurp(tmp / "s16.bin");
  std::string s32 = s16.substr(0, 1024);
  const int32_t magic32 = ng::kShardMagicU32, version32 = ng::kShardVersionU32;
  s32.replace(0, 4, reinterpret_cast<const char*>(&magic32), 4);
  s32.replace(4, 4, reinterpret_cast<const char*>(&version32), 4);
  for (int32_t t : toks) s32.append(reinterpret_cast<const char*>(&t), 4);
  ng::write_shard((tmp / "empty.bin").string(), std::span<const int32_t>());
  shard_seed(out / "shard" / "u16_b1t4", std::string("\x03\x02\x00\x00", 4), s16);
  shard_seed(out / "shard" / "u16_shuffle_resume", std::string("\x1b\x07\x01\x01", 4), s16);
  shard_seed(out / "shard" / "u32_world2", std::string("\x31\x0b\x00\x02", 4), s32);
  shard_seed(out / "shard" / "empty", std::string("\x00\x00\x00\x00", 4), slurp(tmp / "empty.bin"));

  // Model files: L=1, NH=1, C=4, V=5, Vp=8, maxT=4 (1,616 bytes in fp32).
  const ng::ModelDims d{1, 1, 4, 5, 8, 4, {}};
  struct Seed {
    const char* name;
    const char* strategy;
    const char* function;
    int version;
  };
  const Seed seeds[] = {{"pre_fp32", "pre", "layernorm", ng::kModelVersionFp32},
                        {"pre_bf16", "pre", "layernorm", ng::kModelVersionBf16},
                        {"peri_rmsnorm_fp32", "peri", "rmsnorm", ng::kModelVersionFp32},
                        {"geonorm_bf16", "geonorm", "layernorm", ng::kModelVersionBf16}};
  for (const Seed& s : seeds) {
    ng::NormConfig cfg;
    cfg.strategy = s.strategy;
    cfg.function = s.function;
    const ng::ModelPlan plan = ng::make_plan(cfg, d, "auto");
    const ng::ParamTable table(d, plan);
    std::vector<float> params(table.total());
    ng::init_params(table, plan.init, 1337, params.data());
    ng::write_model_file((out / "model_file" / s.name).string(), table, plan, params.data(), s.version);
  }
  // block options (docs/blocks.md): an nGPT model with RoPE, SwiGLU, no biases and an untied head,
  // whose header carries the block options and the norm section (extension version 2)
  {
    ng::ModelDims a = d;
    a.arch.rope = true;
    a.arch.swiglu = true;
    a.arch.hidden = 8;
    a.arch.bias = false;
    a.arch.tied = false;
    ng::NormConfig cfg;
    cfg.strategy = "ngpt";
    const ng::ModelPlan plan = ng::make_plan(cfg, a, "auto");
    const ng::ParamTable table(a, plan);
    std::vector<float> params(table.total());
    ng::init_params(table, plan.init, 1337, params.data());
    ng::write_model_file((out / "model_file" / "ngpt_llama_fp32").string(), table, plan, params.data());
  }
  fs::remove_all(tmp);
  return 0;
}
