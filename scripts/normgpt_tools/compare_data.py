"""The comparison report's data: which runs (run dirs, or every run of a sweep dir), their
groups, and the per-run and per-group numbers that the tables, CSV and plots show."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import configs, naming, rundir, stats


class InputError(Exception):
    pass


@dataclass
class Placeholder:
    """A run listed without data: an empty run dir, or a sweep run not started or failed early."""
    name: str
    path: Path | None
    status: str
    note: str = ""


@dataclass
class Entry:
    run: rundir.Run
    name: str
    group: str = ""
    seed: object = None
    spikes: list[int] = field(default_factory=list)       # steps where spikes start
    nonfinite_step: int | None = None
    numbers: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.run.status


@dataclass
class Group:
    label: str
    entries: list[Entry]
    color: str = "C0"
    numbers: dict = field(default_factory=dict)


def _run_dirs_of_sweep(path: Path) -> tuple[list[Path], list[Placeholder]]:
    state = rundir.read_json(path / SWEEP_STATE) or {}
    order = [r.get("dir") or r.get("name") for r in state.get("runs", []) if isinstance(r, dict)]
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    found = {p.name: p for p in subdirs if rundir.looks_like_run(p)}
    dirs = [found[n] for n in order if n in found]
    dirs += [p for n, p in found.items() if n not in order]
    holders = []
    for r in state.get("runs", []):
        name = r.get("dir") or r.get("name")
        if isinstance(r, dict) and name and name not in found:
            holders.append(Placeholder(name, path / name, r.get("status", "pending"),
                                       r.get("message", "")))
    return dirs, holders


SWEEP_STATE = "sweep.json"


def sweep_record(run_dir: Path) -> dict | None:
    """The run's record in the sweep.json of its parent directory, if any."""
    state = rundir.read_json(run_dir.parent / SWEEP_STATE)
    if not state:
        return None
    for r in state.get("runs", []):
        if isinstance(r, dict) and (r.get("dir") or r.get("name")) == run_dir.name:
            return r
    return {}


