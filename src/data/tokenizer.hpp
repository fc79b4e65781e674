// Tokenizers: text <-> token ids. Two are built in:
//   "byte": ids 0..255 are the bytes of the text, 256 is end-of-text; vocab_size 257.
//   "gpt2": GPT-2's byte-level BPE with exactly GPT-2's ids (encoder.json + vocab.bpe); vocab_size
//           50257, end-of-text 50256 ("<|endoftext|>").
// encode() treats its input as plain text: "<|endoftext|>" written in the text is encoded as the
// characters it is made of, never as the special id; documents are separated by the caller
// (tokenize_cmd inserts eot_id() between documents). Implementations may cache, so one tokenizer
// object must not be used from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ng {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Appends the ids of `text` to `out` (the workhorse; encode() wraps it).
  virtual void encode_into(std::string_view text, std::vector<int32_t>& out) const = 0;
  // Concatenated bytes of the tokens; ids outside [0, vocab_size) are a UserError. The bytes need
  // not be valid UTF-8 (a sampled sequence may stop in the middle of a character).
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  virtual int vocab_size() const = 0;
  virtual int32_t eot_id() const = 0;
  virtual std::string name() const = 0;

  std::vector<int32_t> encode(std::string_view text) const {
    std::vector<int32_t> out;
    encode_into(text, out);
    return out;
  }
};

// "byte" or "gpt2" (anything else is a UserError listing both). For "gpt2", `vocab_dir` holds
// encoder.json and vocab.bpe; empty means default_gpt2_vocab_dir().
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& name, const std::string& vocab_dir = "");

// The tokenizer a model's vocabulary implies, for decoding samples: 257 -> "byte", 50257 -> "gpt2";
// UserError for other sizes.
std::string tokenizer_name_for_vocab(int vocab_size);

// Where the GPT-2 vocabulary is looked for: $NORMGPT_DATA_DIR/gpt2 when that variable is set, else
// <source dir>/data/gpt2 (where scripts/setup.sh puts it).
std::string default_gpt2_vocab_dir();

}  // namespace ng
