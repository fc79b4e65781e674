// Code point classes for GPT-2's pre-tokenizer, and a lenient UTF-8 decoder.
//
// The pre-tokenizer regex (see pretokenize.hpp) only asks three questions of a code point: is it a
// letter (\p{L}), a number (\p{N}) or white space (\s)? The answers come from range tables
// generated from Unicode data by scripts/gen_unicode_tables.py (unicode_tables.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ng {

enum class CharClass : uint8_t { Other, Letter, Number, Space };

// Class of one code point. ASCII is a table lookup; the rest a binary search over a few hundred ranges.
CharClass char_class(uint32_t cp);

// One decoded code point and the number of bytes it took.
struct Utf8Char {
  uint32_t cp;
  uint32_t len;
};

// Decodes the code point starting at text[pos] (pos < text.size()). Invalid or truncated UTF-8
// never fails: a bad byte decodes as itself with length 1, as a code point (0xDC80 + byte, a lone
// surrogate) that char_class() calls Other. The BPE works on bytes, so such bytes still encode and
// decode exactly; they just cannot join a letter or number run.
Utf8Char decode_utf8(std::string_view text, size_t pos);

namespace unicode_tables {
struct CodeRange {
  uint32_t lo, hi;  // inclusive
};
extern const char* const kUnicodeVersion;
extern const CodeRange kLetter[];
extern const size_t kLetterCount;
extern const CodeRange kNumber[];
extern const size_t kNumberCount;
extern const CodeRange kSpace[];
extern const size_t kSpaceCount;
}  // namespace unicode_tables

}  // namespace ng
