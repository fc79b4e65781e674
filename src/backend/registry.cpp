#include "backend/registry.hpp"

#include <cstring>

#include "core/errors.hpp"

namespace ng {
namespace {

DeviceBackendFactory& registered() {
  static DeviceBackendFactory f;
  return f;
}

}  // namespace

void register_device_backend(const DeviceBackendFactory& factory) { registered() = factory; }

std::string resolve_device(const std::string& device) {
  const DeviceBackendFactory& f = registered();
  if (device == "cpu") return "cpu";
  const bool built = f.make != nullptr;
  const int count = built ? f.device_count() : 0;
  if (device == "auto") return count > 0 ? f.name : "cpu";
  NG_REQUIRE(device == "cuda", "device: unknown value '{}' (auto, cpu or cuda)", device);
  NG_REQUIRE(built, "device: 'cuda' requested, but this normgpt was built without CUDA (use cpu or auto)");
  NG_REQUIRE(count > 0, "device: 'cuda' requested, but no CUDA device is visible (no driver or GPU; use cpu or auto)");
  return "cuda";
}

std::string resolve_precision(const std::string& precision, const std::string& resolved_device) {
  if (precision != "auto") return precision;
  return resolved_device == "cuda" ? "bf16" : "fp32";
}

std::unique_ptr<Backend<float>> make_backend(const std::string& device, int local_rank) {
  if (resolve_device(device) == "cpu") return make_cpu_backend<float>();
  return registered().make(local_rank);
}

std::unique_ptr<Backend<bf16>> make_backend_bf16(const std::string& device, int local_rank) {
  if (resolve_device(device) == "cpu") return make_cpu_backend<bf16>();
  NG_REQUIRE(registered().make_bf16 != nullptr, "precision bf16 on {}: this build has no bf16 kernels for it",
             registered().name);
  return registered().make_bf16(local_rank);
}

std::unique_ptr<OpClock> make_op_clock(const std::string& resolved_device) {
  const DeviceBackendFactory& f = registered();
  if (resolved_device == f.name && f.make_op_clock) return f.make_op_clock();
  return std::make_unique<WallOpClock>();
}

std::unique_ptr<Communicator> make_gradient_communicator(const Memory& backend, Communicator& process) {
  if (backend.host_accessible() || process.world() == 1) return nullptr;
  const DeviceBackendFactory& f = registered();
  NG_REQUIRE(f.make_communicator != nullptr,
             "device {} with {} processes needs NCCL, and this normgpt was built without it (set NCCL_ROOT and "
             "rebuild, or run one process)", f.name, process.world());
  std::vector<char> id = process.is_root() ? f.unique_id() : std::vector<char>();
  size_t n = id.size();
  std::vector<char> size_bytes(sizeof n);
  std::memcpy(size_bytes.data(), &n, sizeof n);
  process.broadcast_bytes(size_bytes.data(), size_bytes.size());
  std::memcpy(&n, size_bytes.data(), sizeof n);
  id.resize(n);
  process.broadcast_bytes(id.data(), n);
  return f.make_communicator(process.rank(), process.world(), process.local_rank(), id);
}

}  // namespace ng
