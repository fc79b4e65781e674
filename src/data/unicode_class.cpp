#include "data/unicode_class.hpp"

#include <algorithm>
#include <array>

namespace ng {

namespace {

using unicode_tables::CodeRange;

bool in_ranges(const CodeRange* begin, size_t count, uint32_t cp) {
  const CodeRange* end = begin + count;
  // First range whose hi >= cp; cp is inside it iff lo <= cp.
  const CodeRange* it = std::lower_bound(begin, end, cp, [](const CodeRange& r, uint32_t c) { return r.hi < c; });
  return it != end && it->lo <= cp;
}

CharClass classify_slow(uint32_t cp) {
  using namespace unicode_tables;
  if (in_ranges(kLetter, kLetterCount, cp)) return CharClass::Letter;
  if (in_ranges(kNumber, kNumberCount, cp)) return CharClass::Number;
  if (in_ranges(kSpace, kSpaceCount, cp)) return CharClass::Space;
  return CharClass::Other;
}

// ASCII dominates English text, so it skips the binary searches.
const std::array<CharClass, 128> kAscii = [] {
  std::array<CharClass, 128> t{};
  for (uint32_t c = 0; c < 128; ++c) t[c] = classify_slow(c);
  return t;
}();

}  // namespace

CharClass char_class(uint32_t cp) { return cp < 128 ? kAscii[cp] : classify_slow(cp); }

Utf8Char decode_utf8(std::string_view text, size_t pos) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  const unsigned char b0 = s[pos];
  const Utf8Char bad{0xDC80u + b0, 1};
  if (b0 < 0x80) return {b0, 1};
  uint32_t len, cp, min_cp;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min_cp = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min_cp = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min_cp = 0x10000;
  } else {
    return bad;  // stray continuation byte or 0xF8..0xFF
  }
  if (pos + len > n) return bad;
  for (uint32_t k = 1; k < len; ++k) {
    const unsigned char b = s[pos + k];
    if ((b & 0xC0) != 0x80) return bad;
    cp = (cp << 6) | (b & 0x3F);
  }
  // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not valid UTF-8.
  if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return bad;
  return {cp, len};
}

}  // namespace ng
