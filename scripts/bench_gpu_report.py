#!/usr/bin/python3
"""Merge the normgpt and PyTorch runs of scripts/bench_gpu.sh into one benchmark record.

Reads --runs-dir (written by bench_gpu.sh):
  bench.json          the run's settings: mode, strategies, B, T, grad_accum, steps, warmup, model dims
  NN-<strategy>/      one folder per strategy, in order:
    spec.json         {"order", "strategy", "config", "batch_size", "grad_accum", ...}
    normgpt/          normgpt's run directory (metrics.jsonl, summary.json)
    normgpt.rc, normgpt.log   exit code and console output of `normgpt train`
    info.txt          `normgpt info` output (parameter count N)
    mem.csv           nvidia-smi memory.used samples in MiB during the run (mem_baseline.txt: before)
    torch.json        the JSON object of scripts/bench_gpu_torch.py (absent with --no-torch)
and writes, into --out (default docs/benchmarks):
  <date>-<device>-<commit>.json   {"device", "driver", "commit", "config", "rows": [{"strategy",
                                  "tokens_per_s", "mfu", "step_ms", "peak_mem_gb",
                                  "pytorch_tokens_per_s", ...}], ...}; -2, -3, ... when it exists
  <date>-<device>-<commit>.md     the Markdown table; a later run with the same name is appended
and prints the table.

Measurements: step_ms is the median step time over the optimizer steps after the first --skip
(warm-up), tokens_per_s = tokens per step / median step time; the same rule for normgpt (its
metrics.jsonl rows) and PyTorch (bench_gpu_torch.py). MFU = tokens_per_s * (6N + 12*L*T*d) / peak,
N = the strategy's parameter count (`normgpt info`), peak = the GPU's dense bf16 datasheet rate
(PEAK_BF16_TFLOPS; null for a CPU or an unknown GPU, or set it with --peak-tflops). peak_mem_gb
(normgpt): normgpt's own figure when it reports one (a "peak_mem_gb" key in summary.json or in the
metrics rows), else the highest nvidia-smi memory.used during the run minus the value before it
(device-wide, so the CUDA context is included), else null; peak_mem_source says which. GB = 1e9
bytes.

Usage: bench_gpu_report.py --runs-dir DIR [--out DIR] [--skip 5] [--commit C] [--dirty]
         [--device NAME] [--driver V] [--peak-tflops X] [--date YYYY-MM-DD]
Exit code: 0, 1 when a normgpt run failed (the record is written anyway), 2 for bad input.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_spec = importlib.util.spec_from_file_location("bench_table", HERE / "bench_table.py")
bench_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_table)

FLOPS_FORMULA = "6N + 12*L*T*d"
MFU_FORMULA = "tokens_per_s * (6N + 12*L*T*d) / peak_bf16_dense"
# Dense (no sparsity) bf16 tensor-core rates from the vendor datasheets, TFLOP/s. Matched against
# the nvidia-smi name in order: every word of a rule must occur in the name (case-insensitive);
# a rule with rate None marks a known variant whose rate is not in this table (-> mfu null).
PEAK_BF16_TFLOPS = [
    (("H100", "PCIE"), 756.0),
    (("H100", "NVL"), None),
    (("H100",), 989.4),    # H100 SXM5 ("NVIDIA H100 80GB HBM3")
    (("H200", "NVL"), None),
    (("H200",), 989.4),    # H200 SXM
    (("A100",), 312.0),
]

# The targets (on one H100).
TARGET_PRE_TOKENS_PER_S = 350_000
TARGET_STEP_VS_PRE = 1.05


def peak_tflops(device: str | None) -> float | None:
    """The dense bf16 datasheet rate of a GPU by its nvidia-smi name; None for a CPU / unknown."""
    if not device:
        return None
    name = device.upper()
    if name.startswith("CPU"):
        return None
    for words, rate in PEAK_BF16_TFLOPS:
        if all(w in name for w in words):
            return rate
    return None


def flops_per_token(n_params: int, n_layer: int, seq_len: int, d_model: int) -> float:
    """6N + 12*L*T*d (forward + backward of the matmuls, plus attention's scores and values)."""
    return 6.0 * n_params + 12.0 * n_layer * seq_len * d_model


def mfu(tokens_per_s: float | None, fpt: float | None, peak: float | None) -> float | None:
    if tokens_per_s is None or fpt is None or not peak:
        return None
    return tokens_per_s * fpt / (peak * 1e12)


def gpt2_params_padded(n_layer: int, d_model: int, max_seq_len: int, padded_vocab: int) -> int:
    """N of a Pre-LN GPT-2 with a tied head over the padded vocabulary (normgpt's count for pre)."""
    C = d_model
    return padded_vocab * C + max_seq_len * C + n_layer * (12 * C * C + 13 * C) + 2 * C


def step_measure(rows: list[dict], skip: int) -> dict:
    """Median step time of the train rows with step >= skip; tokens/s from it."""
    used = [r for r in rows if r.get("step", 0) >= skip and r.get("step_ms") is not None
            and not r.get("skipped")]
    if not used:
        return {"step_ms": None, "tokens_per_s": None, "steps_measured": 0}
    ms = statistics.median(float(r["step_ms"]) for r in used)
    # tokens per step = tokens_per_s * step time of any row (normgpt writes both from it)
    r0 = used[0]
    tps = None
    if r0.get("tokens_per_s") is not None and float(r0["step_ms"]) > 0:
        tokens_per_step = round(float(r0["tokens_per_s"]) * float(r0["step_ms"]) / 1e3)
        tps = tokens_per_step / (ms / 1e3) if ms > 0 else None
    return {"step_ms": ms, "tokens_per_s": tps, "steps_measured": len(used)}


def read_mem_mib(path: Path) -> list[float]:
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            m = re.match(r"\s*([\d.]+)", line)
            if m:
                out.append(float(m.group(1)))
    return out


def normgpt_peak_mem(run: Path, train_rows: list[dict], mem_csv: Path,
                     baseline: Path) -> tuple[float | None, str | None]:
    """(peak GB, source): normgpt's own figure, else nvidia-smi's samples minus the baseline."""
    summary = run / "summary.json"
    if summary.exists():
        try:
            v = json.loads(summary.read_text()).get("peak_mem_gb")
            if v is not None:
                return float(v), "normgpt"
        except (json.JSONDecodeError, AttributeError):
            pass
    own = [float(r["peak_mem_gb"]) for r in train_rows if r.get("peak_mem_gb") is not None]
    if own:
        return max(own), "normgpt"
    samples = read_mem_mib(mem_csv)
    if samples:
        base = read_mem_mib(baseline)
        used = max(samples) - (base[0] if base else 0.0)
        return max(used, 0.0) * 1048576 / 1e9, "nvidia-smi memory.used (device-wide, minus the " \
                                               "value before the run)"
    return None, None


def last_error_line(log: Path) -> str | None:
    if not log.exists():
        return None
    lines = [l.strip() for l in log.read_text(errors="replace").splitlines() if l.strip()]
    for l in reversed(lines):
        if "error" in l.lower():
            return l[:300]
    return lines[-1][:300] if lines else None


def read_json(path: Path) -> dict | None:
    try:
        v = json.loads(path.read_text())
        return v if isinstance(v, dict) else None
    except (OSError, json.JSONDecodeError):
        return None


def collect_row(d: Path, bench: dict, skip: int, peak: float | None) -> dict:
    spec = read_json(d / "spec.json") or {}
    strategy = spec.get("strategy", d.name.split("-", 1)[-1])
    run = d / "normgpt"
    train, _ = bench_table.read_metrics(run / "metrics.jsonl")
    meas = step_measure(train, skip)
    rc_txt = (d / "normgpt.rc").read_text().strip() if (d / "normgpt.rc").exists() else ""
    rc = int(rc_txt) if rc_txt.lstrip("-").isdigit() else None
    L, C = bench["n_layer"], bench["d_model"]
    T = bench["seq_len"]
    info = d / "info.txt"
    n = bench_table.params_from_info(info.read_text()) if info.exists() else None
    params_source = "normgpt info"
    if n is None:
        n = gpt2_params_padded(L, C, T, bench["padded_vocab"])
        params_source = "formula (pre-LN GPT-2, tied head, padded vocabulary)"
    fpt = flops_per_token(n, L, T, C)
    mem, mem_src = normgpt_peak_mem(run, train, d / "mem.csv", d / "mem_baseline.txt")
    row = {
        "strategy": strategy,
        "tokens_per_s": meas["tokens_per_s"],
        "mfu": mfu(meas["tokens_per_s"], fpt, peak),
        "step_ms": meas["step_ms"],
        "peak_mem_gb": mem,
        "pytorch_tokens_per_s": None,
        "peak_mem_source": mem_src,
        "steps_measured": meas["steps_measured"],
        "batch_size": spec.get("batch_size", bench.get("batch_size")),
        "grad_accum": spec.get("grad_accum", bench.get("grad_accum")),
        "params": n,
        "params_source": params_source,
        "flops_per_token": fpt,
        "config_file": spec.get("config"),
        "normgpt_exit_code": rc,
    }
    if rc not in (0, None) or meas["step_ms"] is None:
        row["normgpt_error"] = last_error_line(d / "normgpt.log") or f"exit code {rc}"
    if train and meas["steps_measured"] < len(train) - skip:
        row["normgpt_note"] = "some rows were skipped updates (divergence guard)"
    t = read_json(d / "torch.json")
    if t is None:
        row["pytorch_error"] = "not run (--no-torch)" if bench.get("no_torch") else \
            "no result (bench_gpu_torch.py wrote nothing)"
        row.update({"pytorch_step_ms": None, "pytorch_peak_mem_gb": None, "pytorch_mfu": None})
    else:
        row["pytorch_tokens_per_s"] = t.get("tokens_per_s")
        row["pytorch_step_ms"] = t.get("step_ms")
        row["pytorch_peak_mem_gb"] = t.get("peak_mem_gb")
        row["pytorch_mfu"] = mfu(t.get("tokens_per_s"), fpt, peak)
        row["pytorch_batch_size"] = t.get("batch_size")
        row["pytorch_grad_accum"] = t.get("grad_accum")
        if t.get("params") is not None and t["params"] != n:
            row["pytorch_params"] = t["params"]
        if t.get("error"):
            row["pytorch_error"] = t["error"]
        for k in ("torch_version", "compile", "dtype", "adamw", "ops"):
            if k in t:
                row.setdefault("pytorch", {})[k] = t[k]
    tp, pt = row["tokens_per_s"], row["pytorch_tokens_per_s"]
    row["ratio_to_pytorch"] = tp / pt if tp and pt else None
    return row


def add_relative(rows: list[dict]) -> None:
    pre = next((r for r in rows if r["strategy"] == "pre" and r["step_ms"]), None)
    for r in rows:
        r["step_vs_pre"] = r["step_ms"] / pre["step_ms"] if pre and r["step_ms"] else None


def targets(rows: list[dict], judged: bool = True) -> dict:
    """The issue's targets, judged on this run (None: not measurable here, or not judged: a CPU
    smoke run)."""
    if not judged:
        return {"pre_tokens_per_s_at_least": TARGET_PRE_TOKENS_PER_S,
                "pre_tokens_per_s_met": None, "every_strategy_at_least_pytorch_met": None,
                "step_within_of_pre": TARGET_STEP_VS_PRE,
                "every_strategy_within_5pct_of_pre_met": None}
    pre = next((r for r in rows if r["strategy"] == "pre"), None)
    ratios = {r["strategy"]: r["ratio_to_pytorch"] for r in rows}
    rel = {r["strategy"]: r["step_vs_pre"] for r in rows if r["strategy"] != "pre"}
    known_ratio = [v for v in ratios.values() if v is not None]
    known_rel = [v for v in rel.values() if v is not None]
    return {
        "pre_tokens_per_s_at_least": TARGET_PRE_TOKENS_PER_S,
        "pre_tokens_per_s_met": (pre["tokens_per_s"] >= TARGET_PRE_TOKENS_PER_S)
        if pre and pre["tokens_per_s"] is not None else None,
        "every_strategy_at_least_pytorch_met": all(v >= 1.0 for v in known_ratio)
        if known_ratio and len(known_ratio) == len(ratios) else None,
        "step_within_of_pre": TARGET_STEP_VS_PRE,
        "every_strategy_within_5pct_of_pre_met": all(v <= TARGET_STEP_VS_PRE for v in known_rel)
        if known_rel and len(known_rel) == len(rel) else None,
    }


def detect_device() -> tuple[str, str | None]:
    """(GPU name, driver) from nvidia-smi's first GPU, or ("cpu", None) without one."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            name, _, driver = out.stdout.strip().splitlines()[0].partition(",")
            return name.strip(), driver.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "cpu", None


def git_commit() -> tuple[str, bool]:
    def git(*a):
        try:  # a machine without git (or a copy of the tree without .git) has no commit to name
            r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True)
        except OSError:
            return ""
        return r.stdout.strip() if r.returncode == 0 else ""
    return (git("rev-parse", "--short", "HEAD") or "unknown",
            bool(git("status", "--porcelain", "--untracked-files=no")))


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return re.sub(r"^nvidia-", "", s) or "unknown"


def fmt(v, spec: str, none: str = "-") -> str:
    return none if v is None else format(v, spec)


def pytorch_line(rows: list[dict]) -> str:
    """How the PyTorch side ran, from the first row that has its settings."""
    info = next((r["pytorch"] for r in rows if r.get("pytorch") and not r.get("pytorch_error")),
                None)
    if info is None:
        return "PyTorch: no measurement" + (" (see the notes below)" if any(
            r.get("pytorch_error") not in (None, "not run (--no-torch)") for r in rows) else "")
    ops = info.get("ops", {})
    return (f"PyTorch {info.get('torch_version', '?')} (scripts/bench_gpu_torch.py, the twin's "
            f"blocks): {'bf16 autocast' if info.get('dtype') == 'bf16' else 'fp32'}, "
            f"{'torch.compile' if info.get('compile') else 'eager'}, attention "
            f"{ops.get('attention', '?')}, {info.get('adamw', '?')} AdamW; PyTorch peak GB = "
            f"torch.cuda.max_memory_allocated")


def markdown(doc: dict, json_name: str) -> str:
    c = doc["config"]
    peak = doc["peak_tflops_bf16"]
    head = [
        f"## {doc['date']}: {doc['device']}, commit {doc['commit']}"
        + (" (uncommitted changes)" if doc.get("dirty") else ""),
        "",
        f"- record: `{json_name}`; driver {doc['driver'] or '-'}; mode {c['mode']}",
        f"- model: L {c['n_layer']}, d {c['d_model']}, heads {c['n_head']}, T {c['seq_len']}, "
        f"V {c['vocab_size']} (padded {c['padded_vocab']}); norm function {c['norm_function']}",
        f"- step: B {c['batch_size']} x T {c['seq_len']} x grad_accum {c['grad_accum']} = "
        f"{c['tokens_per_step']:,} tokens; {c['steps']} steps, the first {c['warmup_steps']} left "
        f"out; step ms = median, tokens/s = tokens per step / median step",
        f"- MFU = tokens/s x ({FLOPS_FORMULA}) / peak; peak = "
        + (f"{peak} TFLOP/s (dense bf16 datasheet rate)" if peak else
           "unknown for this device (MFU not computed)"),
        "- " + pytorch_line(doc["rows"]),
        "",
        "| strategy | tokens/s | MFU | step ms | vs pre | peak GB | PyTorch tokens/s | "
        "vs PyTorch | PyTorch MFU | PyTorch step ms | PyTorch peak GB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    body = []
    notes = []
    for r in doc["rows"]:
        body.append("| " + " | ".join([
            r["strategy"],
            fmt(r["tokens_per_s"], ",.0f"),
            fmt(None if r["mfu"] is None else 100 * r["mfu"], ".1f") + ("%" if r["mfu"] is not None else ""),
            fmt(r["step_ms"], ".1f"),
            fmt(r.get("step_vs_pre"), ".3f") + ("x" if r.get("step_vs_pre") is not None else ""),
            fmt(r["peak_mem_gb"], ".2f"),
            fmt(r["pytorch_tokens_per_s"], ",.0f"),
            fmt(r.get("ratio_to_pytorch"), ".3f") + ("x" if r.get("ratio_to_pytorch") is not None else ""),
            fmt(None if r.get("pytorch_mfu") is None else 100 * r["pytorch_mfu"], ".1f")
            + ("%" if r.get("pytorch_mfu") is not None else ""),
            fmt(r.get("pytorch_step_ms"), ".1f"),
            fmt(r.get("pytorch_peak_mem_gb"), ".2f"),
        ]) + " |")
        if r.get("normgpt_error"):
            notes.append(f"- {r['strategy']}: normgpt failed: {r['normgpt_error']}")
        if r.get("pytorch_error") and r["pytorch_error"] != "not run (--no-torch)":
            notes.append(f"- {r['strategy']}: PyTorch: {r['pytorch_error']}")
    t = doc["targets"]

    def verdict(v):
        return "n/a" if v is None else ("met" if v else "NOT met")
    judged = doc["config"].get("mode") != "smoke"
    tail = ["", "Targets (one H100): not judged on a CPU smoke run." if not judged else
            "Targets (one H100): "
            f"pre >= {TARGET_PRE_TOKENS_PER_S:,} tokens/s: {verdict(t['pre_tokens_per_s_met'])}; "
            f"every strategy >= PyTorch: {verdict(t['every_strategy_at_least_pytorch_met'])}; "
            f"every strategy within 5% of pre's step: {verdict(t['every_strategy_within_5pct_of_pre_met'])}."]
    mem_sources = sorted({r["peak_mem_source"] for r in doc["rows"] if r.get("peak_mem_source")})
    tail.append("normgpt peak memory: " + ("; ".join(mem_sources) if mem_sources else
                                          "not measured (no nvidia-smi, and normgpt reports none)")
                + ".")
    if notes:
        tail += ["", *notes]
    return "\n".join(head + body + tail) + "\n"


def unique_json_path(out: Path, stem: str) -> Path:
    p = out / f"{stem}.json"
    i = 2
    while p.exists():
        p = out / f"{stem}-{i}.json"
        i += 1
    return p


def build_doc(runs: Path, skip: int | None, device: str, driver: str | None, commit: str,
              dirty: bool, peak: float | None, date: str) -> dict:
    bench = read_json(runs / "bench.json")
    if bench is None:
        raise ValueError(f"{runs / 'bench.json'} is missing or not a JSON object")
    skip = bench.get("warmup_steps", 0) if skip is None else skip
    dirs = sorted(p for p in runs.iterdir() if (p / "spec.json").exists())
    if not dirs:
        raise ValueError(f"no strategy runs (*/spec.json) under {runs}")
    rows = [collect_row(d, bench, skip, peak) for d in dirs]
    add_relative(rows)
    config = {k: bench.get(k) for k in (
        "mode", "config_dir", "n_layer", "d_model", "n_head", "seq_len", "vocab_size",
        "padded_vocab", "norm_function", "batch_size", "grad_accum", "tokens_per_step", "steps",
        "device_setting", "data")}
    config["warmup_steps"] = skip
    config["strategies"] = [r["strategy"] for r in rows]
    return {
        "device": device,
        "driver": driver,
        "commit": commit,
        "dirty": dirty,
        "date": date,
        "config": config,
        "flops_per_token_formula": FLOPS_FORMULA,
        "mfu_formula": MFU_FORMULA,
        "peak_tflops_bf16": peak,
        "timing": "median step time over the steps after the warm-up; tokens_per_s = tokens per "
                  "step / median step time (normgpt and PyTorch alike)",
        "memory": "peak_mem_gb: see peak_mem_source per row; pytorch_peak_mem_gb: "
                  "torch.cuda.max_memory_allocated; GB = 1e9 bytes",
        "rows": rows,
        "targets": targets(rows, judged=bench.get("mode") != "smoke"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", required=True, type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    ap.add_argument("--skip", type=int, default=None,
                    help="warm-up steps left out (default: bench.json's warmup_steps)")
    ap.add_argument("--commit", help="default: git rev-parse --short HEAD")
    ap.add_argument("--dirty", action="store_true", default=None,
                    help="the work tree had uncommitted changes (default: asked from git)")
    ap.add_argument("--device", help="device name (default: nvidia-smi, else cpu)")
    ap.add_argument("--driver", help="driver version (default: nvidia-smi)")
    ap.add_argument("--peak-tflops", type=float, help="dense bf16 peak (default: by device name)")
    ap.add_argument("--date", help="YYYY-MM-DD (default: today)")
    args = ap.parse_args(argv)

    if not args.runs_dir.is_dir():
        print(f"bench_gpu_report: {args.runs_dir} is not a directory", file=sys.stderr)
        return 2
    bench = read_json(args.runs_dir / "bench.json") or {}
    if args.device:
        device, driver = args.device, args.driver
    elif bench.get("mode") == "smoke":
        device, driver = "cpu (smoke)", None
    else:
        device, driver = detect_device()
        driver = args.driver or driver
    if args.commit:
        commit, dirty = args.commit, bool(args.dirty)
    else:
        commit, dirty = git_commit()
        dirty = dirty if args.dirty is None else True
    peak = args.peak_tflops if args.peak_tflops else peak_tflops(device)
    date = args.date or _dt.date.today().isoformat()
    try:
        doc = build_doc(args.runs_dir, args.skip, device, driver, commit, dirty, peak, date)
    except ValueError as e:
        print(f"bench_gpu_report: {e}", file=sys.stderr)
        return 2

    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{date}-{slug(device)}-{commit}"
    json_path = unique_json_path(args.out, stem)
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    md = markdown(doc, json_path.name)
    md_path = args.out / f"{stem}.md"
    if md_path.exists():
        with md_path.open("a") as f:
            f.write("\n" + md)
    else:
        md_path.write_text(f"# normgpt GPU benchmark: {device}, commit {commit}\n\n" + md)
    print(md, end="")
    print(f"\nwrote {json_path} and {md_path}")
    failed = [r["strategy"] for r in doc["rows"] if r.get("normgpt_error")]
    if failed:
        print(f"bench_gpu_report: normgpt failed for: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
