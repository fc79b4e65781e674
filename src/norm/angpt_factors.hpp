// anGPT's activation factor (docs/blocks.md): the constant that brings the activation's output
// back to unit norm for a unit-norm pre-activation of width H (entries about N(0, 1/H)).
#pragma once

namespace ng {

// gelu: 1 / sqrt(H E[gelu(z)^2]); swiglu: 1 / sqrt(E[silu(g)^2]) (the hidden is silu(g) * u with an
// independent u); z, g ~ N(0, 1/H). The expectations are integrated numerically (Simpson's rule
// over +-12 standard deviations), so the factor is exact for this block rather than a quoted value.
double angpt_activation_factor(bool swiglu, int H);

}  // namespace ng
