// GPT-2's pre-tokenization: the split of text into pieces that BPE then encodes one by one.
//
// GPT-2 splits with the regex
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (alternatives tried in order at each position, each greedy). We implement it by hand rather than
// pull in a Unicode regex library; the rules it amounts to:
//   - at an apostrophe, the lowercase contractions 's 't 're 've 'm 'll 'd are pieces of their own;
//   - a single ' ' (U+0020 only) joins the letter, number or other-symbol run that follows it;
//   - runs of letters, of numbers, and of "other" (neither space, letter nor number) are pieces;
//   - a white-space run is one piece if it ends the text; otherwise it gives up its last character,
//     which joins the next piece when it is ' ' and stands alone when it is not (e.g. "\n").
// Letter / number / space follow JavaScript's \p{L}, \p{N}, \s (see unicode_class.hpp), because our
// reference ids come from js-tiktoken. Pieces are views into `text`; concatenated they give `text`.
#pragma once

#include <string_view>
#include <vector>

namespace ng {

// Appends the pieces of `text` to `pieces`.
void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& pieces);

}  // namespace ng
