#!/usr/bin/python3
"""Strategy x norm-function table: tiny-model val loss after a fixed short CPU run (same data,
seed and steps), step time relative to `pre`, and the worst gradient error against finite
differences and against the PyTorch twin (parsed from the test binaries' own report lines).

    /usr/bin/python3 scripts/strategy_table.py [--steps 200] [--out bench/strategy_table.json]

Needs build/normgpt and build/tests/test_model (cmake --build build) and data/brown_byte
(scripts/setup.sh). Prints a Markdown table and writes the numbers as JSON.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRATEGIES = ["pre", "post", "peri", "reordered", "mixln", "lns", "deepnorm", "b2t", "geonorm", "dyt",
              "residual", "hybridnorm", "hybridnorm_star", "ngpt", "angpt"]
FUNCTIONS = ["layernorm", "rmsnorm"]
NO_NORM_LAYERS = {"ngpt", "angpt"}  # norm.function does not apply: one row each
# Block-option rows (docs/blocks.md): (label, config, function, FD case, twin fixture)
BLOCK_ROWS = [("pre+llama blocks", "configs/tiny_llama.json", "rmsnorm", "pre_rmsnorm_llama", "arch_llama_rmsnorm")]


def run_training(strategy, function, steps, workdir, config=None):
    run = os.path.join(workdir, f"{strategy}-{function}")
    config = config or os.path.join("configs", "strategies", f"tiny_{strategy}.json")
    cmd = [os.path.join(ROOT, "build", "normgpt"), "train", "-c", os.path.join(ROOT, config), "-o", run,
           "--set", f"norm.function={function}", "--set", f"train.steps={steps}",
           "--set", "eval.every=0", "--set", "eval.batches=20", "--set", "log.layer_stats_every=0",
           "--set", "checkpoint.every=0"]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    rows = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl")) if l.strip()]
    step_ms = [r["step_ms"] for r in rows if "step_ms" in r][2:]  # skip warm-up steps
    val = [r["val_loss"] for r in rows if "val_loss" in r][-1]
    return val, statistics.median(step_ms)


def test_report_lines(binary, gtest_filter, pattern):
    out = subprocess.run([os.path.join(ROOT, "build", "tests", binary), f"--gtest_filter={gtest_filter}"],
                         cwd=ROOT, capture_output=True, text=True).stdout
    return {m.group(1): float(m.group(2)) for m in re.finditer(pattern, out)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "strategy_table.json"))
    args = ap.parse_args()
    fd = test_report_lines("test_model", "Strategies/ModelFD.*", r"\[fd (\S+)\] max relative gradient error (\S+)")
    ref = test_report_lines("test_model", "*Reference*",
                            r"\[reference (\S+ fp32)\] .*?max grad err \(rel to tensor norm\) (\S+),")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in STRATEGIES:
            for f in FUNCTIONS[:1] if s in NO_NORM_LAYERS else FUNCTIONS:
                val, ms = run_training(s, f, args.steps, tmp)
                # no norm layers: the FD cases and fixtures of both function names are the same model
                results.append({"strategy": s, "function": "-" if s in NO_NORM_LAYERS else f, "val_loss": val,
                                "step_ms": ms, "fd_rel_err": fd.get(f"{s}_{f}"),
                                "torch_rel_err_fp32": ref.get(f"{s}_{f} fp32"), "base_function": f})
                print(f"  {s:9s} {f:9s} val {val:.4f}  {ms:.1f} ms/step", file=sys.stderr)
        for label, config, f, fd_case, fixture in BLOCK_ROWS:
            val, ms = run_training(label.replace(" ", "_").replace("+", "_"), f, args.steps, tmp, config)
            results.append({"strategy": label, "function": f, "val_loss": val, "step_ms": ms,
                            "fd_rel_err": fd.get(fd_case), "torch_rel_err_fp32": ref.get(f"{fixture} fp32"),
                            "base_function": f})
            print(f"  {label} val {val:.4f}  {ms:.1f} ms/step", file=sys.stderr)
    base = {r["function"]: r["step_ms"] for r in results if r["strategy"] == "pre"}
    fmt = lambda v: "n/a" if v is None else f"{v:.1e}"
    print(f"\ntiny config (configs/strategies/tiny_<strategy>.json), {args.steps} steps, "
          f"val loss over 20 batches, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'default')}, "
          f"commit {subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()}\n")
    print("| strategy | function | val loss | step time vs pre | max grad err vs FD (fp64) | max grad err vs PyTorch (fp32) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        r["step_time_vs_pre"] = r["step_ms"] / base[r["base_function"]]
        print(f"| {r['strategy']} | {r['function']} | {r['val_loss']:.4f} | {r['step_time_vs_pre']:.2f}x | "
              f"{fmt(r['fd_rel_err'])} | {fmt(r['torch_rel_err_fp32'])} |")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump({"steps": args.steps, "rows": results}, fh, indent=2)


if __name__ == "__main__":
    main()
