#!/usr/bin/python3
"""Run a sweep of normgpt trainings from a SPEC file; re-running the same command finishes it.

    scripts/sweep.py SPEC.json --out DIR [--parallel N] [--devices LIST] [--dry-run]

Each run of the SPEC (see scripts/normgpt_tools/spec.py and docs/sweeps.md) trains in DIR/<name>.
Runs already completed are skipped, interrupted ones resumed from their latest checkpoint (or
restarted when they have none), failed and diverged ones recorded in DIR/sweep.json and left
alone (--retry-failed runs failed ones again). Children run in the current directory, so relative
paths in configs (data.*) resolve against it, as for a plain `normgpt train`.

Exit status: 0 every run completed or diverged; 1 some run failed or did not finish; 2 bad SPEC
or usage; 130 stopped by Ctrl-C or SIGTERM/SIGHUP (running children are stopped and recorded as
interrupted).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shlex
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from normgpt_tools import configs, rundir  # noqa: E402
from normgpt_tools import spec as specmod  # noqa: E402
from normgpt_tools.sweepstate import (LOCK_FILE, CMD_FILE, LOG_FILE, Job, Plan,  # noqa: E402
                                      StatusLine, fmt_duration, load_records, plan_run,
                                      save_state, tail_step)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BINARY = os.environ.get("NORMGPT_BIN", str(ROOT / "build" / "normgpt"))


class UsageError(Exception):
    pass


@dataclass
class Slot:
    index: int
    device: str | None      # None: leave the config's device; "cpu"; or a GPU id such as "0"
    threads: int

    def describe(self) -> str:
        if self.device is None:
            return f"slot {self.index}"
        return "cpu" if self.device == "cpu" else f"cuda:{self.device}"


def parse_slots(devices: str | None, parallel: int | None, threads: int | None) -> list[Slot]:
    if devices:
        items = []
        for it in devices.split(","):
            it = it.strip().lower()
            if it.startswith("cuda:"):
                it = it[5:]
            if it != "cpu" and not it.isdigit():
                raise UsageError(f"--devices: bad device '{it}' (expected cpu, N or cuda:N)")
            items.append(it)
        n = parallel or len(items)
    else:
        items = [None]
        n = parallel or 1
    if n < 1:
        raise UsageError("--parallel: expected N >= 1")
    slots = [Slot(i, items[i % len(items)], 1) for i in range(n)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    for s in slots:
        s.threads = threads or max(1, (cores or 1) // n)
    return slots


def command(binary: str, sweep: specmod.Sweep, run: specmod.RunSpec, run_dir: Path,
            slot: Slot | None, resume: bool) -> tuple[list[str], dict[str, str]]:
    sets = list(run.sets)
    env: dict[str, str] = {}
    if slot is not None:
        env = {"OMP_NUM_THREADS": str(slot.threads), "OPENBLAS_NUM_THREADS": str(slot.threads)}
        if slot.device == "cpu":
            sets.append(("device", "cpu"))
        elif slot.device is not None:
            sets.append(("device", "cuda"))
            env["CUDA_VISIBLE_DEVICES"] = slot.device
    cmd = [binary, "train", "-c", str(sweep.base), "-o", str(run_dir)]
    for k, v in sets:
        cmd += ["--set", configs.set_arg(k, v)]
    if resume:
        cmd.append("--resume")
    return cmd, env


def shell_line(cmd: list[str], env: dict[str, str]) -> str:
    pre = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"cd {shlex.quote(os.getcwd())} && {pre + ' ' if pre else ''}{shlex.join(cmd)}"


def validate(binary: str, sweep: specmod.Sweep) -> dict[str, dict]:
    """Resolve every run's config with `normgpt info`; exit 2 listing the runs it rejects."""
    resolved: dict[str, dict] = {}
    errors: dict[str, list[str]] = {}
    for r in sweep.runs:
        cfg, err = configs.resolve_with_binary(binary, sweep.base, r.sets)
        if cfg is None:
            errors.setdefault(err, []).append(r.name)
        else:
            resolved[r.name] = cfg
    if errors:
        lines = []
        for err, names in errors.items():
            more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
            lines.append(f"{sweep.spec_path}: run {names[0]}{more}: {err}")
        raise specmod.SpecError("\n".join(lines))
    return resolved


