// Validation loss: the mean loss over the first `batches` batches of the val stream, read from its
// start at every evaluation (DESIGN.md conventions).
#pragma once

#include "data/loader.hpp"
#include "model/gpt.hpp"

namespace ng {

template <class T>
double evaluate(GPT<T>& model, DataLoader& val, int batches);

}  // namespace ng
