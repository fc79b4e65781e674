// The backend ops, listed once. Each line is X(return type, name, argument struct template): the
// op `name` takes `const Args<T>&` (its contract is in ops/) and returns `R`. Backend<T> declares
// one pure virtual method per line, and every class that forwards ops (the CPU and CUDA backends,
// the timing decorator, the guarded test backend) expands this list instead of keeping its own
// copy, so a new op is one line here plus its kernels.
//
// Usage: define a macro NG_OP(R, name, Args), expand NG_BACKEND_OPS(NG_OP), then #undef NG_OP.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

#define NG_BACKEND_OPS(X)                                   \
  X(void, encoder_forward, EncoderForwardArgs)              \
  X(void, encoder_backward, EncoderBackwardArgs)            \
  X(void, norm_forward, NormForwardArgs)                    \
  X(void, norm_backward, NormBackwardArgs)                  \
  X(void, matmul_forward, MatmulForwardArgs)                \
  X(void, matmul_backward, MatmulBackwardArgs)              \
  X(void, attention_forward, AttentionForwardArgs)          \
  X(void, attention_backward, AttentionBackwardArgs)        \
  X(void, gelu_forward, GeluForwardArgs)                    \
  X(void, gelu_backward, GeluBackwardArgs)                  \
  X(void, residual, ResidualArgs)                           \
  X(void, scale, ScaleArgs)                                 \
  X(void, geodesic_forward, GeodesicForwardArgs)            \
  X(void, geodesic_backward, GeodesicBackwardArgs)          \
  X(void, crossentropy_forward, CrossEntropyForwardArgs)    \
  X(void, crossentropy_backward, CrossEntropyBackwardArgs)  \
  X(void, rope, RopeArgs)                                   \
  X(void, swiglu_forward, SwigluForwardArgs)                \
  X(void, swiglu_backward, SwigluBackwardArgs)              \
  X(void, scale_columns_forward, ScaleColumnsForwardArgs)   \
  X(void, scale_columns_backward, ScaleColumnsBackwardArgs) \
  X(void, copy2d, Copy2dArgs)                               \
  X(void, lerp_forward, LerpForwardArgs)                    \
  X(void, lerp_backward, LerpBackwardArgs)                  \
  X(void, adamw_update, AdamWArgs)                          \
  X(double, sum_squares, SumSquaresArgs)

namespace ng {

// The ops by number, in list order (for tables indexed by op, such as the per-op timing).
enum class OpId : int {
#define NG_OP(R, name, Args) name,
  NG_BACKEND_OPS(NG_OP)
#undef NG_OP
};

inline constexpr std::array kOpNames = {
#define NG_OP(R, name, Args) std::string_view(#name),
    NG_BACKEND_OPS(NG_OP)
#undef NG_OP
};

inline constexpr size_t kOpCount = kOpNames.size();

}  // namespace ng
