#include "model/model_file.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/binary_io.hpp"
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "core/errors.hpp"

namespace ng {
namespace {

constexpr int kHeaderInts = 256;
constexpr size_t kHeaderBytes = kHeaderInts * sizeof(int32_t);
constexpr int kNameSlot = 16, kNameBytes = 128;
constexpr int kNormJsonSlot = 56, kNormJsonBytes = (kHeaderInts - kNormJsonSlot) * 4;

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return uint16_t(u >> 16);
}

float from_bf16(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Exact, in 128 bits: dims up to 2^31 - 1 give counts past 2^64, and a count that wrapped in
// size_t could match a short file (found by fuzz/fuzz_model_file.cpp).
using u128 = unsigned __int128;
u128 gpt2_elements(const ModelDims& d) {
  // H in 128 bits too: a hostile header's C makes 4C overflow an int
  const u128 C = u128(d.C), L = u128(d.L), H = d.arch.hidden > 0 ? u128(d.arch.hidden) : 4 * C;
  const u128 F = d.arch.swiglu ? 2 * H : H, b = d.arch.bias ? 1 : 0;
  const u128 per_layer = 4 * C + 3 * C * C + C * C + F * C + C * H + b * (3 * C + C + F + C);
  return u128(d.Vp) * C + u128(d.pos_rows()) * C + L * per_layer + 2 * C;
}

int32_t arch_flags(const BlockArch& a) {
  return (a.rope ? 1 : 0) | (a.swiglu ? 2 : 0) | (a.bias ? 0 : 4) | (int32_t(a.qk_norm) << 3) | (a.tied ? 0 : 32);
}

bool same_arch(const ModelDims& a, const ModelDims& b) {
  return arch_flags(a.arch) == arch_flags(b.arch) && a.H() == b.H() &&
         (!a.arch.rope || float(a.arch.rope_theta) == float(b.arch.rope_theta));
}

}  // namespace

std::string describe_blocks(const ModelDims& d) {
  const BlockArch& a = d.arch;
  return fmt::format("pos {}, mlp {} (hidden {}), bias {}, qk_norm {}, tie_embeddings {}", a.rope ? "rope" : "learned",
                     a.swiglu ? "swiglu" : "gelu", d.H(), a.bias, qk_norm_name(a.qk_norm), a.tied);
}

NormConfig norm_config_of(const ModelFileInfo& info, const std::string& path) {
  NormConfig nc;
  if (!info.norm_json.empty()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(info.norm_json);
    } catch (const nlohmann::json::exception&) {
      fail_user("{}: the norm section recorded in the header is not valid JSON", path);
    }
    return config_from_json(nlohmann::json{{"norm", j}}, path + " (recorded norm section)").norm;
  }
  if (info.has_strategy) {
    nc.strategy = info.strategy;
    // dyt is a strategy that sets its own norm function; norm.function only names layernorm/rmsnorm
    nc.function = info.function == NormFunction::DyT ? "layernorm" : norm_function_name(info.function);
    nc.embed_norm = info.embed_norm;
    nc.final_norm = info.final_norm;
  }
  return nc;
}

bool is_plain_gpt2(const ModelPlan& plan, const ModelDims& dims) {
  return plan.strategy == "pre" && plan.function == NormFunction::LayerNorm && !plan.embed_norm.active() &&
         plan.final_norm.active() && plan.extra_norms.empty() && plan.extra_vectors.empty() &&
         dims.arch.is_gpt2(dims.C);
}

