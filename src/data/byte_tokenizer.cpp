#include "data/byte_tokenizer.hpp"

#include "core/errors.hpp"

namespace ng {

void ByteTokenizer::encode_into(std::string_view text, std::vector<int32_t>& out) const {
  out.reserve(out.size() + text.size());
  for (char ch : text) out.push_back(static_cast<unsigned char>(ch));
}

std::string ByteTokenizer::decode(std::span<const int32_t> ids) const {
  std::string s;
  s.reserve(ids.size());
  for (int32_t id : ids) {
    NG_REQUIRE(id >= 0 && id <= kEot, "byte tokenizer: token id {} out of range [0, 257)", id);
    if (id == kEot)
      s += "<|endoftext|>";
    else
      s += static_cast<char>(id);
  }
  return s;
}

}  // namespace ng
