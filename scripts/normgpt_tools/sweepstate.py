"""The sweep runner's bookkeeping: what to do with each run directory, child processes, the
status file DIR/sweep.json and the live status line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import configs, rundir
from .spec import RunSpec, Sweep

STATE_FILE = "sweep.json"
LOCK_FILE = ".sweep.lock"
CMD_FILE = "sweep_cmd.txt"
LOG_FILE = "sweep.log"      # the child's stderr, one header line per attempt

FINISHED = ("completed", "diverged", "failed")


def fmt_duration(s: float) -> str:
    s = int(round(max(0.0, s)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def tail_step(path: Path, default: int = 0) -> int:
    """Steps done according to the last train row of metrics.jsonl (its step + 1)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            lines = f.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return default
    for line in reversed(lines):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "train_loss" in row and isinstance(row.get("step"), int):
            return row["step"] + 1
    return default


def checkpoint_step(run_dir: Path, default: int = 0) -> int:
    """The step a resume starts from: checkpoints/latest names step_XXXXXXXX."""
    try:
        name = (run_dir / "checkpoints" / "latest").read_text().strip()
        return int(name.rsplit("_", 1)[-1])
    except (OSError, ValueError):
        return default


def config_mismatch(old: dict, new: dict) -> str:
    """First difference between two resolved configs in keys a resume may not change."""
    a, b = configs.flatten(old), configs.flatten(new)
    for k in sorted(set(a) | set(b)):
        if configs.is_bookkeeping(k) or k == "train.steps" or k.startswith("eval."):
            continue
        if a.get(k) != b.get(k):
            return f"{k} is {json.dumps(a.get(k))} there, the spec gives {json.dumps(b.get(k))}"
    return ""


@dataclass
class Plan:
    run: RunSpec
    action: str              # fresh | resume | skip (completed) | keep (failed, diverged)
    record: dict
    total_steps: int
    start_step: int = 0
    note: str = ""

    def describe(self) -> str:
        text = {"fresh": "run", "resume": f"resume from step {self.start_step}",
                "skip": "completed", "keep": self.record["status"]}[self.action]
        if self.action == "keep" and self.record["status"] == "running":
            text = "running"
        return text + (f" ({self.note})" if self.note else "")


def plan_run(run: RunSpec, run_dir: Path, prev: dict | None, resolved: dict | None,
             retry_failed: bool) -> Plan:
    """Decide what to do with one run from its directory and its previous sweep.json record."""
    cfg = resolved or run.config
    total = int(configs.get_path(cfg, "train.steps", 100) or 100)
    rec = {"name": run.name, "dir": run.name, "set": dict(run.sets),
           "status": "pending", "attempts": (prev or {}).get("attempts", 0)}
    for k in ("wall_s", "device", "started", "ended", "rc", "message"):
        if prev and k in prev:
            rec[k] = prev[k]
    pid = rundir.read_pid(run_dir / rundir.PID_FILE)
    if pid is not None and rundir.pid_alive(pid) and not (run_dir / "summary.json").exists():
        rec["status"] = "running"
        return Plan(run, "keep", rec, total, note=f"still running as pid {pid}, started by an "
                                                   f"earlier sweep: let it finish or stop it")
    if not run_dir.is_dir() or not rundir.looks_like_run(run_dir):
        if prev and prev.get("status") == "failed" and not retry_failed and run_dir.is_dir():
            rec["status"] = "failed"     # failed before writing anything, e.g. bad data path
            return Plan(run, "keep", rec, total, note="--retry-failed runs it again")
        return Plan(run, "fresh", rec, total)
    old_cfg = rundir.read_json(run_dir / "config.json")
    if old_cfg and resolved:
        diff = config_mismatch(old_cfg, resolved)
        if diff:
            rec.update(status="failed", message=f"{run_dir} holds a different run ({diff}); "
                                                f"remove it or use another --out")
            return Plan(run, "keep", rec, total, note=rec["message"])
    summary = rundir.read_json(run_dir / "summary.json") or {}
    status = summary.get("status")
    has_ckpt = (run_dir / "checkpoints" / "latest").exists()
    done = tail_step(run_dir / "metrics.jsonl")
    for k in ("steps", "final_val_loss", "best_val_loss", "final_train_loss"):
        if k in summary:
            rec[k] = summary[k]
    if status == "completed":
        rec["status"] = "completed"
        note = ""
        if summary.get("steps") not in (None, total):
            note = f"completed {summary.get('steps')} steps, the spec asks {total}; left as is"
        return Plan(run, "skip", rec, total, done, note)
    if status == "diverged":
        rec["status"] = "diverged"
        return Plan(run, "keep", rec, total, done)
    failed = status == "failed" or (not status and prev and prev.get("status") == "failed")
    if failed and not retry_failed:
        rec["status"] = "failed"
        return Plan(run, "keep", rec, total, done, "--retry-failed runs it again")
    if has_ckpt:
        return Plan(run, "resume", rec, total, checkpoint_step(run_dir, done))
    return Plan(run, "fresh", rec, total, 0, "no checkpoint: restarted from step 0")


