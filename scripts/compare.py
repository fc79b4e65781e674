#!/usr/bin/python3
"""Compare normgpt runs: loss curves, stability, layer statistics, throughput, config differences.

    scripts/compare.py RUN_DIR_OR_SWEEP_DIR... -o REPORT_DIR [--by KEY] [--smooth A] [--logx]

Writes REPORT_DIR/index.html (self-contained: figures inline as base64 PNG, no network),
summary.csv (a row per run), summary_groups.csv and summary.md. Runs that differ only in seed
form a group, drawn as the mean over seeds with a min-max band; --by groups by config keys
instead (`--by strategy`, `--by norm.strategy,optim.lr`). A sweep directory stands for all its
runs. A run still training is shown as running, with the curve so far.

Exit status: 0 report written; 2 bad input (a path missing or not a directory, nothing to
compare, an unknown --baseline).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from normgpt_tools import compare_data as cd  # noqa: E402
from normgpt_tools import layerplots, naming, plots, rundir, stats  # noqa: E402
from normgpt_tools import report as rp  # noqa: E402


def summary_section(groups, base, holders) -> str:
    ghead = ["group", "runs", "final val loss", "best val loss",
             f"Δ final val vs {base.label}", "spikes", "tokens/s"]
    grows = []
    for g in groups:
        n = g.numbers
        runs = str(n["n"]) + (f", {n['n_diverged']} diverged" if n["n_diverged"] else "") + \
            (f", {n['n_running']} running" if n["n_running"] else "")
        grows.append([(rp.swatch(g), g.label), runs, (rp.mean_std(n["final_val"]),
                      n["final_val"].mean), (rp.mean_std(n["best_val"]), n["best_val"].mean),
                      (rp.esc(rp.diff_text(g, base)), n["diff"]), n["spikes"],
                      (rp.fmt_big(n["tokens_per_s"].mean), n["tokens_per_s"].mean)])
    seeds = sorted({g.numbers["final_val"].n for g in groups})
    note = (f"<p class=\"note\">Mean ± sample std over the runs of each group (diverged runs left "
            f"out of the means). Δ is the difference of mean final val loss to the baseline, ± "
            f"its standard error, with the two-sided p of Welch's t-test. <b>Seeds are few</b> "
            f"(n = {', '.join(map(str, seeds))} per group): p is a rough guide, and a difference "
            f"smaller than the spread between seeds is not evidence.</p>")
    rhead = ["run", "group", "seed", "status", "steps", "tokens", "final train", "final val",
             "best val", "spikes", "tokens/s"]
    rrows = []
    for r in rp.run_rows(groups):
        steps = f"{r['steps']}" + (f"/{r['total_steps']}" if r["total_steps"] else "")
        rrows.append([r["run"], r["group"], rp.fmt(r["seed"]), rp.status_cell(r["status"]),
                      (steps, r["steps"]), (rp.fmt_big(r["tokens"]), r["tokens"]),
                      (rp.fmt(r["final_train_loss"]), r["final_train_loss"]),
                      (rp.fmt(r["final_val_loss"]), r["final_val_loss"]),
                      (rp.fmt(r["best_val_loss"]), r["best_val_loss"]), r["spikes"],
                      (rp.fmt_big(r["tokens_per_s"]), r["tokens_per_s"])])
    return ("<h3>Groups</h3>" + rp.table(ghead, grows, left=2) + note + "<h3>Runs</h3>"
            + rp.table(rhead, rrows, left=4)
            + "<p class=\"note\">final train: the last step's train loss (not smoothed); final "
              "and best val: the last and the lowest eval row.</p>"
            + rp.placeholders_html(holders))


def curves_section(groups, args) -> str:
    sm = f"EMA-smoothed with weight {args.smooth:g} (debiased)" if args.smooth else "unsmoothed"
    return ("<h3>Train loss</h3>" + rp.img(plots.loss_figure(groups, "train", args.smooth,
                                                               args.logx), "train loss")
            + f"<p class=\"note\">Train loss {sm}; a group is its mean over runs with a min-max "
              "band (the mean over the runs that reached the step). Wall time is the sum of "
              "step times (eval and checkpoint time left out). The y range is cut a little above "
              "the initial losses so that a diverging run does not flatten the rest.</p>"
            + "<h3>Validation loss</h3>" + rp.img(plots.loss_figure(groups, "val", 0.0,
                                                                    args.logx), "val loss"))


def stability_section(groups, args) -> str:
    rows = []
    for g in groups:
        for e in g.entries:
            n = e.numbers
            sp = ", ".join(map(str, e.spikes[:12])) + (" …" if len(e.spikes) > 12 else "")
            rows.append([e.name, rp.status_cell(e.status), n["spikes"], sp or "–",
                         n["skipped_steps"],
                         "–" if e.nonfinite_step is None else str(e.nonfinite_step),
                         (rp.fmt(n["max_grad_norm"], 3), n["max_grad_norm"]),
                         (rp.fmt(n["median_grad_norm"], 3), n["median_grad_norm"]),
                         (rp.fmt(100 * n["clipped_frac"], 1), n["clipped_frac"])])
    rule = stats.spike_rule_text(args.spike_window, args.spike_ratio)
    return (f"<p class=\"note\">Spike rule: {rp.esc(rule)}. Divergence: summary status "
            "\"diverged\" or a non-finite train loss. Skipped steps: updates the run skipped "
            "(<code>train.on_divergence = skip</code>).</p>"
            + rp.table(["run", "status", "spikes", "spike steps", "skipped steps",
                        "first non-finite step",
                        "max grad norm", "median grad norm", "% steps clipped"], rows, left=4)
            + rp.img(plots.grad_figure(groups, args.smooth, args.logx), "gradient norm")
            + "<p class=\"note\">Gradient norm is the global norm before clipping; % clipped "
              "counts steps above optim.grad_clip.</p>")


def layers_section(groups, args) -> str:
    if not any(e.run.metrics.layers for g in groups for e in g.entries):
        return ("<p class=\"note\">No layer statistics in these runs: set "
                "<code>log.layer_stats_every</code> &gt; 0 to record them.</p>")
    parts = ["<h3>Residual stream growth with depth</h3>",
             rp.img(layerplots.growth_figure(groups, args.layer_steps), "residual RMS vs depth"),
             "<p class=\"note\">RMS of the residual stream after each block (and after each "
             "attention sublayer, at l+0.5) at several steps; mean over a group's runs.</p>",
             "<h3>Per-layer profile at the last logged step</h3>",
             rp.img(layerplots.depth_figure(groups), "per-layer statistics"),
             "<h3>Over training</h3>", rp.img(layerplots.time_figure(groups), "over training")]
    angles = layerplots.angle_figure(groups)
    if angles:
        parts += ["<h3>GeoNorm angles</h3>", rp.img(angles, "GeoNorm angles")]
    return "".join(parts)


def throughput_section(groups) -> str:
    rows = [[e.name, e.run.config.get("device", "–") if e.run.config else "–",
             (rp.fmt_big(e.numbers["tokens_per_s"]), e.numbers["tokens_per_s"]),
             (rp.fmt(e.numbers["step_ms"], 2), e.numbers["step_ms"]),
             (rp.fmt(e.numbers["wall_s"], 1), e.numbers["wall_s"])]
            for g in groups for e in g.entries]
    return (rp.table(["run", "device", "tokens/s", "step ms", "wall s"], rows, left=2)
            + "<p class=\"note\">Medians over train steps, the first 10% (at most 10 steps) left "
              "out as warm-up; wall s from summary.json (for a resumed run, its last part).</p>"
            + rp.img(plots.throughput_figure(groups), "throughput"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Details: docs/sweeps.md")
    ap.add_argument("runs", nargs="+", help="run directories or sweep directories")
    ap.add_argument("-o", "--out", required=True, help="report directory")
    ap.add_argument("--by", help="group by config keys, comma separated (shorthands: strategy, "
                                 "function, lr, depth, ...); default: runs differing only in seed")
    ap.add_argument("--smooth", type=float, default=0.8,
                    help="EMA weight for train curves, 0 to 1 exclusive (default 0.8; 0 = off)")
    ap.add_argument("--logx", action="store_true", help="log-scale x axes")
    ap.add_argument("--baseline", help="group label or run name to compare against "
                                       "(default: the first group)")
    ap.add_argument("--spike-window", type=int, default=stats.SPIKE_WINDOW,
                    help="spike rule: steps of the trailing median (default %(default)s)")
    ap.add_argument("--spike-ratio", type=float, default=stats.SPIKE_RATIO,
                    help="spike rule: a loss above ratio x the trailing median is a spike "
                         "(default %(default)s)")
    ap.add_argument("--layer-steps", type=int, default=4,
                    help="steps shown in the residual growth plot")
    ap.add_argument("--title", default="normgpt run comparison", help="report title")
    ap.add_argument("--running-window", type=float, default=rundir.RUNNING_WINDOW_S,
                    help="seconds: a run without summary.json whose metrics changed this "
                         "recently counts as running")
    args = ap.parse_args(argv)
    if not 0 <= args.smooth < 1:
        print("compare: error: --smooth: expected a weight in [0, 1)", file=sys.stderr)
        return 2
    by = [naming.expand_key(k.strip()) for k in args.by.split(",") if k.strip()] \
        if args.by else []
    try:
        runs, holders = cd.collect(args.runs, args.running_window)
        if not runs:
            raise cd.InputError("nothing to compare: " + "; ".join(
                f"{h.path}: {h.status} ({h.note})" for h in holders) if holders
                else "nothing to compare")
        groups = cd.make_groups(runs, by)
        for g in groups:
            for e in g.entries:
                cd.entry_numbers(e, args.spike_window, args.spike_ratio)
        base = cd.group_numbers(groups, args.baseline)
    except cd.InputError as e:
        print(f"compare: error: {e}", file=sys.stderr)
        return 2
    for h in holders:
        print(f"compare: warning: {h.path}: {h.status}" + (f" ({h.note})" if h.note else ""),
              file=sys.stderr)
    for r in runs:
        if r.metrics.bad_lines:
            print(f"compare: note: {r.path}/metrics.jsonl: {r.metrics.bad_lines} unreadable "
                  f"line(s) skipped", file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    entries = [e for g in groups for e in g.entries]
    diff_keys = cd.config_differences(entries)
    rows = rp.run_rows(groups)
    rp.write_csv(out / "summary.csv", rows,
                 {k: [e.run.flat.get(k) for e in entries] for k in diff_keys})
    rp.write_csv(out / "summary_groups.csv", rp.group_rows(groups, base))
    (out / "summary.md").write_text(rp.markdown(groups, base, args.title))
    counts = {}
    for e in entries:
        counts[e.status] = counts.get(e.status, 0) + 1
    meta = (f"{len(entries)} runs in {len(groups)} groups ("
            + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"); generated {rp.stamp()}"
            + (f"; grouped by {', '.join(by)}" if by else "; groups: runs differing only in seed")
            + "<br>inputs: " + ", ".join(rp.esc(p) for p in args.runs))
    sections = [
        ("summary", "Summary", summary_section(groups, base, holders)),
        ("curves", "Loss curves", curves_section(groups, args)),
        ("stability", "Stability", stability_section(groups, args)),
        ("layers", "Layer statistics", layers_section(groups, args)),
        ("throughput", "Throughput", throughput_section(groups)),
        ("config", "Config differences", rp.config_table(entries, diff_keys)),
    ]
    (out / "index.html").write_text(rp.page(args.title, sections, meta))
    print(f"compare: wrote {out / 'index.html'} ({len(entries)} runs, {len(groups)} groups), "
          f"summary.csv, summary_groups.csv, summary.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
