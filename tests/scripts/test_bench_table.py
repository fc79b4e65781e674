"""Tests for scripts/bench_table.py: metrics parsing, medians, peak RSS, table and JSON."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench_table.py"

spec = importlib.util.spec_from_file_location("bench_table", SCRIPT)
bt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bt)

TIME_V = """\tCommand being timed: "build/normgpt train -c configs/tiny.json"
\tUser time (seconds): 10.50
\tMaximum resident set size (kbytes): 204800
\tExit status: 0
"""


def write_run(root: Path, name: str, order: int, step_ms: list[float], tokens_per_step: int,
              info: str | None = None, rc: int = 0) -> Path:
    d = root / f"{order:02d}-{name}"
    (d / "run").mkdir(parents=True)
    (d / "spec.json").write_text(json.dumps({
        "order": order, "config": name, "n_layer": 2, "d_model": 64, "n_head": 2,
        "seq_len": 64, "batch_size": 8, "vocab_size": 257, "steps": len(step_ms)}))
    lines = []
    for s, ms in enumerate(step_ms):
        lines.append(json.dumps({"step": s, "tokens": (s + 1) * tokens_per_step,
                                 "train_loss": 5.0 - 0.1 * s, "lr": 1e-3, "grad_norm": 1.0,
                                 "step_ms": ms, "tokens_per_s": tokens_per_step / ms * 1000}))
        if s == 1:
            lines.append(json.dumps({"step": s, "val_loss": 4.9}))
    lines.append('{"step": 99, "train_lo')  # a line cut short by a killed run
    (d / "run" / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (d / "time.txt").write_text(TIME_V)
    (d / "rc").write_text(f"{rc}\n")
    if info is not None:
        (d / "info.txt").write_text(info)
    return d


def test_read_metrics_splits_rows_and_skips_broken_lines(tmp_path):
    d = write_run(tmp_path, "a", 1, [100.0, 50.0, 10.0], 512)
    train, evals = bt.read_metrics(d / "run" / "metrics.jsonl")
    assert [r["step"] for r in train] == [0, 1, 2]
    assert evals == [{"step": 1, "val_loss": 4.9}]


def test_step_stats_skips_warmup_and_takes_medians():
    rows = [{"step": s, "train_loss": 1.0, "step_ms": ms, "tokens_per_s": 1000.0 / ms}
            for s, ms in enumerate([900.0, 500.0, 10.0, 30.0, 20.0])]
    st = bt.step_stats(rows, skip=2)
    assert st["steps_measured"] == 3
    assert st["step_ms"] == 20.0
    assert st["tokens_per_s"] == 50.0
    # Too few steps: all rows are used and this is reported.
    st = bt.step_stats(rows[:2], skip=2)
    assert st["steps_measured"] == 2 and st["warmup_skipped"] is False


def test_peak_rss_and_params():
    assert bt.peak_rss_mib(TIME_V) == 200.0
    assert bt.peak_rss_mib("nothing") is None
    # L6 d384 T256, byte vocabulary: about 10.8M parameters.
    assert bt.gpt2_params(6, 384, 256, 257) == 10_844_544
    # GPT-2 small (124M) with the padded-free vocabulary.
    assert bt.gpt2_params(12, 768, 1024, 50257) == 124_439_808
    assert bt.params_from_info("total params: 10,844,544\n") == 10_844_544
    assert bt.params_from_info("parameters = 1234") == 1234
    assert bt.params_from_info("no numbers here") is None
    info = ("tensor       shape                parameters\n"
            "wte          320x64                    20480\n"
            "total                                 124672  (0.125M)\n\n"
            "memory estimate (fp32): parameters 0.5 MiB, gradients 0.5 MiB\n")
    assert bt.params_from_info(info) == 124672


def test_cli_table_and_json(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "small", 1, [300.0, 200.0, 100.0, 100.0, 120.0], 512)
    write_run(runs, "big", 2, [900.0, 800.0, 400.0, 500.0, 450.0], 1024,
              info="model: ...\ntotal params: 123,456\n")
    out = tmp_path / "bench" / "cpu.json"
    res = subprocess.run([sys.executable, str(SCRIPT), "--runs-dir", str(runs), "--out", str(out),
                          "--commit", "abc1234"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "commit abc1234" in res.stdout
    assert "nproc" in res.stdout
    lines = res.stdout.splitlines()
    header = next(i for i, l in enumerate(lines) if l.startswith("config"))
    assert lines[header + 2].split()[0] == "small"
    assert lines[header + 3].split()[0] == "big"
    doc = json.loads(out.read_text())
    assert doc["commit"] == "abc1234" and doc["dirty"] is False
    small, big = doc["rows"]
    assert small["step_ms"] == 100.0 and small["tokens_per_s"] == 5120.0
    assert small["peak_rss_mib"] == 200.0
    assert small["params_source"].startswith("formula")
    assert big["params"] == 123_456 and big["params_source"] == "normgpt info"
    assert big["step_ms"] == 450.0
    assert "nproc" in doc["machine"] and "cpu" in doc["machine"]


def test_cli_failed_run_exits_1_and_empty_dir_exits_2(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "bad", 1, [100.0, 100.0, 100.0], 512, rc=2)
    res = subprocess.run([sys.executable, str(SCRIPT), "--runs-dir", str(runs)],
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert "(failed)" in res.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    res = subprocess.run([sys.executable, str(SCRIPT), "--runs-dir", str(empty)],
                         capture_output=True, text=True)
    assert res.returncode == 2
