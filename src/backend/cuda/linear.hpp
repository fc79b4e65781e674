// CUDA linear layer (ops/matmul.hpp): the same contract and argument structs as ng::cpu, every
// pointer a DEVICE pointer, work queued on the default stream (callers sync by copying back).
// float: the products go through cuBLAS in full fp32 (default math mode: no TF32), which is bitwise
// reproducible run to run on one GPU model; the bias gradient uses a fixed-order column sum.
// bf16: cublasGemmEx, bf16 operands on tensor cores with fp32 accumulation; out and dinp stored in
// bf16 (rounded once, after the bias or the old dinp is added in fp32), dweight and dbias in fp32
// (grad_t), accumulated in fp32.
#pragma once

#include "ops/matmul.hpp"

namespace ng::cuda {

// out = inp . weight^T + bias   (out overwritten)
template <class T>
void matmul_forward(const MatmulForwardArgs<T>& a);

// dinp = (accumulate ? dinp : 0) + dout . weight   (skipped when dinp is null)
// dweight += dout^T . inp;  dbias += sum_n dout[n, :]   (skipped when dbias is null)
template <class T>
void matmul_backward(const MatmulBackwardArgs<T>& a);

}  // namespace ng::cuda
