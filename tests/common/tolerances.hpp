// One tolerance table per dtype (DESIGN.md, style 7). Tests name a row, never a number.
#pragma once

namespace ng::test {

struct Tolerance {
  double fd_rel;        // analytic vs central finite differences, relative to the gradient's norm
  double ref_loss_abs;  // loss vs the PyTorch reference
  double ref_grad_rel;  // each gradient tensor vs PyTorch, relative to the tensor's norm
};

template <class T>
struct Tolerances;

template <>
struct Tolerances<double> {
  static constexpr Tolerance value{1e-6, 1e-9, 1e-8};
};

template <>
struct Tolerances<float> {
  // fp32 finite differences are too noisy to be useful; fp32 is checked against PyTorch instead.
  static constexpr Tolerance value{0, 1e-5, 1e-4};
};

}  // namespace ng::test