def acquire_lock(out: Path):
    fh = open(out / LOCK_FILE, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        other = fh.read().strip() or "?"
        raise UsageError(f"another sweep (pid {other}) is running in {out}") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


def print_plan(plans: list[Plan], sweep, binary, out: Path, slots: list[Slot]) -> None:
    """The plan, with each run's command on the slot it would get if all took equally long."""
    k = 0
    for p in plans:
        slot = None
        if p.action in ("fresh", "resume"):
            slot, k = slots[k % len(slots)], k + 1
        cmd, env = command(binary, sweep, p.run, out / p.run.name, slot, p.action == "resume")
        print(f"{p.run.name}: {p.describe()}")
        if p.action in ("fresh", "resume"):
            print(f"    {shell_line(cmd, env)}")
    counts = {}
    for p in plans:
        counts[p.action] = counts.get(p.action, 0) + 1
    print(f"[sweep] dry run: {len(plans)} runs: " +
          ", ".join(f"{v} {k}" for k, v in counts.items()) +
          f"; {len(slots)} at once on " + ", ".join(s.describe() for s in slots))


class Runner:
    """Starts the planned runs on free slots, watches them, records their ends, stops them on a
    signal."""

    def __init__(self, args, sweep, plans, slots, out: Path):
        self.args, self.sweep, self.plans, self.slots, self.out = args, sweep, plans, slots, out
        self.stop_requested = 0
        self.t0 = time.time()
        self.status = StatusLine(sys.stderr)

    def save(self) -> None:
        save_state(self.out, self.sweep, [p.record for p in self.plans], self.args.binary)

    def on_signal(self, signum, _frame) -> None:
        self.stop_requested += 1
        if self.stop_requested == 1:
            self.status.event(f"[sweep] {signal.Signals(signum).name}: stopping the running "
                              f"runs (again to kill them now)")

    def start(self, plan: Plan, slot: Slot) -> Job:
        run_dir = self.out / plan.run.name
        run_dir.mkdir(parents=True, exist_ok=True)
        if plan.action == "fresh":
            for child in run_dir.iterdir():
                if child.name in (CMD_FILE, LOG_FILE):
                    continue
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        elif (run_dir / "summary.json").exists():
            # The binary rewrites summary.json only at the end: until then the old one (e.g.
            # "interrupted") would hide that the run is running again.
            os.replace(run_dir / "summary.json", run_dir / "summary.prev.json")
        cmd, env = command(self.args.binary, self.sweep, plan.run, run_dir, slot,
                           plan.action == "resume")
        rec = plan.record
        rec["attempts"] = rec.get("attempts", 0) + 1
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        (run_dir / CMD_FILE).write_text(
            f"# normgpt sweep {self.sweep.spec_path}: run {plan.run.name}, attempt "
            f"{rec['attempts']} ({plan.action}), {stamp}\n{shell_line(cmd, env)}\n")
        job = Job(plan, slot, cmd, env, run_dir)
        job.launch(stamp)
        rec.update(status="running", device=slot.describe(), started=stamp, rc=None, message="")
        self.status.event(f"[sweep] start {plan.run.name} ({plan.action}) on {slot.describe()}")
        return job

    def finish(self, job: Job, rc: int) -> None:
        rec = job.plan.record
        status, message = job.outcome(rc)
        summary = rundir.read_json(job.run_dir / "summary.json") or {}
        rec.update(status=status, rc=rc, message=message,
                   ended=time.strftime("%Y-%m-%d %H:%M:%S"),
                   wall_s=round(rec.get("wall_s", 0.0) + time.time() - job.t_start, 3))
        for k in ("steps", "final_val_loss", "best_val_loss", "final_train_loss"):
            if k in summary:
                rec[k] = summary[k]
        extra = f" val {summary['final_val_loss']:.4f}" if isinstance(
            summary.get("final_val_loss"), (int, float)) else ""
        self.status.event(f"[sweep] {status:<11} {job.plan.run.name}{extra} "
                          f"({fmt_duration(time.time() - job.t_start)})"
                          + (f": {message}" if message else ""))

    def loop(self) -> int:
        queue = [p for p in self.plans if p.action in ("fresh", "resume")]
        free = list(self.slots)
        running: list[Job] = []
        self.save()
        done_steps0 = {p.run.name: p.start_step for p in queue}
        last_save = time.time()
        while queue or running:
            if self.stop_requested:
                self.stop(running)
                self.save()
                self.status.final(self.summary_line(running, queue))
                return 130
            while queue and free:
                running.append(self.start(queue.pop(0), free.pop(0)))
                self.save()
            for job in list(running):
                rc = job.proc.poll()
                if rc is not None:
                    job.close()
                    self.finish(job, rc)
                    running.remove(job)
                    free.append(job.slot)
                    free.sort(key=lambda s: s.index)
                    self.save()
            for job in running:
                job.step = tail_step(job.run_dir / "metrics.jsonl", job.step)
            if time.time() - last_save > 10:
                self.save()
                last_save = time.time()
            self.status.update(self.summary_line(running, queue, done_steps0))
            time.sleep(0.1)
        self.save()
        self.status.final(self.summary_line([], []))
        return 0 if all(p.record["status"] in ("completed", "diverged") for p in self.plans) \
            else 1

    def stop(self, running: list[Job]) -> None:
        for job in running:
            job.signal(signal.SIGINT)
        deadline = time.time() + self.args.grace
        while running and time.time() < deadline and self.stop_requested < 2:
            running[:] = [j for j in running if j.proc.poll() is None or self._reap(j)]
            time.sleep(0.1)
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            for job in running:
                job.signal(sig)
            deadline = time.time() + wait
            while running and time.time() < deadline:
                running[:] = [j for j in running if j.proc.poll() is None or self._reap(j)]
                time.sleep(0.05)

    def _reap(self, job: Job) -> bool:
        job.close()
        self.finish(job, job.proc.returncode)
        return False

    def summary_line(self, running, queue, start_steps=None) -> str:
        st = [p.record["status"] for p in self.plans]
        n = len(st)
        fin = sum(s in ("completed", "diverged", "failed") for s in st)
        line = (f"[sweep] {fin}/{n} finished ({st.count('completed')} completed, "
                f"{st.count('diverged')} diverged, {st.count('failed')} failed), "
                f"{len(running)} running, {len(queue)} pending")
        if st.count("interrupted"):
            line += f", {st.count('interrupted')} interrupted"
        elapsed = time.time() - self.t0
        line += f", {fmt_duration(elapsed)} elapsed"
        if start_steps is not None and (running or queue):
            progressed = sum(max(0, j.step - start_steps.get(j.plan.run.name, 0))
                             for j in running)
            progressed += sum(p.total_steps - start_steps.get(p.run.name, 0)
                              for p in self.plans if p.record["status"] in
                              ("completed", "diverged", "failed") and p.run.name in start_steps)
            left = sum(max(0, j.plan.total_steps - j.step) for j in running)
            left += sum(max(0, p.total_steps - p.start_step) for p in queue)
            if progressed > 0 and elapsed > 1:
                line += f", ETA {fmt_duration(left * elapsed / progressed)}"
            else:
                line += ", ETA --"
        return line


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="SPEC format, names, resume rules: docs/sweeps.md")
    ap.add_argument("spec", help="sweep SPEC (JSON); its base path is relative to the current "
                                 "directory")
    ap.add_argument("--out", "-o", required=True, help="sweep directory: one run dir per run")
    ap.add_argument("--parallel", "-j", type=int, help="runs at once (default: one per device, "
                                                       "or 1)")
    ap.add_argument("--devices", help="comma list: cpu, or GPU ids (0,1 or cuda:0,cuda:1); "
                                      "slots take them round-robin. Default: the config's device")
    ap.add_argument("--threads", type=int, help="OMP threads per run (default cores / parallel)")
    ap.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    ap.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    ap.add_argument("--binary", default=DEFAULT_BINARY, help="normgpt executable "
                                                             "(default build/normgpt, $NORMGPT_BIN)")
    ap.add_argument("--grace", type=float, default=10.0, help="seconds a child gets to stop "
                                                              "after Ctrl-C before SIGTERM")
    args = ap.parse_args(argv)
    try:
        sweep = specmod.load(args.spec)
        slots = parse_slots(args.devices, args.parallel, args.threads)
        have_binary = os.access(args.binary, os.X_OK) and Path(args.binary).is_file()
        if not have_binary and not args.dry_run:
            raise UsageError(f"normgpt binary not found: {args.binary} (build it, or --binary)")
        if have_binary:
            args.binary = str(Path(args.binary).resolve()) if "/" in args.binary else args.binary
        resolved = validate(args.binary, sweep) if have_binary else {}
        out = Path(args.out).resolve()
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {args.out}: exists and is not a directory")
        lock = None
        if not args.dry_run:
            out.mkdir(parents=True, exist_ok=True)
            lock = acquire_lock(out)
        previous = load_records(out)
        plans = [plan_run(r, out / r.name, previous.get(r.name), resolved.get(r.name),
                          args.retry_failed) for r in sweep.runs]
    except (specmod.SpecError, UsageError) as e:
        print(f"sweep: error: {e}".replace("\n", "\nsweep: error: "), file=sys.stderr)
        return 2
    if args.dry_run:
        if not have_binary:
            print(f"[sweep] note: {args.binary} not found; configs not checked", file=sys.stderr)
        print_plan(plans, sweep, args.binary, out, slots)
        return 0
    runner = Runner(args, sweep, plans, slots, out)
    signal.signal(signal.SIGINT, runner.on_signal)
    signal.signal(signal.SIGTERM, runner.on_signal)
    signal.signal(signal.SIGHUP, runner.on_signal)
    for p in plans:
        if p.action not in ("fresh", "resume"):
            verb = "skip" if p.action == "skip" else "keep"
            runner.status.event(f"[sweep] {verb} {p.run.name}: {p.describe()}")
    try:
        return runner.loop()
    finally:
        lock.close()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:     # before any child was started
        print("\nsweep: interrupted", file=sys.stderr)
        sys.exit(130)