ModelFileInfo read_model_info(const std::string& path) {
  const uint64_t size = file_size_or_fail(path);
  NG_REQUIRE(size >= kHeaderBytes, "{}: too short for a model file ({} bytes)", path, size);
  int32_t h[kHeaderInts];
  read_exact(path, 0, h, kHeaderBytes, "model header");
  NG_REQUIRE(h[0] == kModelMagic, "{}: bad magic {} (expected {} for an llm.c model file)", path, h[0], kModelMagic);
  NG_REQUIRE(h[1] == kModelVersionFp32 || h[1] == kModelVersionBf16,
             "{}: unsupported model file version {} (expected 3 = fp32 or 5 = bf16)", path, h[1]);
  ModelFileInfo info;
  info.version = h[1];
  info.dims = {h[4], h[5], h[6], h[3], h[7], h[2], {}};
  const ModelDims& d = info.dims;
  NG_REQUIRE(d.L > 0 && d.NH > 0 && d.C > 0 && d.V > 0 && d.maxT > 0 && d.Vp >= d.V && d.C % d.NH == 0,
             "{}: header has invalid dimensions (L {}, NH {}, C {}, V {}, Vp {}, maxT {})", path, d.L, d.NH, d.C,
             d.V, d.Vp, d.maxT);
  if (h[8] == kExtensionMagic) {
    NG_REQUIRE(h[9] == 1 || h[9] == 2, "{}: unsupported normgpt extension version {}", path, h[9]);
    info.has_strategy = true;
    NG_REQUIRE(h[10] >= 0 && h[10] <= 2, "{}: unknown norm function code {} in the header", path, h[10]);
    info.function = h[10] == 2 ? NormFunction::DyT : h[10] == 1 ? NormFunction::RMSNorm : NormFunction::LayerNorm;
    info.embed_norm = h[11] != 0;
    info.final_norm = h[12] != 0;
    info.extra_elements = size_t(uint32_t(h[13]));
    char name[kNameBytes + 1] = {};
    std::memcpy(name, &h[kNameSlot], kNameBytes);
    info.strategy = name;
    if (h[9] == 2) {
      const int32_t f = h[14];
      NG_REQUIRE(f >= 0 && f < 64 && (f >> 3 & 3) != 3, "{}: unknown block options code {} in the header", path, f);
      NG_REQUIRE(h[15] > 0, "{}: header has an invalid MLP hidden width {}", path, h[15]);
      BlockArch& a = info.dims.arch;
      a.rope = f & 1;
      a.swiglu = f & 2;
      a.bias = !(f & 4);
      a.qk_norm = QkNorm((f >> 3) & 3);
      a.tied = !(f & 32);
      a.hidden = h[15];
      float theta;
      std::memcpy(&theta, &h[48], 4);
      NG_REQUIRE(!a.rope || (std::isfinite(theta) && theta > 0), "{}: header has an invalid RoPE theta", path);
      a.rope_theta = a.rope ? theta : 10000.0;
      char js[kNormJsonBytes + 1] = {};
      std::memcpy(js, &h[kNormJsonSlot], kNormJsonBytes);
      info.norm_json = js;
    }
  }
  const size_t bytes = info.version == kModelVersionFp32 ? 4 : 2;
  const u128 expect = kHeaderBytes + (gpt2_elements(d) + info.extra_elements) * bytes;
  NG_REQUIRE(u128(size) == expect, "{}: file is {} bytes but its header implies {} (truncated or not a model file?)",
             path, size, expect);
  return info;
}

