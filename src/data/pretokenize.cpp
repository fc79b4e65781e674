#include "data/pretokenize.hpp"

#include "data/unicode_class.hpp"

namespace ng {

namespace {

// Length of the contraction starting at text[pos] == '\'' ("'s", "'ll", ...), or 0 if none.
// GPT-2's list is lowercase only, so "DON'T" splits as "DON" "'" "T".
size_t contraction_length(std::string_view text, size_t pos) {
  const std::string_view rest = text.substr(pos + 1);
  for (std::string_view two : {"re", "ve", "ll"})
    if (rest.starts_with(two)) return 3;
  if (!rest.empty() && (rest[0] == 's' || rest[0] == 't' || rest[0] == 'm' || rest[0] == 'd')) return 2;
  return 0;
}

// End of the run of code points of class `cls` starting at `pos`.
size_t run_end(std::string_view text, size_t pos, CharClass cls) {
  while (pos < text.size()) {
    const Utf8Char c = decode_utf8(text, pos);
    if (char_class(c.cp) != cls) break;
    pos += c.len;
  }
  return pos;
}

}  // namespace

void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& pieces) {
  const size_t n = text.size();
  size_t pos = 0;
  while (pos < n) {
    if (text[pos] == '\'') {
      if (size_t len = contraction_length(text, pos)) {
        pieces.push_back(text.substr(pos, len));
        pos += len;
        continue;
      }
    }
    // " ?X+" : one leading U+0020 joins a following letter / number / other run.
    size_t body = pos;
    Utf8Char c = decode_utf8(text, pos);
    if (c.cp == ' ' && pos + 1 < n) {
      const Utf8Char next = decode_utf8(text, pos + 1);
      if (char_class(next.cp) != CharClass::Space) body = pos + 1, c = next;
    }
    const CharClass cls = char_class(c.cp);
    if (cls != CharClass::Space) {
      const size_t end = run_end(text, body, cls);
      pieces.push_back(text.substr(pos, end - pos));
      pos = end;
      continue;
    }
    // White space. "\s+(?!\S)" takes the whole run when nothing but the end follows it, else the
    // run minus its last character (when that leaves at least one); "\s+" takes a lone character.
    size_t end = pos, last_start = pos;
    while (end < n) {
      const Utf8Char w = decode_utf8(text, end);
      if (char_class(w.cp) != CharClass::Space) break;
      last_start = end;
      end += w.len;
    }
    const size_t take = (end < n && last_start > pos) ? last_start : end;
    pieces.push_back(text.substr(pos, take - pos));
    pos = take;
  }
}

}  // namespace ng
