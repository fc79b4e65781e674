#include "data/tokenizer.hpp"

#include <cstdlib>

#include "core/errors.hpp"
#include "data/byte_tokenizer.hpp"
#include "data/gpt2_tokenizer.hpp"

namespace ng {

std::string default_gpt2_vocab_dir() {
  if (const char* env = std::getenv("NORMGPT_DATA_DIR"); env != nullptr && *env != '\0')
    return std::string(env) + "/gpt2";
  return std::string(NORMGPT_SOURCE_DIR) + "/data/gpt2";
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& name, const std::string& vocab_dir) {
  if (name == "byte") return std::make_unique<ByteTokenizer>();
  if (name == "gpt2") return std::make_unique<Gpt2Tokenizer>(vocab_dir.empty() ? default_gpt2_vocab_dir() : vocab_dir);
  fail_user("unknown tokenizer \"{}\" (expected \"gpt2\" or \"byte\")", name);
}

std::string tokenizer_name_for_vocab(int vocab_size) {
  if (vocab_size == 257) return "byte";
  if (vocab_size == 50257) return "gpt2";
  fail_user("no tokenizer for vocab_size {} (257 is \"byte\", 50257 is \"gpt2\")", vocab_size);
}

}  // namespace ng
