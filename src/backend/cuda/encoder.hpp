// CUDA token + position embedding (ops/encoder.hpp): the same contract and argument structs as
// ng::cpu, every pointer (tokens included) a DEVICE pointer, default stream.
#pragma once

#include "ops/encoder.hpp"

namespace ng::cuda {

// out[b,t,:] = wte[tokens[b,t], :] + wpe[t, :]   (out overwritten; tokens are not range-checked)
template <class T>
void encoder_forward(const EncoderForwardArgs<T>& a);

// dwte[tokens[b,t]] += dout[b,t]; dwpe[t] += dout[b,t], deterministically and in the CPU's order
// (positions ascending), without atomics. To know which positions share a token, the launcher
// copies the B*T tokens to the host and groups them there: this blocks the host until the device
// has caught up (a sync point per call) and uses a grow-only device scratch buffer that is kept
// for the process, so calls must not run concurrently from several host threads.
template <class T>
void encoder_backward(const EncoderBackwardArgs<T>& a);

}  // namespace ng::cuda
