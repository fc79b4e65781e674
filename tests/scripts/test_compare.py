"""Tests for scripts/compare.py on synthetic run directories with known curves: table numbers,
the spike rule, grouping, missing/empty/partial/running runs, layer statistics, and the report
opened in headless Chromium."""

import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
COMPARE = SCRIPTS / "compare.py"
sys.path.insert(0, str(SCRIPTS))

from normgpt_tools import stats  # noqa: E402

VAL_STEPS = [0, 25, 50, 75, 100]


def make_run(root: Path, name: str, *, strategy="pre", function="layernorm", lr=1e-3, seed=1,
             steps=100, val=(5.5, 4.0, 3.5, 3.2, 3.0), spikes=(), status="completed",
             layers=False, geonorm=False, partial_line=False, tokens_per_step=256, n_layer=3,
             noise=0.0, total_steps=100, skipped=()) -> Path:
    """A run dir as normgpt writes it. Train loss 2 + 3.5·exp(-step/30) (times 1.5 at `spikes`),
    eval rows at VAL_STEPS with the losses `val`, layer rows every 25 steps."""
    d = root / name
    d.mkdir(parents=True)
    cfg = {"model": {"n_layer": n_layer, "d_model": 32}, "seed": seed,
           "norm": {"strategy": strategy, "function": function},
           "optim": {"lr": lr, "grad_clip": 1.0}, "train": {"steps": total_steps},
           "log": {"layer_stats_every": 25 if layers else 0}, "device": "cpu"}
    (d / "config.json").write_text(json.dumps(cfg))
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(steps):
        if s in VAL_STEPS:
            rows.append({"step": s, "val_loss": val[VAL_STEPS.index(s)]})
        if layers and s % 25 == 0:
            ls = []
            for l in range(n_layer):
                row = {"layer": l, "resid_rms_attn": 0.8 * (l + 1) * (1 + s / 100),
                       "resid_rms": (l + 1) * (1 + s / 100), "max_abs_attn": 5.0 * (l + 1),
                       "max_abs": 10.0 * (l + 1) * (1 + s / 50), "grad_norm": 0.1 / (l + 1),
                       "update_ratio": 1e-3 * (l + 1)}
                if geonorm:
                    row.update(angle_attn=0.5 / (l + 1), angle_mlp=0.3 / (l + 1),
                               clamped_attn=0.0, clamped_mlp=0.0)
                ls.append(row)
            rows.append({"step": s, "layers": ls})
        loss = 2 + 3.5 * math.exp(-s / 30) + noise * rng.standard_normal()
        if s in spikes:
            loss *= 1.5
        rows.append({"step": s, "tokens": (s + 1) * tokens_per_step, "train_loss": loss,
                     "lr": lr, "grad_norm": 0.5 + 0.01 * s, "step_ms": 10.0,
                     "tokens_per_s": tokens_per_step / 0.010})
        if s in skipped:
            rows[-1]["skipped"] = True
    if steps in VAL_STEPS:
        rows.append({"step": steps, "val_loss": val[VAL_STEPS.index(steps)]})
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    if partial_line:
        text += '{"step": 100, "train_lo'
    (d / "metrics.jsonl").write_text(text)
    if status:
        (d / "summary.json").write_text(json.dumps({
            "status": status, "steps": steps, "tokens": steps * tokens_per_step,
            "final_train_loss": rows[-1].get("train_loss"), "final_val_loss": val[-1],
            "best_val_loss": min(val), "wall_s": steps * 0.01, "tokens_per_s": 25600.0}))
    return d


