#!/usr/bin/python3
"""Summarize the runs of scripts/bench_cpu.sh as a table and a JSON file.

Each run folder under --runs-dir holds:
  spec.json     {"config", "n_layer", "n_head", "d_model", "seq_len", "batch_size", "vocab_size"}
  run/          the normgpt run directory (metrics.jsonl; summary.json)
  time.txt      the output of `/usr/bin/time -v` (peak RSS: "Maximum resident set size (kbytes)")
  info.txt      optional output of `normgpt info -c run/config.json` (parameter count)
  rc            optional exit code of the training run
tokens/s and ms/step are medians over the train rows of metrics.jsonl, skipping the first --skip
steps as warm-up.

Usage: bench_table.py --runs-dir DIR [--out FILE.json] [--skip 2] [--commit C] [--dirty]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import statistics
import sys
from pathlib import Path


def read_metrics(path: Path) -> tuple[list[dict], list[dict]]:
    """metrics.jsonl -> (train rows, eval rows); lines that are not JSON objects are skipped."""
    train, evals = [], []
    if not path.exists():
        return train, evals
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a killed run
        if not isinstance(row, dict):
            continue
        if "train_loss" in row:
            train.append(row)
        elif "val_loss" in row:
            evals.append(row)
    return train, evals


def step_stats(train_rows: list[dict], skip: int) -> dict:
    """Medians of tokens_per_s and step_ms over the rows with step >= skip (all rows if none)."""
    rows = [r for r in train_rows if r.get("step", 0) >= skip]
    warm = bool(rows)
    if not rows:
        rows = train_rows
    tps = [float(r["tokens_per_s"]) for r in rows if r.get("tokens_per_s") is not None]
    ms = [float(r["step_ms"]) for r in rows if r.get("step_ms") is not None]
    return {
        "steps_measured": len(rows),
        "warmup_skipped": warm,
        "tokens_per_s": statistics.median(tps) if tps else None,
        "step_ms": statistics.median(ms) if ms else None,
        "final_train_loss": float(train_rows[-1]["train_loss"]) if train_rows else None,
    }


def peak_rss_mib(time_output: str) -> float | None:
    m = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", time_output)
    return int(m.group(1)) / 1024.0 if m else None


def gpt2_params(n_layer: int, d_model: int, seq_len: int, vocab_size: int) -> int:
    """Parameter count of a Pre-LN GPT-2 with a tied head (unpadded vocabulary)."""
    C = d_model
    per_layer = 12 * C * C + 13 * C  # qkv, proj, fc, fcproj weights + biases, 2 layernorms
    return vocab_size * C + seq_len * C + n_layer * per_layer + 2 * C


def params_from_info(text: str) -> int | None:
    """The total parameter count from `normgpt info` output, if it states one."""
    for pat in (r"^total\s+([\d,_]+)",  # the last row of the parameter table
                r"total\s+param\w*\s*[:=]?\s*([\d,_]+)",
                r"param\w*\s*(?:count|total)?\s*[:=]\s*([\d,_]+)",
                r"([\d,_]+)\s+param"):
        m = re.search(pat, text, re.IGNORECASE | re.MULTILINE)
        if m:
            digits = re.sub(r"[,_]", "", m.group(1))
            if digits.isdigit() and int(digits) > 0:
                return int(digits)
    return None


def collect_run(run_dir: Path, skip: int) -> dict:
    spec = json.loads((run_dir / "spec.json").read_text())
    train, _ = read_metrics(run_dir / "run" / "metrics.jsonl")
    row = dict(spec)
    row.update(step_stats(train, skip))
    time_txt = run_dir / "time.txt"
    row["peak_rss_mib"] = peak_rss_mib(time_txt.read_text()) if time_txt.exists() else None
    rc_file = run_dir / "rc"
    row["exit_code"] = int(rc_file.read_text().strip()) if rc_file.exists() else None
    info = run_dir / "info.txt"
    params = params_from_info(info.read_text()) if info.exists() else None
    if params is not None:
        row["params"], row["params_source"] = params, "normgpt info"
    else:
        row["params"] = gpt2_params(spec["n_layer"], spec["d_model"], spec["seq_len"],
                                    spec["vocab_size"])
        row["params_source"] = "formula (pre-LN GPT-2, tied head)"
    return row


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    return {
        "nproc": nproc,
        "cpu": cpu_model(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
        "hostname": platform.node(),
    }


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def format_table(rows: list[dict]) -> str:
    head = ["config", "params", "tokens/s", "ms/step", "peak MiB", "steps"]
    body = []
    for r in rows:
        p = r.get("params")
        body.append([
            r["config"],
            "-" if p is None else f"{p / 1e6:.2f}M",
            fmt(r.get("tokens_per_s"), ",.0f"),
            fmt(r.get("step_ms"), ".1f"),
            fmt(r.get("peak_rss_mib"), ".0f"),
            str(r.get("steps_measured", 0)) + ("" if r.get("exit_code") in (0, None) else " (failed)"),
        ])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for b in body:
        lines.append("  ".join(x.ljust(w) if i == 0 else x.rjust(w)
                               for i, (x, w) in enumerate(zip(b, widths))))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Summarize scripts/bench_cpu.sh runs.")
    ap.add_argument("--runs-dir", required=True, type=Path)
    ap.add_argument("--out", type=Path, help="JSON file to write")
    ap.add_argument("--skip", type=int, default=2, help="warm-up steps to leave out (default 2)")
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--dirty", action="store_true", help="the work tree had uncommitted changes")
    ap.add_argument("--loadavg-start", default=None,
                    help="/proc/loadavg's 1/5/15-minute averages when the benchmark started")
    args = ap.parse_args(argv)

    run_dirs = sorted(p for p in args.runs_dir.iterdir() if (p / "spec.json").exists()) \
        if args.runs_dir.is_dir() else []
    if not run_dirs:
        print(f"bench_table: no runs (spec.json) under {args.runs_dir}", file=sys.stderr)
        return 2
    rows = [collect_run(d, args.skip) for d in run_dirs]
    rows.sort(key=lambda r: r.get("order", 0))
    machine = machine_info()
    if args.loadavg_start:
        machine["loadavg_start"] = args.loadavg_start
    now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    commit = args.commit + ("+dirty" if args.dirty else "")
    print(f"normgpt CPU benchmark, commit {commit}, {now}")
    print(f"machine: {machine['cpu']}, nproc {machine['nproc']}, "
          f"OMP_NUM_THREADS={machine['omp_num_threads']}"
          + (f", load average at start {args.loadavg_start}" if args.loadavg_start else ""))
    print(f"tokens/s and ms/step: medians over train steps >= {args.skip}; peak MiB: max RSS")
    print(format_table(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        doc = {"benchmark": "cpu", "date": now, "commit": args.commit, "dirty": args.dirty,
               "warmup_steps_skipped": args.skip, "machine": machine, "rows": rows}
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.out}")
    failed = [r["config"] for r in rows if r.get("exit_code") not in (0, None)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
