// The backend interface: one virtual method per op of the contracts in ops/, plus the memory its
// tensors live in (backend/memory.hpp). The model calls ops and allocates only through it, so the
// CUDA backend slots in behind the same plan-driven model code. The CPU backend (backend/cpu/) is
// the readable reference every other backend is tested against.
#pragma once

#include <memory>
#include <string>

#include "backend/memory.hpp"
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

  virtual void encoder_forward(const EncoderForwardArgs<T>& a) const = 0;
  virtual void encoder_backward(const EncoderBackwardArgs<T>& a) const = 0;
  virtual void norm_forward(const NormForwardArgs<T>& a) const = 0;
  virtual void norm_backward(const NormBackwardArgs<T>& a) const = 0;
  virtual void matmul_forward(const MatmulForwardArgs<T>& a) const = 0;
  virtual void matmul_backward(const MatmulBackwardArgs<T>& a) const = 0;
  // Elements (stat_t<T>) of attention's saved state and of its backward scratch
  // (ops/attention.hpp). The defaults are the CPU's materialized probabilities.
  virtual size_t attention_state_size(int B, int T_len, int C, int NH) const { return size_t(B) * NH * T_len * T_len; }
  virtual size_t attention_scratch_size(int B, int T_len, int C, int NH) const { return size_t(B) * NH * T_len * T_len; }
  virtual void attention_forward(const AttentionForwardArgs<T>& a) const = 0;
  virtual void attention_backward(const AttentionBackwardArgs<T>& a) const = 0;
  virtual void gelu_forward(const GeluForwardArgs<T>& a) const = 0;
  virtual void gelu_backward(const GeluBackwardArgs<T>& a) const = 0;
  virtual void residual(const ResidualArgs<T>& a) const = 0;
  virtual void scale(const ScaleArgs<T>& a) const = 0;
  virtual void geodesic_forward(const GeodesicForwardArgs<T>& a) const = 0;
  virtual void geodesic_backward(const GeodesicBackwardArgs<T>& a) const = 0;
  virtual void crossentropy_forward(const CrossEntropyForwardArgs<T>& a) const = 0;
  virtual void crossentropy_backward(const CrossEntropyBackwardArgs<T>& a) const = 0;
  // wave 2 (modern blocks, nGPT, anGPT)
  virtual void rope(const RopeArgs<T>& a) const = 0;
  virtual void swiglu_forward(const SwigluForwardArgs<T>& a) const = 0;
  virtual void swiglu_backward(const SwigluBackwardArgs<T>& a) const = 0;
  virtual void scale_columns_forward(const ScaleColumnsForwardArgs<T>& a) const = 0;
  virtual void scale_columns_backward(const ScaleColumnsBackwardArgs<T>& a) const = 0;
  virtual void copy2d(const Copy2dArgs<T>& a) const = 0;
  virtual void lerp_forward(const LerpForwardArgs<T>& a) const = 0;
  virtual void lerp_backward(const LerpBackwardArgs<T>& a) const = 0;
  // optimizer (ops/optim.hpp)
  virtual void adamw_update(const AdamWArgs<T>& a) const = 0;
  virtual double sum_squares(const SumSquaresArgs<T>& a) const = 0;
};

template <class T>
std::unique_ptr<Backend<T>> make_cpu_backend();

}  // namespace ng
