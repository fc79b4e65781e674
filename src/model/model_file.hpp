// llm.c model files (DESIGN.md, Files): 256 int32 header (magic 20240326, version 3 = fp32 or
// 5 = bf16, maxT, V, L, NH, C, Vp) then the 16 GPT-2 tensors in llm.c's order.
//
// normgpt's extension, in header slots llm.c does not read: a model whose strategy is not plain
// GPT-2 (pre + layernorm, no embed norm, final norm on), or whose block options are not GPT-2's
// (docs/blocks.md), records them there and appends its extra tensors after the 16 (whose shapes
// follow the block options). A plain GPT-2 model writes no extension, so the file is
// byte-compatible with llm.c both ways.
//   [8]  kExtensionMagic          [9]  extension version (2; version 1 files are GPT-2 blocks)
//   [10] norm function (0 layernorm, 1 rmsnorm, 2 dyt)
//   [11] embed norm on            [12] final norm on
//   [13] number of extra elements appended after the 16 tensors
//   [14] block options: bit 0 rope, bit 1 swiglu, bit 2 no linear biases, bits 3-4 qk_norm
//        (0 none, 1 head, 2 full), bit 5 untied head      [15] MLP hidden width H
//   [16..47] strategy name, ASCII, NUL-padded (128 bytes)
//   [48] RoPE theta, float32 bits
//   [56..255] the norm section the model was built with, JSON, NUL-padded (800 bytes; omitted
//        when longer): what a file alone needs to rebuild the plan (sample, eval)
#pragma once

#include <string>

#include "model/dims.hpp"
#include "model/params.hpp"
#include "norm/plan.hpp"

namespace ng {

constexpr int kModelMagic = 20240326;
constexpr int kModelVersionFp32 = 3;
constexpr int kModelVersionBf16 = 5;
constexpr int kExtensionMagic = 0x6e67706c;  // "ngpl"

struct ModelFileInfo {
  int version = 0;
  ModelDims dims;
  bool has_strategy = false;  // false: a plain GPT-2 file (e.g. llm.c's)
  std::string strategy;
  NormFunction function = NormFunction::LayerNorm;
  bool embed_norm = false;
  bool final_norm = true;
  size_t extra_elements = 0;
  std::string norm_json;  // empty: not recorded (llm.c files, older normgpt files)
};

// Reads and checks the header (magic, version, dims, file length). UserError naming the file.
ModelFileInfo read_model_info(const std::string& path);

// Loads the file's tensors into `params` (the table's layout). A file that records a strategy must
// match `plan` exactly; a plain GPT-2 file fills the 16 GPT-2 tensors and leaves the strategy's
// extra tensors as they are (their default init). Under rmsnorm the file's norm biases must be 0.
template <class T>
void load_model_file(const std::string& path, const ParamTable& table, const ModelPlan& plan, T* params);

// Writes params in llm.c's format (version 3 or 5), atomically (temp file, then rename).
template <class T>
void write_model_file(const std::string& path, const ParamTable& table, const ModelPlan& plan, const T* params,
                      int version = kModelVersionFp32);

// "pos rope, mlp swiglu (hidden 192), bias false, qk_norm head, tie_embeddings false": the block
// options, for logs and error messages.
std::string describe_blocks(const ModelDims& d);

// The norm section a file was built with: the recorded JSON, else what the header's strategy fields
// say (older normgpt files), else GPT-2's defaults (llm.c files). UserError for a bad record.
struct NormConfig;
NormConfig norm_config_of(const ModelFileInfo& info, const std::string& path);

// True when `plan` on `dims` is llm.c's GPT-2 (so no extension is written).
bool is_plain_gpt2(const ModelPlan& plan, const ModelDims& dims);

}  // namespace ng