def compare(*args):
    return subprocess.run([sys.executable, str(COMPARE), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def two_groups(root: Path) -> list[Path]:
    return [
        make_run(root, "pre-s1", seed=1, val=(5.5, 4.0, 3.5, 3.2, 3.0)),
        make_run(root, "pre-s2", seed=2, val=(5.5, 4.1, 3.6, 3.1, 3.2)),
        make_run(root, "peri-s1", strategy="peri", seed=1, val=(5.5, 3.9, 3.4, 3.0, 2.8)),
        make_run(root, "peri-s2", strategy="peri", seed=2, val=(5.5, 3.8, 3.3, 2.9, 2.9),
                 spikes=(30, 31, 60, 85), skipped=(60, 85)),
    ]


# ---- numbers -----------------------------------------------------------------------------------

def test_welch_and_t_distribution_against_reference_values():
    # t table: two-sided p for t=2, df=10 is 0.0734; t=1, df=1 is 0.5 (Cauchy).
    assert stats.t_two_sided_p(2.0, 10) == pytest.approx(0.073388, abs=1e-5)
    assert stats.t_two_sided_p(1.0, 1) == pytest.approx(0.5, abs=1e-9)
    w = stats.welch([1, 2, 3], [2, 3, 4, 5])   # scipy: t=-1.7321, p=0.1443
    assert w.t == pytest.approx(-1.7320508, abs=1e-6)
    assert w.p == pytest.approx(0.14429, abs=1e-4)
    assert stats.welch([1.0], [2.0, 3.0]) is None


def test_spike_rule_counts_planted_spikes_only():
    rng = np.random.default_rng(0)
    s = np.arange(300)
    loss = 2 + 3.5 * np.exp(-s / 60) + 0.03 * rng.standard_normal(300)
    assert stats.find_spikes(loss) == []
    for i in (50, 51, 52, 140, 250):
        loss[i] *= 1.4
    loss[200] = np.nan          # divergence-like point: not a spike
    assert stats.find_spikes(loss) == [50, 140, 250]
    assert stats.find_spikes(loss, ratio=1.5) == []


def test_ema_is_debiased_and_skips_nan():
    e = stats.ema(np.array([2.0, 2.0, np.nan, 2.0]), 0.9)
    assert e[0] == pytest.approx(2.0) and e[3] == pytest.approx(2.0) and math.isnan(e[2])


def test_tables_equal_known_values(tmp_path):
    runs = two_groups(tmp_path / "runs")
    r = compare(*runs, "-o", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    rows = {x["run"]: x for x in read_csv(tmp_path / "rep" / "summary.csv")}
    assert float(rows["pre-s2"]["final_val_loss"]) == 3.2
    assert float(rows["pre-s2"]["best_val_loss"]) == 3.1
    assert float(rows["peri-s1"]["final_val_loss"]) == 2.8
    assert int(rows["peri-s2"]["spikes"]) == 3     # 30-31 count once, 60, 85
    assert int(rows["pre-s1"]["spikes"]) == 0
    assert int(rows["peri-s2"]["skipped_steps"]) == 2 and int(rows["pre-s1"]["skipped_steps"]) == 0
    assert int(rows["pre-s1"]["steps"]) == 100 and int(rows["pre-s1"]["tokens"]) == 25600
    assert float(rows["pre-s1"]["final_train_loss"]) == pytest.approx(2 + 3.5 * math.exp(-99 / 30))
    assert float(rows["pre-s1"]["tokens_per_s"]) == pytest.approx(25600.0)
    assert rows["pre-s1"]["group"] == "pre-layernorm" and rows["peri-s2"]["group"] == \
        "peri-layernorm"
    # only the keys that differ become columns
    assert "norm.strategy" in rows["pre-s1"] and "seed" in rows["pre-s1"]
    assert "optim.lr" not in rows["pre-s1"]

    groups = {x["group"]: x for x in read_csv(tmp_path / "rep" / "summary_groups.csv")}
    pre, peri = groups["pre-layernorm"], groups["peri-layernorm"]
    assert float(pre["final_val_mean"]) == pytest.approx(3.1)
    assert float(pre["final_val_std"]) == pytest.approx(np.std([3.0, 3.2], ddof=1))
    assert float(pre["best_val_mean"]) == pytest.approx(3.05)
    assert float(peri["final_val_mean"]) == pytest.approx(2.85)
    assert float(peri["diff_vs_baseline"]) == pytest.approx(-0.25)
    assert float(pre["diff_vs_baseline"]) == 0.0 and pre["welch_p"] == ""
    w = stats.welch([2.8, 2.9], [3.0, 3.2])
    assert float(peri["welch_p"]) == pytest.approx(w.p)
    assert int(peri["runs"]) == 2

    md = (tmp_path / "rep" / "summary.md").read_text()
    assert "| pre-layernorm | 2 | 3.1000 ± 0.1414 |" in md
    assert "-0.2500 ±" in md and "Seeds are few" in md
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "Seeds are few" in html and "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html
    assert "No layer statistics in these runs" in html


def test_by_key_and_baseline(tmp_path):
    runs = two_groups(tmp_path / "runs")
    make_run(tmp_path / "runs", "peri-lr3", strategy="peri", lr=3e-3, seed=1)
    r = compare(tmp_path / "runs" / "pre-s1", tmp_path / "runs" / "peri-s1",
                tmp_path / "runs" / "peri-lr3", "-o", tmp_path / "rep")
    groups = [x["group"] for x in read_csv(tmp_path / "rep" / "summary_groups.csv")]
    assert groups == ["pre-layernorm-lr1e-3", "peri-layernorm-lr1e-3", "peri-layernorm-lr3e-3"]
    r = compare(*runs, tmp_path / "runs" / "peri-lr3", "-o", tmp_path / "rep2",
                "--by", "strategy", "--baseline", "peri")
    assert r.returncode == 0, r.stderr
    groups = {x["group"]: x for x in read_csv(tmp_path / "rep2" / "summary_groups.csv")}
    assert list(groups) == ["pre", "peri"]
    assert int(groups["peri"]["runs"]) == 3 and groups["pre"]["baseline"] == "peri"
    r = compare(*runs, "-o", tmp_path / "rep3", "--baseline", "nope")
    assert r.returncode == 2 and "--baseline nope: no such group" in r.stderr


def test_diverged_run_counted_and_left_out_of_means(tmp_path):
    a = make_run(tmp_path, "ok-s1", seed=1, val=(5.5, 4.0, 3.5, 3.2, 3.0))
    b = make_run(tmp_path, "boom-s2", seed=2, status="diverged", steps=60,
                 val=(5.5, 4.0, 3.5, 3.2, 3.0))
    rows = (b / "metrics.jsonl").read_text().splitlines()
    rows += [json.dumps({"step": 60, "tokens": 61 * 256, "train_loss": 1e12, "lr": 1e-3,
                         "grad_norm": 1e9, "step_ms": 10.0, "tokens_per_s": 25600.0}),
             json.dumps({"step": 61, "tokens": 62 * 256, "train_loss": None, "lr": 1e-3,
                         "grad_norm": None, "step_ms": 10.0, "tokens_per_s": 25600.0})]
    (b / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    r = compare(a, b, "-o", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    runs = {x["run"]: x for x in read_csv(tmp_path / "rep" / "summary.csv")}
    assert runs["boom-s2"]["status"] == "diverged" and runs["boom-s2"]["diverged"] == "True"
    assert runs["ok-s1"]["diverged"] == "False"
    g = read_csv(tmp_path / "rep" / "summary_groups.csv")
    assert len(g) == 1 and g[0]["diverged"] == "1" and float(g[0]["final_val_mean"]) == 3.0
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "<span class=\"bad\">diverged</span>" in html
    assert "<td>61</td>" in html     # first non-finite step


# ---- inputs ------------------------------------------------------------------------------------

def test_missing_dir_is_an_error(tmp_path):
    good = make_run(tmp_path, "a")
    r = compare(good, tmp_path / "nope", "-o", tmp_path / "rep")
    assert r.returncode == 2
    assert f"no such run directory: {tmp_path / 'nope'}" in r.stderr
    assert not (tmp_path / "rep").exists()


def test_empty_dirs_are_listed_not_plotted(tmp_path):
    good = make_run(tmp_path, "a")
    (tmp_path / "empty").mkdir()
    half = tmp_path / "started"
    half.mkdir()
    (half / "config.json").write_text("{}")
    (half / "metrics.jsonl").write_text("")
    r = compare(good, tmp_path / "empty", half, "-o", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    assert "empty" in r.stderr and "not a run directory" in r.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "Runs without data" in html and "started" in html
    assert [x["run"] for x in read_csv(tmp_path / "rep" / "summary.csv")] == ["a"]
    r = compare(tmp_path / "empty", "-o", tmp_path / "rep2")
    assert r.returncode == 2 and "nothing to compare" in r.stderr


def test_partial_line_running_and_stopped_runs(tmp_path):
    make_run(tmp_path, "done", partial_line=True)
    running = make_run(tmp_path, "running", status=None, steps=60, seed=2)
    stopped = make_run(tmp_path, "stopped", status=None, steps=40, seed=3)
    old = time.time() - 3600
    os.utime(stopped / "metrics.jsonl", (old, old))
    r = compare(tmp_path / "done", running, stopped, "-o", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    assert "1 unreadable line(s) skipped" in r.stderr
    rows = {x["run"]: x for x in read_csv(tmp_path / "rep" / "summary.csv")}
    assert rows["done"]["status"] == "completed" and rows["done"]["steps"] == "100"
    assert rows["running"]["status"] == "running" and rows["running"]["steps"] == "60"
    assert float(rows["running"]["final_val_loss"]) == 3.5     # eval at step 50 so far
    assert rows["stopped"]["status"] == "stopped"
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "<span class=\"run\">running</span>" in html
    assert "1 running" in html
    groups = read_csv(tmp_path / "rep" / "summary_groups.csv")
    assert len(groups) == 1 and groups[0]["running"] == "1" and groups[0]["runs"] == "3"


def test_sweep_dir_input(tmp_path):
    sw = tmp_path / "sweep"
    make_run(sw, "pre-s1")
    live = make_run(sw, "pre-s2", status=None, seed=2)
    (live / "sweep.pid").write_text(f"{os.getpid()}\n")        # a live process: running
    gone = make_run(sw, "pre-s3", status=None, seed=3)
    state = {"runs": [{"name": "pre-s1", "status": "completed"},
                      {"name": "pre-s2", "status": "running"},
                      {"name": "pre-s3", "status": "interrupted"},
                      {"name": "pre-s4", "status": "pending"},
                      {"name": "pre-s5", "status": "failed", "message": "exit 2: bad data"}]}
    (sw / "sweep.json").write_text(json.dumps(state))
    os.utime(gone / "metrics.jsonl", (time.time(), time.time()))
    r = compare(sw, "-o", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    rows = {x["run"]: x["status"] for x in read_csv(tmp_path / "rep" / "summary.csv")}
    assert rows == {"pre-s1": "completed", "pre-s2": "running", "pre-s3": "interrupted"}
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "pre-s4" in html and "exit 2: bad data" in html


def test_layer_statistics_sections(tmp_path):
    a = make_run(tmp_path, "pre", layers=True)
    b = make_run(tmp_path, "geo", strategy="geonorm", layers=True, geonorm=True)
    r = compare(a, b, "-o", tmp_path / "rep", "--logx", "--smooth", "0")
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "Residual stream growth with depth" in html and "GeoNorm angles" in html
    assert "No layer statistics" not in html and "No data for" not in html
    assert html.count("data:image/png;base64,") == 8


# ---- the report in a browser -------------------------------------------------------------------

def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def non_white_fraction(png: Path) -> float:
    import matplotlib.image as mpimg
    img = mpimg.imread(str(png))
    rgb = img[..., :3]
    return float(np.mean(np.any(rgb < 0.9, axis=-1)))


@pytest.mark.skipif(chromium() is None, reason="chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    runs = two_groups(tmp_path / "runs")
    runs.append(make_run(tmp_path / "runs", "geo", strategy="geonorm", layers=True,
                         geonorm=True))
    r = compare(*runs, "-o", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    url = (tmp_path / "rep" / "index.html").as_uri()
    flags = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--enable-logging=stderr", "--v=0"]
    shot = tmp_path / "shot.png"
    p = subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1200,2000", url],
                       capture_output=True, text=True, timeout=90)
    assert shot.exists(), p.stderr[-2000:]
    console = [ln for ln in p.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console, console
    assert non_white_fraction(shot) > 0.05
    # The page's own script ran without errors (it marks <body data-js="ok">).
    p = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=90)
    assert 'data-js="ok"' in p.stdout, p.stderr[-2000:]
    assert "<div id=\"jserrors\"></div>" in p.stdout
