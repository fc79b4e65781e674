// One check macro family for CUDA and cuBLAS calls (DESIGN.md, style 5): file, line and the call.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "core/errors_plain.hpp"

#define NG_CUDA(call)                                                                                         \
  do {                                                                                                        \
    cudaError_t err_ = (call);                                                                                \
    if (err_ != cudaSuccess)                                                                                  \
      ::ng::throw_internal(__FILE__, __LINE__, std::string(#call) + ": " + cudaGetErrorString(err_));         \
  } while (0)

#define NG_CUBLAS(call)                                                                                       \
  do {                                                                                                        \
    cublasStatus_t st_ = (call);                                                                              \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                         \
      ::ng::throw_internal(__FILE__, __LINE__, std::string(#call) + ": cuBLAS status " + std::to_string(int(st_))); \
  } while (0)

// Kernel launches: check the launch itself (bad configuration) right away.
#define NG_CUDA_LAUNCHED() NG_CUDA(cudaGetLastError())