def collect(paths: list[str], window_s: float) -> tuple[list[rundir.Run], list[Placeholder]]:
    """Load every input: a run dir, or a sweep dir (its run dirs in sweep.json order). Missing
    paths are an error; empty run dirs become placeholders."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise InputError("no such run directory: " + ", ".join(missing))
    notdir = [p for p in paths if not Path(p).is_dir()]
    if notdir:
        raise InputError("not a directory: " + ", ".join(notdir))
    runs: list[rundir.Run] = []
    holders: list[Placeholder] = []
    seen: set[Path] = set()
    unique = []
    for p in map(Path, paths):
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    for p in unique:
        if rundir.looks_like_run(p):
            dirs = [p]
        elif (p / "sweep.json").exists() or any(
                rundir.looks_like_run(c) for c in p.iterdir() if c.is_dir()):
            dirs, ph = _run_dirs_of_sweep(p)
            holders += ph
        else:
            holders.append(Placeholder(p.name, p, "empty", "no config.json, metrics.jsonl or "
                                                           "summary.json: not a run directory"))
            continue
        for d in dirs:
            if d != p and d.resolve() in seen:
                continue
            seen.add(d.resolve())
            r = rundir.load_run(d, window_s, sweep_record(d))
            if r.metrics.n_train == 0 and len(r.metrics.val_step) == 0:
                note = r.note or ("started, no metrics yet" if r.status == "running"
                                  else "no metrics rows")
                holders.append(Placeholder(d.name, d, r.status, note))
            else:
                runs.append(r)
    # Unique names: a run dir's name, with its parent's when two share one.
    names = [r.path.name for r in runs]
    for r in runs:
        r.name = r.path.name if names.count(r.path.name) == 1 else \
            f"{r.path.parent.name}/{r.path.name}"
    return runs, holders


def group_key_of(flat: dict, by: list[str]) -> tuple:
    if by:
        return tuple(json.dumps(flat.get(k, "(unset)"), sort_keys=True) for k in by)
    return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in flat.items()
                        if k != naming.SEED and not configs.is_bookkeeping(k)))


def make_groups(runs: list[rundir.Run], by: list[str]) -> list[Group]:
    """Runs that differ only in seed (and bookkeeping keys) form a group; with `by`, runs with the
    same values of those keys do."""
    keyed: dict[tuple, list[rundir.Run]] = {}
    for r in runs:
        key = group_key_of(r.flat, by) if r.config else (("__run__", r.name),)
        keyed.setdefault(key, []).append(r)
    reps = [members[0].flat for members in keyed.values()]
    if by:
        labels = []
        for flat in reps:
            toks = [naming.format_value(flat.get(k, "unset")) if k in (naming.STRATEGY,
                    naming.FUNCTION) else naming.key_token(k, flat.get(k, "unset")) for k in by]
            labels.append("-".join(toks))
    else:
        trimmed = [{k: v for k, v in f.items() if not configs.is_bookkeeping(k)
                    and k != naming.SEED} for f in reps]
        keys = naming.distinguishing_keys(trimmed, naming.varying_keys(trimmed))
        labels = [naming.label(f, keys, with_seed=False) if m[0].config else m[0].name
                  for f, m in zip(reps, keyed.values())]
    labels = naming.unique_names(labels)
    groups = []
    for i, (label, members) in enumerate(zip(labels, keyed.values())):
        entries = [Entry(r, r.name, label, r.flat.get(naming.SEED)) for r in members]
        groups.append(Group(label, entries, f"C{i % 10}"))
    return groups


def _finite_last(a: np.ndarray) -> float:
    f = a[np.isfinite(a)]
    return float(f[-1]) if len(f) else math.nan


def entry_numbers(e: Entry, spike_window: int, spike_ratio: float) -> None:
    run, m = e.run, e.run.metrics
    s = run.summary or {}
    tr = m.train
    loss = tr.get("train_loss", np.zeros(0))
    steps = tr.get("step", np.zeros(0))
    n = len(loss)
    idx = stats.find_spikes(loss, spike_window, spike_ratio)
    e.spikes = [int(steps[i]) for i in idx]
    bad = stats.first_nonfinite(loss)
    e.nonfinite_step = int(steps[bad]) if bad is not None else None

    def summ(k):
        v = s.get(k)
        return float(v) if isinstance(v, (int, float)) and v is not None else math.nan

    final_val = float(m.val_loss[-1]) if len(m.val_loss) else summ("final_val_loss")
    best_val = float(np.nanmin(m.val_loss)) if len(m.val_loss) and np.isfinite(
        m.val_loss).any() else summ("best_val_loss")
    gn = tr.get("grad_norm", np.zeros(0))
    clip = configs.get_path(run.config, "optim.grad_clip")
    tps = tr.get("tokens_per_s", np.zeros(0))
    skip = min(10, n // 10) if n >= 4 else 0   # leave out warm-up steps
    total = configs.get_path(run.config, "train.steps")
    e.numbers = {
        "steps": int(steps[-1]) + 1 if n else int(s.get("steps") or 0),
        "total_steps": int(total) if isinstance(total, int) else None,
        "tokens": int(tr["tokens"][-1]) if n and np.isfinite(tr["tokens"][-1])
        else summ("tokens"),
        "final_train_loss": float(loss[-1]) if n else summ("final_train_loss"),
        "final_val_loss": final_val,
        "best_val_loss": best_val,
        "spikes": len(e.spikes),
        "skipped_steps": int(tr["skipped"].sum()) if n else int(s.get("skipped_steps") or 0),
        "max_grad_norm": float(np.nanmax(gn)) if n and np.isfinite(gn).any() else math.nan,
        "median_grad_norm": float(np.nanmedian(gn)) if n and np.isfinite(gn).any() else math.nan,
        "clipped_frac": (float(np.mean(gn[np.isfinite(gn)] > clip))
                         if n and isinstance(clip, (int, float)) and clip > 0
                         and np.isfinite(gn).any() else math.nan),
        "tokens_per_s": float(np.nanmedian(tps[skip:])) if n and np.isfinite(tps).any()
        else summ("tokens_per_s"),
        "step_ms": float(np.nanmedian(tr["step_ms"][skip:])) if n else math.nan,
        "wall_s": summ("wall_s") if s else (float(tr["time_s"][-1]) if n else math.nan),
        "diverged": run.status == "diverged" or e.nonfinite_step is not None,
    }


def group_numbers(groups: list[Group], baseline: str | None) -> Group | None:
    """Mean ± std over seeds of final and best val loss; the difference of each group's final val
    loss to the baseline group with Welch's t-test. Diverged runs are left out of the means."""
    for g in groups:
        ok = [e for e in g.entries if not e.numbers["diverged"]]
        g.numbers = {
            "n": len(g.entries),
            "n_diverged": sum(e.numbers["diverged"] for e in g.entries),
            "n_running": sum(e.status == "running" for e in g.entries),
            "final_val": stats.describe([e.numbers["final_val_loss"] for e in ok]),
            "best_val": stats.describe([e.numbers["best_val_loss"] for e in ok]),
            "final_train": stats.describe([e.numbers["final_train_loss"] for e in ok]),
            "tokens_per_s": stats.describe([e.numbers["tokens_per_s"] for e in g.entries]),
            "spikes": sum(e.numbers["spikes"] for e in g.entries),
        }
    if not groups:
        return None
    base = groups[0]
    if baseline:
        match = [g for g in groups if g.label == baseline] or \
                [g for g in groups if any(e.name == baseline for e in g.entries)]
        if not match:
            raise InputError(f"--baseline {baseline}: no such group or run (groups: "
                             + ", ".join(g.label for g in groups) + ")")
        base = match[0]
    bvals = [e.numbers["final_val_loss"] for e in base.entries if not e.numbers["diverged"]]
    for g in groups:
        vals = [e.numbers["final_val_loss"] for e in g.entries if not e.numbers["diverged"]]
        g.numbers["diff"] = g.numbers["final_val"].mean - base.numbers["final_val"].mean
        g.numbers["welch"] = None if g is base else stats.welch(vals, bvals)
    return base


def config_differences(entries: list[Entry]) -> list[str]:
    """Config keys whose values differ between the runs (seed included)."""
    return naming.varying_keys([e.run.flat for e in entries if e.run.config])
