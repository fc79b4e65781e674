// The post-optimizer-step hook of the hypersphere strategies (docs/blocks.md): nGPT renormalizes
// every constrained matrix to unit norm along its model-width axis, anGPT projects it into the unit
// ball. The plan lists the matrices (ModelPlan::constrained); this runs after every optimizer step
// and once after init. It reads only the plan, so every strategy and backend shares it.
#pragma once

#include "model/gpt.hpp"
#include "model/params.hpp"
#include "norm/plan.hpp"

namespace ng {

// Applies plan.constraint to each listed tensor of `params` (the table's layout). Rows (or columns)
// of zero norm, such as the padded vocabulary rows, are left at zero.
template <class T>
void apply_constraints(const ModelPlan& plan, const ParamTable& table, T* params);

// The same on a model's parameters in any backend's memory. Device memory makes a round trip to
// the host (only nGPT/anGPT have constraints; a device kernel is a later optimization).
template <class T>
void apply_constraints(GPT<T>& model);

// The largest violation over the constrained vectors: | ||w|| - 1 | under Normalize,
// max(0, ||w|| - 1) under UnitBall; 0 without a constraint. Zero vectors are skipped.
template <class T>
double constraint_violation(const ModelPlan& plan, const ParamTable& table, const T* params);

}  // namespace ng
