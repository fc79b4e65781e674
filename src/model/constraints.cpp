#include "model/constraints.hpp"

#include <algorithm>
#include <cmath>

#include "core/errors.hpp"

namespace ng {
namespace {

// Calls f(first element, stride, count) for every vector along the model-width axis of tensor t:
// the rows of each (rows, cols) matrix slice, or its columns.
template <class F>
void for_each_vector(const ParamTensor& t, int L, bool columns, F&& f) {
  const size_t n_mat = t.per_layer ? size_t(L) : 1;
  const size_t rows = size_t(t.shape[t.per_layer ? 1 : 0]), cols = size_t(t.shape[t.per_layer ? 2 : 1]);
  for (size_t m = 0; m < n_mat; ++m) {
    const size_t base = t.offset + m * rows * cols;
    if (columns) {
      for (size_t c = 0; c < cols; ++c) f(base + c, cols, rows);
    } else {
      for (size_t r = 0; r < rows; ++r) f(base + r * cols, size_t(1), cols);
    }
  }
}

template <class T>
double norm_of(const T* p, size_t first, size_t stride, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += double(p[first + i * stride]) * double(p[first + i * stride]);
  return std::sqrt(s);
}

}  // namespace

template <class T>
void apply_constraints(const ModelPlan& plan, const ParamTable& table, T* params) {
  if (plan.constraint == ConstraintMode::None) return;
  const bool ball = plan.constraint == ConstraintMode::UnitBall;
  for (const MatrixConstraint& m : plan.constrained) {
    const ParamTensor& t = table.get(m.tensor);
    if (t.numel == 0) continue;
    for_each_vector(t, table.dims().L, m.columns, [&](size_t first, size_t stride, size_t n) {
      const double norm = norm_of(params, first, stride, n);
      if (norm == 0 || (ball && norm <= 1)) return;
      const T s = T(1.0 / norm);
      for (size_t i = 0; i < n; ++i) params[first + i * stride] *= s;
    });
  }
}

template <class T>
double constraint_violation(const ModelPlan& plan, const ParamTable& table, const T* params) {
  if (plan.constraint == ConstraintMode::None) return 0;
  double worst = 0;
  for (const MatrixConstraint& m : plan.constrained) {
    const ParamTensor& t = table.get(m.tensor);
    if (t.numel == 0) continue;
    for_each_vector(t, table.dims().L, m.columns, [&](size_t first, size_t stride, size_t n) {
      const double norm = norm_of(params, first, stride, n);
      if (norm == 0) return;
      const double v = plan.constraint == ConstraintMode::Normalize ? std::abs(norm - 1) : std::max(0.0, norm - 1);
      worst = std::max(worst, v);
    });
  }
  return worst;
}

template <class T>
void apply_constraints(GPT<T>& model) {
  static_assert(!is_mixed_precision<T>, "mixed precision constrains the optimizer's master weights (train/step.cpp)");
  const ModelPlan& plan = model.plan();
  if (!plan.has_constraints()) return;
  if (model.backend().host_accessible()) {
    apply_constraints(plan, model.table(), model.params.data());
    return;
  }
  std::vector<T> host = model.params.to_host();
  apply_constraints(plan, model.table(), host.data());
  model.params.from_host(host);
}

template void apply_constraints<float>(GPT<float>&);
template void apply_constraints<double>(GPT<double>&);
template void apply_constraints<float>(const ModelPlan&, const ParamTable&, float*);
template void apply_constraints<double>(const ModelPlan&, const ParamTable&, double*);
template double constraint_violation<float>(const ModelPlan&, const ParamTable&, const float*);
template double constraint_violation<double>(const ModelPlan&, const ParamTable&, const double*);

}  // namespace ng