def load_records(out: Path) -> dict[str, dict]:
    state = rundir.read_json(out / STATE_FILE) or {}
    return {r["name"]: r for r in state.get("runs", []) if isinstance(r, dict) and "name" in r}


def save_state(out: Path, sweep: Sweep, records: list[dict], binary: str) -> None:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    state = {"spec_path": str(sweep.spec_path.resolve()), "spec": sweep.spec,
             "base": str(sweep.base), "binary": binary, "cwd": os.getcwd(),
             "updated": time.strftime("%Y-%m-%d %H:%M:%S"), "counts": counts, "runs": records}
    tmp = out / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp, out / STATE_FILE)


@dataclass
class Job:
    plan: Plan
    slot: object
    cmd: list[str]
    env: dict[str, str]
    run_dir: Path
    proc: subprocess.Popen | None = None
    log: object = None
    t_start: float = 0.0
    step: int = 0
    stopped: bool = False      # we sent it a signal (Ctrl-C): its end is an interruption

    @staticmethod
    def _die_with_parent() -> None:
        """In the child before exec: SIGTERM it if the sweep dies (Linux prctl PDEATHSIG), so
        that a killed sweep leaves no orphan training into its directories."""
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def launch(self, stamp: str) -> None:
        self.log = open(self.run_dir / LOG_FILE, "a")
        self.log.write(f"--- {stamp} attempt {self.plan.record['attempts']}: "
                       f"{' '.join(self.cmd)}\n")
        self.log.flush()
        self.step = self.plan.start_step
        self.t_start = time.time()
        # A session of its own: the terminal's Ctrl-C reaches only the sweep, which then stops
        # each child in order.
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log,
                                     env={**os.environ, **self.env}, start_new_session=True,
                                     preexec_fn=self._die_with_parent)
        (self.run_dir / rundir.PID_FILE).write_text(f"{self.proc.pid}\n")

    def signal(self, sig: int) -> None:
        self.stopped = True
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        if self.log:
            self.log.close()
            self.log = None
        try:
            (self.run_dir / rundir.PID_FILE).unlink()
        except OSError:
            pass

    def last_error(self) -> str:
        try:
            lines = (self.run_dir / LOG_FILE).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        for line in reversed(lines):
            if line.startswith("--- "):
                return ""
            if line.strip():
                return line.strip()[:300]
        return ""

    def outcome(self, rc: int) -> tuple[str, str]:
        summary = rundir.read_json(self.run_dir / "summary.json") or {}
        st = summary.get("status")
        if rc == 0 and st in ("completed", "interrupted", "diverged", "failed"):
            return st, ""
        if rc == 3:
            return "diverged", self.last_error()
        if self.stopped:
            return "interrupted", ""
        if rc == 0:
            return "failed", "exited 0 without a summary.json"
        if rc < 0:
            return "failed", f"killed by signal {signal.Signals(-rc).name}"
        return "failed", f"exit {rc}: {self.last_error()}"


class StatusLine:
    """One live line on a terminal (redrawn in place); on a pipe, a line every 30 s."""

    def __init__(self, stream=sys.stderr, every_s: float = 30.0):
        self.stream = stream
        self.tty = stream.isatty()
        self.every_s = every_s
        self.last_print = 0.0
        self.current = ""

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def update(self, line: str) -> None:
        self.current = line
        if self.tty:
            self._write("\r" + line + "\x1b[K")
        elif time.time() - self.last_print >= self.every_s:
            self.last_print = time.time()
            self._write(line + "\n")

    def event(self, line: str) -> None:
        if self.tty:
            self._write("\r\x1b[K" + line + "\n" + (self.current or ""))
        else:
            self._write(line + "\n")

    def final(self, line: str) -> None:
        self._write(("\r\x1b[K" if self.tty else "") + line + "\n")
