// The backend interface: one virtual method per op of the contracts in ops/ (listed once, in
// backend/op_list.hpp), plus the memory its tensors live in (backend/memory.hpp). The model calls
// ops and allocates only through it, so the CUDA backend slots in behind the same plan-driven model
// code. The CPU backend (backend/cpu/) is the readable reference every other backend is tested
// against.
#pragma once

#include <memory>
#include <string>

#include "backend/memory.hpp"
#include "backend/op_list.hpp"
#include "ops/attention.hpp"
#include "ops/encoder.hpp"
#include "ops/geodesic.hpp"
#include "ops/lerp.hpp"
#include "ops/loss.hpp"
#include "ops/matmul.hpp"
#include "ops/norm.hpp"
#include "ops/optim.hpp"
#include "ops/pointwise.hpp"
#include "ops/rope.hpp"

namespace ng {

template <class T>
class Backend : public Memory {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // Elements (stat_t<T>) of attention's saved state and of its backward scratch
  // (ops/attention.hpp). The defaults are the CPU's materialized probabilities.
  virtual size_t attention_state_size(int B, int T_len, int C, int NH) const { return size_t(B) * NH * T_len * T_len; }
  virtual size_t attention_scratch_size(int B, int T_len, int C, int NH) const { return size_t(B) * NH * T_len * T_len; }

  // The ops: `virtual R name(const Args<T>& a) const = 0` for each line X(R, name, Args) of
  // backend/op_list.hpp.
#define NG_OP(R, name, Args) virtual R name(const Args<T>& a) const = 0;
  NG_BACKEND_OPS(NG_OP)
#undef NG_OP
};

template <class T>
std::unique_ptr<Backend<T>> make_cpu_backend();

}  // namespace ng
