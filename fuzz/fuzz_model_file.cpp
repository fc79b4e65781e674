// libFuzzer target: llm.c model files (src/model/model_file.hpp).
//
// Input: the bytes of a model file. read_model_info runs on it; when it accepts the header, the
// harness builds the ParamTable and plan the header describes (block options, strategy and the
// recorded norm section from the normgpt extension, plain GPT-2 otherwise) and runs load_model_file, then writes the loaded
// parameters back with write_model_file and loads them again.
// Expected: success or ng::UserError. Oracles beyond the sanitizers: any other exception; a
// header accepted although its dimensions, computed without overflow, do not match the file's
// length; a write/load round trip that changes a value.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "core/errors.hpp"
#include "fuzz_util.hpp"
#include "model/model_file.hpp"
#include "model/params.hpp"
#include "norm/plan.hpp"

namespace {

using u128 = unsigned __int128;
constexpr u128 kMaxElements = u128(1) << 24;  // the harness's own cap, checked before allocating

// Elements of the 16 GPT-2 tensors under the header's block options (docs/blocks.md), exactly (no
// overflow: every dim < 2^31), written out tensor by tensor as the oracle.
u128 gpt2_elements(const ng::ModelDims& d) {
  const ng::BlockArch& a = d.arch;
  const u128 C = u128(d.C), L = u128(d.L), H = a.hidden > 0 ? u128(a.hidden) : 4 * C;
  const u128 F = a.swiglu ? 2 * H : H, bias = a.bias ? 1 : 0;
  const u128 wte = u128(d.Vp) * C, wpe = a.rope ? 0 : u128(d.maxT) * C;
  const u128 norms = 4 * C;                                   // ln1w, ln1b, ln2w, ln2b
  const u128 attn = 3 * C * C + bias * 3 * C + C * C + bias * C;  // qkvw, qkvb, attprojw, attprojb
  const u128 mlp = F * C + bias * F + C * H + bias * C;       // fcw, fcb, fcprojw, fcprojb
  return wte + wpe + L * (norms + attn + mlp) + 2 * C;
}

template <class T>
bool same_value(T a, T b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <class T>
void load_and_round_trip(const std::string& path, const ng::ModelFileInfo& info, const ng::ParamTable& table,
                         const ng::ModelPlan& plan) {
  std::vector<T> params(table.total(), T(-7));
  ng::load_model_file<T>(path, table, plan, params.data());
  const std::string again = path + ".again";
  ng::write_model_file<T>(again, table, plan, params.data(), info.version);
  std::vector<T> reloaded(table.total(), T(-7));
  ng::load_model_file<T>(again, table, plan, reloaded.data());
  ng_fuzz::remove_file(again);
  for (size_t i = 0; i < params.size(); ++i)
    if (!same_value(params[i], reloaded[i])) ng_fuzz::finding("model file write/load round trip changed a value");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ng_fuzz::temp_dir() + "/model.bin";
  ng_fuzz::write_file(path, std::string_view(reinterpret_cast<const char*>(data), size));

  ng::ModelFileInfo info;
  try {
    info = ng::read_model_info(path);
  } catch (const ng::UserError& e) {
    ng_fuzz::rejected(e);
    return 0;
  }

  // Accepted: the header must describe exactly this many bytes, computed without overflow.
  const ng::ModelDims& d = info.dims;
  const u128 elements = gpt2_elements(d) + u128(info.extra_elements);
  const u128 expect = u128(1024) + elements * u128(info.version == ng::kModelVersionFp32 ? 4 : 2);
  if (expect != u128(size)) ng_fuzz::finding("read_model_info accepted a header whose size does not match the file");
  if (elements > kMaxElements) return 0;

  try {
    // the plan as sample/eval build it (train/model_setup.cpp: model_spec_from_file)
    const ng::ModelPlan plan = ng::make_plan(ng::norm_config_of(info, path), d, "auto");
    const ng::ParamTable table(d, plan);
    if (table.gpt2_total() != size_t(gpt2_elements(d))) ng_fuzz::finding("ParamTable disagrees with the header");
    if (size > 0 && (data[size - 1] & 1)) load_and_round_trip<double>(path, info, table, plan);
    else load_and_round_trip<float>(path, info, table, plan);
  } catch (const ng::UserError& e) {
    ng_fuzz::rejected(e);
  }
  return 0;
}