template <class T>
void load_model_file(const std::string& path, const ParamTable& table, const ModelPlan& plan, T* params) {
  const ModelFileInfo info = read_model_info(path);
  const ModelDims& d = table.dims();
  const ModelDims& f = info.dims;
  NG_REQUIRE(f.L == d.L && f.NH == d.NH && f.C == d.C && f.V == d.V && f.Vp == d.Vp && f.maxT == d.maxT,
             "{}: model file dimensions (L {}, NH {}, C {}, V {}, Vp {}, maxT {}) differ from the config's "
             "(L {}, NH {}, C {}, V {}, Vp {}, maxT {})",
             path, f.L, f.NH, f.C, f.V, f.Vp, f.maxT, d.L, d.NH, d.C, d.V, d.Vp, d.maxT);
  NG_REQUIRE(same_arch(f, d), "{}: model file's block options ({}) differ from the config's ({})", path,
             describe_blocks(f), describe_blocks(d));
  size_t n_load = table.gpt2_total();
  if (info.has_strategy) {
    NG_REQUIRE(info.strategy == plan.strategy, "{}: checkpoint was trained with norm.strategy '{}', config asks for '{}'",
               path, info.strategy, plan.strategy);
    NG_REQUIRE(info.function == plan.function, "{}: checkpoint uses norm.function '{}', config asks for '{}'", path,
               norm_function_name(info.function), norm_function_name(plan.function));
    NG_REQUIRE(info.embed_norm == plan.embed_norm.active() && info.final_norm == plan.final_norm.active(),
               "{}: checkpoint's norm.embed_norm/final_norm ({}/{}) differ from the config's ({}/{})", path,
               info.embed_norm, info.final_norm, plan.embed_norm.active(), plan.final_norm.active());
    NG_REQUIRE(info.extra_elements == table.total() - table.gpt2_total(),
               "{}: checkpoint has {} extra parameters, the config's model {}", path, info.extra_elements,
               table.total() - table.gpt2_total());
    n_load = table.total();
  }
  const size_t bytes = info.version == kModelVersionFp32 ? 4 : 2;
  std::vector<char> raw(n_load * bytes);
  read_exact(path, kHeaderBytes, raw.data(), raw.size(), "parameters");
  for (size_t i = 0; i < n_load; ++i) {
    float v;
    if (bytes == 4) {
      std::memcpy(&v, raw.data() + 4 * i, 4);
    } else {
      uint16_t b;
      std::memcpy(&b, raw.data() + 2 * i, 2);
      v = from_bf16(b);
    }
    params[i] = T(v);
  }
  if (plan.function == NormFunction::RMSNorm) {
    for (const auto& t : table.tensors()) {
      if (t.kind != ParamKind::Bias || t.name.rfind("ln", 0) != 0 || t.offset >= n_load) continue;
      for (size_t k = 0; k < t.numel; ++k)
        NG_REQUIRE(params[t.offset + k] == T(0),
                   "{}: norm bias '{}' is non-zero, but norm.function rmsnorm has no bias", path, t.name);
    }
  }
}

template <class T>
void write_model_file(const std::string& path, const ParamTable& table, const ModelPlan& plan, const T* params,
                      int version) {
  NG_CHECK(version == kModelVersionFp32 || version == kModelVersionBf16, "bad model version {}", version);
  const ModelDims& d = table.dims();
  int32_t h[kHeaderInts] = {};
  h[0] = kModelMagic;
  h[1] = version;
  h[2] = d.maxT;
  h[3] = d.V;
  h[4] = d.L;
  h[5] = d.NH;
  h[6] = d.C;
  h[7] = d.Vp;
  size_t n = table.gpt2_total();
  if (!is_plain_gpt2(plan, d)) {
    h[8] = kExtensionMagic;
    h[9] = 2;
    h[14] = arch_flags(d.arch);
    h[15] = d.H();
    const float theta = float(d.arch.rope_theta);
    std::memcpy(&h[48], &theta, 4);
    if (plan.norm_json.size() < size_t(kNormJsonBytes))
      std::memcpy(&h[kNormJsonSlot], plan.norm_json.data(), plan.norm_json.size());
    h[10] = plan.function == NormFunction::DyT ? 2 : plan.function == NormFunction::RMSNorm ? 1 : 0;
    h[11] = plan.embed_norm.active();
    h[12] = plan.final_norm.active();
    h[13] = int32_t(table.total() - table.gpt2_total());
    NG_CHECK(plan.strategy.size() < size_t(kNameBytes), "strategy name too long");
    std::memcpy(&h[kNameSlot], plan.strategy.data(), plan.strategy.size());
    n = table.total();
  }
  std::vector<char> raw(n * (version == kModelVersionFp32 ? 4 : 2));
  for (size_t i = 0; i < n; ++i) {
    const float v = float(params[i]);
    if (version == kModelVersionFp32) {
      std::memcpy(raw.data() + 4 * i, &v, 4);
    } else {
      const uint16_t b = to_bf16(v);
      std::memcpy(raw.data() + 2 * i, &b, 2);
    }
  }
  write_file_atomic(path, {{h, kHeaderBytes}, {raw.data(), raw.size()}});
}

template void load_model_file<float>(const std::string&, const ParamTable&, const ModelPlan&, float*);
template void load_model_file<double>(const std::string&, const ParamTable&, const ModelPlan&, double*);
template void write_model_file<float>(const std::string&, const ParamTable&, const ModelPlan&, const float*, int);
template void write_model_file<double>(const std::string&, const ParamTable&, const ModelPlan&, const double*, int);

}  // namespace ng
