"""Reading normgpt run directories: config.json, metrics.jsonl, summary.json, and the run's state.

States: completed | diverged | failed | interrupted (from summary.json); running (no summary, and
a live child pid in sweep.pid, or outside a sweep a recently modified metrics.jsonl); without a
summary, the sweep's record (interrupted, failed); stopped (metrics but no summary, and nothing
says it runs: a killed run); empty (no metrics rows yet).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import configs

RUNNING_WINDOW_S = 300.0   # metrics.jsonl modified this recently (and no summary) = running
PID_FILE = "sweep.pid"     # written by sweep.py while it runs the child; holds the child's pid

TRAIN_FIELDS = ("step", "tokens", "train_loss", "lr", "grad_norm", "step_ms", "tokens_per_s")


def _num(v) -> float:
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def read_jsonl(path: Path) -> tuple[list[dict], int]:
    """Rows of a JSONL file and the number of lines that did not parse (e.g. a partial last line
    of a running or killed run)."""
    rows, bad = [], 0
    try:
        data = path.read_bytes()
    except OSError:
        return [], 0
    for line in data.decode("utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), (int, float)):
            rows.append(row)
        else:
            bad += 1
    return rows, bad


@dataclass
class Metrics:
    """Curves of one run, sorted by step; when a step repeats (a run resumed from an earlier
    checkpoint), the later row wins."""
    train: dict[str, np.ndarray] = field(default_factory=dict)
    val_step: np.ndarray = field(default_factory=lambda: np.zeros(0))
    val_loss: np.ndarray = field(default_factory=lambda: np.zeros(0))
    layers: list[dict] = field(default_factory=list)   # [{"step": s, "layers": [...]}, ...]
    bad_lines: int = 0

    @property
    def n_train(self) -> int:
        return len(self.train.get("step", []))

    def val_tokens(self) -> np.ndarray:
        """Tokens seen before each eval: val_loss at step s is measured before step s's update."""
        return np.interp(self.val_step, *self._cum("tokens"))

    def val_time(self) -> np.ndarray:
        return np.interp(self.val_step, *self._cum("time_s"))

    def _cum(self, key: str):
        steps = self.train.get("step", np.zeros(0))
        if len(steps) == 0:
            return np.array([0.0, 1.0]), np.array([0.0, 0.0])
        return np.concatenate([[0.0], steps + 1.0]), np.concatenate([[0.0], self.train[key]])


def parse_metrics(path: Path) -> Metrics:
    rows, bad = read_jsonl(path)
    train: dict[int, dict] = {}
    evals: dict[int, float] = {}
    layers: dict[int, dict] = {}
    for r in rows:
        s = int(r["step"])
        if "train_loss" in r:
            train[s] = r
        elif "val_loss" in r:
            evals[s] = _num(r["val_loss"])
        elif isinstance(r.get("layers"), list):
            layers[s] = r
    m = Metrics(bad_lines=bad)
    steps = sorted(train)
    for f in TRAIN_FIELDS:
        m.train[f] = np.array([_num(train[s].get(f)) for s in steps], dtype=float)
    # train.on_divergence = skip marks the steps whose update was skipped
    m.train["skipped"] = np.array([1.0 if train[s].get("skipped") else 0.0 for s in steps])
    ms = np.nan_to_num(m.train["step_ms"], nan=0.0)
    m.train["time_s"] = np.cumsum(ms) / 1000.0
    m.val_step = np.array(sorted(evals), dtype=float)
    m.val_loss = np.array([evals[s] for s in sorted(evals)], dtype=float)
    m.layers = [layers[s] for s in sorted(layers)]
    return m


def looks_like_run(path: Path) -> bool:
    return any((path / f).exists() for f in ("config.json", "metrics.jsonl", "summary.json"))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def is_running(path: Path, window_s: float = RUNNING_WINDOW_S, in_sweep: bool = False) -> bool:
    """No summary.json, and a live child pid written by sweep.py; outside a sweep (no pid file
    is written there), a metrics.jsonl modified within window_s seconds."""
    if (path / "summary.json").exists():
        return False
    pid = read_pid(path / PID_FILE)
    if pid is not None:
        return pid_alive(pid)
    if in_sweep:
        return False
    try:
        age = time.time() - (path / "metrics.jsonl").stat().st_mtime
    except OSError:
        return False
    return age < window_s


def read_json(path: Path) -> dict | None:
    try:
        v = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return v if isinstance(v, dict) else None


@dataclass
class Run:
    path: Path
    name: str
    config: dict          # resolved config as written by the binary ({} if absent)
    summary: dict | None
    metrics: Metrics
    status: str
    note: str = ""        # e.g. why a run failed, from sweep.json

    @property
    def flat(self) -> dict:
        return configs.flatten(self.config)


def load_run(path: Path, window_s: float = RUNNING_WINDOW_S, sweep_record: dict | None = None
             ) -> Run:
    """sweep_record: the run's entry in its sweep's sweep.json, when it belongs to one."""
    path = Path(path)
    config = read_json(path / "config.json") or {}
    summary = read_json(path / "summary.json")
    metrics = parse_metrics(path / "metrics.jsonl")
    running = is_running(path, window_s, in_sweep=sweep_record is not None)
    note = (sweep_record or {}).get("message", "") or ""
    if summary and summary.get("status"):
        status = str(summary["status"])
    elif running:
        status = "running"
    elif metrics.n_train == 0 and len(metrics.val_step) == 0:
        status = "empty"
    elif sweep_record and sweep_record.get("status") in ("interrupted", "failed", "diverged"):
        status = sweep_record["status"]
    else:
        status = "stopped"
    return Run(path, path.name, config, summary, metrics, status, note)
