#!/usr/bin/python3
"""Step time of each strategy (and the llama-style block options) on a mid-size CPU model, where
the norms' share of the step is closer to a real run's than on the tiny config of
strategy_table.py: 6 blocks, d_model 384, T 256, B 4, byte vocabulary (bench_cpu.sh's L6 size).

    /usr/bin/python3 scripts/strategy_step_time.py [--steps 12] [--only pre,ngpt]

Needs build/normgpt and data/brown_byte. Prints a Markdown table: median ms/step over the steps
after the first two, and the ratio to `pre` with the same norm function.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = {"model.n_layer": 6, "model.d_model": 384, "model.n_head": 6, "model.seq_len": 256, "train.batch_size": 4}
# label -> (config, norm function, extra --set values)
ROWS = {
    "pre": ("configs/strategies/tiny_pre.json", "layernorm", {}),
    "peri": ("configs/strategies/tiny_peri.json", "layernorm", {}),
    "geonorm": ("configs/strategies/tiny_geonorm.json", "layernorm", {}),
    "dyt": ("configs/strategies/tiny_dyt.json", "layernorm", {}),
    "residual": ("configs/strategies/tiny_residual.json", "layernorm", {}),
    "hybridnorm": ("configs/strategies/tiny_hybridnorm.json", "layernorm", {}),
    "ngpt": ("configs/strategies/tiny_ngpt.json", "layernorm", {}),
    "angpt": ("configs/strategies/tiny_angpt.json", "layernorm", {}),
    "pre+qk_norm": ("configs/strategies/tiny_pre.json", "layernorm", {"model.qk_norm": "head"}),
    "pre rmsnorm": ("configs/strategies/tiny_pre.json", "rmsnorm", {}),
    "pre rmsnorm+llama blocks": ("configs/tiny_llama.json", "rmsnorm", {}),
}


def step_ms(config, function, extra, steps, workdir):
    run = os.path.join(workdir, "run")
    sets = {**SIZE, **extra, "norm.function": function, "train.steps": steps, "eval.every": 0,
            "eval.batches": 1, "log.layer_stats_every": 0, "checkpoint.every": 0}
    cmd = [os.path.join(ROOT, "build", "normgpt"), "train", "-c", os.path.join(ROOT, config), "-o", run]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={json.dumps(v)}"]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    rows = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl")) if l.strip()]
    ms = [r["step_ms"] for r in rows if "step_ms" in r][2:]
    subprocess.run(["rm", "-rf", run], check=True)
    return statistics.median(ms)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--only", default="", help="comma-separated row labels")
    args = ap.parse_args()
    labels = [l for l in ROWS if not args.only or l in args.only.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label in labels:
            config, fn, extra = ROWS[label]
            results[label] = (fn, step_ms(config, fn, extra, args.steps, tmp))
            print(f"  {label}: {results[label][1]:.1f} ms/step", file=sys.stderr)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    print(f"\nL6 d384 T256 B4 (byte vocabulary), {args.steps} steps (median of steps 2..), "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'default')}, commit {commit}\n")
    print("| strategy / blocks | function | ms/step | vs pre |")
    print("|---|---|---|---|")
    base = {fn: ms for label, (fn, ms) in results.items() if label in ("pre", "pre rmsnorm")}
    for label, (fn, ms) in results.items():
        ratio = f"{ms / base[fn]:.3f}x" if fn in base else "n/a"
        print(f"| {label} | {fn} | {ms:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
