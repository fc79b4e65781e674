// GPT-2's byte-level BPE, giving exactly GPT-2's token ids.
//
// Encoding: pre-tokenize (pretokenize.hpp), then encode each piece's bytes with BPE: start from one
// token per byte and repeatedly merge the adjacent pair with the lowest merge rank (its line in
// vocab.bpe) until no adjacent pair has a rank. Pieces recur constantly in real text, so results
// are cached per piece.
//
// Files: encoder.json maps token strings to ids; vocab.bpe lists the merges, best first. Both write
// bytes through GPT-2's byte-to-unicode table (printable bytes stand for themselves, the others are
// shifted to U+0100 and up), which we undo at load so that everything inside works on raw bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/tokenizer.hpp"

namespace ng {

class Gpt2Tokenizer final : public Tokenizer {
 public:
  // Loads DIR/encoder.json and DIR/vocab.bpe; UserError naming the file on anything malformed.
  explicit Gpt2Tokenizer(const std::string& vocab_dir);

  void encode_into(std::string_view text, std::vector<int32_t>& out) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  int vocab_size() const override { return static_cast<int>(token_bytes_.size()); }
  int32_t eot_id() const override { return eot_; }
  std::string name() const override { return "gpt2"; }

 private:
  struct Merge {
    int32_t rank;    // line number in vocab.bpe (0 = first merge = applied first)
    int32_t merged;  // id of the concatenation
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  }
  void load_encoder(const std::string& path);
  void load_merges(const std::string& path);
  void bpe(std::string_view piece, std::vector<int32_t>& out) const;

  std::vector<std::string> token_bytes_;                  // id -> raw bytes
  std::unordered_map<std::string, int32_t> bytes_to_id_;  // raw bytes -> id
  int32_t byte_id_[256] = {};                             // single-byte tokens
  std::unordered_map<uint64_t, Merge> merges_;            // (left id, right id) -> merge
  int32_t eot_ = -1;

  // Piece -> ids. Cleared when it grows past kMaxCacheEntries so memory stays bounded on huge,
  // diverse corpora; English text has far fewer distinct pieces than that.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static constexpr size_t kMaxCacheEntries = 1 << 20;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace ng
