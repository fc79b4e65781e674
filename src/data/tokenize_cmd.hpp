// `normgpt tokenize`: text files -> train/val token shards.
//
// Each input FILE is one document. The token stream is, for every input in the order given, the
// end-of-text token followed by the document's tokens (llm.c's preprocessors also put it in front).
// The last floor(val_fraction * N) tokens of the N-token stream are the validation split (cut at
// that token, not at a document boundary, so one big input file still gets a val split); the rest
// is the training split. Each split is written as uint16 shards of at most shard_tokens tokens:
// DIR/train_000000.bin, train_000001.bin, ... and DIR/val_000000.bin, ... (no val files when
// val_fraction is 0). Shards with this naming left in DIR by an earlier, longer run are removed so
// that the glob DIR/train_*.bin always means this run's output.
//
// Inputs are read whole and the stream is held in memory (2 bytes per token) until it is written.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ng {

struct TokenizeOptions {
  std::vector<std::string> inputs;
  std::string output_dir;
  std::string tokenizer = "gpt2";  // "gpt2" | "byte"
  double val_fraction = 0.05;      // in [0, 1)
  uint64_t shard_tokens = 100'000'000;
  std::string vocab_dir;  // GPT-2 vocabulary; empty = default_gpt2_vocab_dir()
};

struct TokenizeSummary {
  uint64_t input_bytes = 0;
  uint64_t train_tokens = 0;
  uint64_t val_tokens = 0;
  std::vector<std::string> train_files;
  std::vector<std::string> val_files;
};

// Runs the command, printing progress for big inputs and a final summary line to stdout.
// UserError for: no inputs, a missing input, an unknown tokenizer, val_fraction outside [0, 1),
// shard_tokens outside [1, 2^31), inputs with no text at all, or a val split that rounds to empty.
TokenizeSummary run_tokenize(const TokenizeOptions& opts);

// Where to end a chunk of `text` that starts at `from` and should be about `target` bytes long, so
// that encoding chunks one by one gives exactly the tokens of encoding the whole text: the first
// "letter, space, letter" (ASCII) at or after from + target, cut before the space. GPT-2's
// pre-tokenizer always splits there and never looks across it. text.size() if there is none.
size_t find_chunk_end(std::string_view text, size_t from, size_t target);

}  // namespace ng
