// Model dimensions and block architecture, shared by the parameter table, activations, model files
// and FLOP counts.
#pragma once

#include <cstdint>

namespace ng {

enum class QkNorm { None, Head, Full };

// The model.qk_norm value of each (config, logs, messages).
inline const char* qk_norm_name(QkNorm q) { return q == QkNorm::Head ? "head" : q == QkNorm::Full ? "full" : "none"; }

// The block options of docs/blocks.md (model.pos, model.mlp, model.bias, model.qk_norm,
// model.tie_embeddings). The defaults are llm.c's GPT-2.
struct BlockArch {
  bool rope = false;         // model.pos rope: no position table, q and k rotated
  double rope_theta = 10000.0;
  bool swiglu = false;       // model.mlp swiglu
  int hidden = 0;            // H; 0 = 4C (ModelDims::H())
  bool bias = true;          // linear-map biases
  QkNorm qk_norm = QkNorm::None;
  bool tied = true;          // logits = h . wte^T; false: a separate lmheadw

  bool is_gpt2(int C) const {
    return !rope && !swiglu && (hidden == 0 || hidden == 4 * C) && bias && qk_norm == QkNorm::None && tied;
  }
};

struct ModelDims {
  int L = 0;      // blocks
  int NH = 0;     // heads
  int C = 0;      // width d_model
  int V = 0;      // vocabulary (the loss is over the first V logits)
  int Vp = 0;     // padded vocabulary: rows of the token embedding / tied head
  int maxT = 0;   // context: rows of the position embedding (0 of them are stored under rope)
  BlockArch arch;
  int hs() const { return C / NH; }
  int H() const { return arch.hidden > 0 ? arch.hidden : 4 * C; }
  int fc_rows() const { return arch.swiglu ? 2 * H() : H(); }  // rows of fcw: [gate | up] under swiglu
  int pos_rows() const { return arch.rope ? 0 : maxT; }        // rows of wpe
};

// Default hidden width for model.mlp_hidden 0: 4C for gelu, 8C/3 rounded up to a multiple of 32
// for swiglu (about the same parameter count as the gelu MLP).
inline int default_hidden(int C, bool swiglu) { return swiglu ? ((8 * C + 2) / 3 + 31) / 32 * 32 : 4 * C; }

}  // namespace ng
