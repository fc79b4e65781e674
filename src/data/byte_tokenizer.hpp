// The byte tokenizer: every byte is its own token (ids 0..255), end-of-text is 256. Needs no files
// and encodes any input, so tiny models and tests can train on raw text.
#pragma once

#include "data/tokenizer.hpp"

namespace ng {

class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int32_t kEot = 256;

  void encode_into(std::string_view text, std::vector<int32_t>& out) const override;
  // End-of-text decodes as "<|endoftext|>", like GPT-2's, so samples read the same with both.
  std::string decode(std::span<const int32_t> ids) const override;
  int vocab_size() const override { return 257; }
  int32_t eot_id() const override { return kEot; }
  std::string name() const override { return "byte"; }
};

}  // namespace ng
