// Model dimensions, shared by the parameter table, activations, model files and FLOP counts.
#pragma once

#include <cstdint>

namespace ng {

struct ModelDims {
  int L = 0;      // blocks
  int NH = 0;     // heads
  int C = 0;      // width d_model
  int V = 0;      // vocabulary (the loss is over the first V logits)
  int Vp = 0;     // padded vocabulary: rows of the token embedding / tied head
  int maxT = 0;   // context: rows of the position embedding
  int hs() const { return C / NH; }
};

}  // namespace ng
