"""Tests for the GPU benchmark without a GPU: scripts/bench_gpu_report.py (MFU arithmetic, peak
rates, JSON schema, Markdown table), scripts/bench_gpu.sh (arguments; the GPU path with stand-ins
for nvidia-smi, normgpt and PyTorch; the --smoke run on the CPU with the real binary) and
scripts/bench_gpu_torch.py (no torch needed to fail cleanly; its model equals the PyTorch twin)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
SH = SCRIPTS / "bench_gpu.sh"
REPORT = SCRIPTS / "bench_gpu_report.py"
TORCH_SCRIPT = SCRIPTS / "bench_gpu_torch.py"
BINARY = ROOT / "build" / "normgpt"
PY = sys.executable


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


rep = load("bench_gpu_report", REPORT)

ISSUE_ROW_KEYS = {"strategy", "tokens_per_s", "mfu", "step_ms", "peak_mem_gb", "pytorch_tokens_per_s"}
GPT2_N = 124_475_904          # `normgpt info` on configs/gpt2_124m/pre.json (padded vocabulary)
GPT2_FPT = 6 * GPT2_N + 12 * 12 * 1024 * 768


# ------------------------------------------------------------------------------------------------
# Arithmetic and lookups.

def test_peak_rate_lookup():
    assert rep.peak_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert rep.peak_tflops("NVIDIA H100 SXM5 80GB") == 989.4
    assert rep.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert rep.peak_tflops("NVIDIA H200") == 989.4
    assert rep.peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert rep.peak_tflops("NVIDIA A100 80GB PCIe") == 312.0
    # Known variants without a rate in the table, unknown GPUs and CPUs: no MFU.
    assert rep.peak_tflops("NVIDIA H100 NVL") is None
    assert rep.peak_tflops("NVIDIA GeForce RTX 4090") is None
    assert rep.peak_tflops("cpu (smoke)") is None
    assert rep.peak_tflops("") is None and rep.peak_tflops(None) is None


def test_flops_per_token_and_mfu():
    assert rep.gpt2_params_padded(12, 768, 1024, 50304) == GPT2_N
    fpt = rep.flops_per_token(GPT2_N, 12, 1024, 768)
    assert fpt == GPT2_FPT == 860_101_632
    # 350K tokens/s on an H100 SXM: 350e3 * 860.1e6 / 989.4e12 = 30.4%.
    assert rep.mfu(350_000, fpt, 989.4) == pytest.approx(350_000 * 860_101_632 / 989.4e12)
    assert rep.mfu(350_000, fpt, 989.4) == pytest.approx(0.30426, abs=1e-5)
    assert rep.mfu(None, fpt, 989.4) is None
    assert rep.mfu(350_000, fpt, None) is None


def test_step_measure_skips_warmup_and_takes_the_median():
    rows = [{"step": s, "step_ms": ms, "tokens_per_s": 1024 / ms * 1e3, "train_loss": 1.0}
            for s, ms in enumerate([5000.0, 900.0, 100.0, 120.0, 110.0, 300.0])]
    m = rep.step_measure(rows, skip=2)
    assert m["steps_measured"] == 4
    assert m["step_ms"] == 115.0
    assert m["tokens_per_s"] == pytest.approx(1024 / 0.115)
    assert rep.step_measure(rows[:2], skip=2) == {"step_ms": None, "tokens_per_s": None,
                                                  "steps_measured": 0}


def test_slug():
    assert rep.slug("NVIDIA H100 80GB HBM3") == "h100-80gb-hbm3"
    assert rep.slug("cpu (smoke)") == "cpu-smoke"


# ------------------------------------------------------------------------------------------------
# The report on a hand-made runs directory.

def write_runs(root: Path, strategies: dict, torch_results: dict | None = None,
               mode: str = "gpu") -> Path:
    """strategies: name -> list of step_ms (or None for a failed run)."""
    root.mkdir(parents=True)
    B, T, A = 16, 1024, 32
    (root / "bench.json").write_text(json.dumps({
        "mode": mode, "config_dir": "configs/gpt2_124m", "n_layer": 12, "d_model": 768,
        "n_head": 12, "seq_len": T, "vocab_size": 50257, "padded_vocab": 50304,
        "norm_function": "layernorm", "batch_size": B, "grad_accum": A,
        "tokens_per_step": B * T * A, "steps": 6, "warmup_steps": 2, "device_setting": "cuda",
        "data": "random", "no_torch": torch_results is None}))
    for i, (name, times) in enumerate(strategies.items(), 1):
        d = root / f"{i:02d}-{name}"
        (d / "normgpt").mkdir(parents=True)
        (d / "spec.json").write_text(json.dumps({"order": i, "strategy": name, "batch_size": B,
                                                 "grad_accum": A,
                                                 "config": f"configs/gpt2_124m/{name}.json"}))
        if times is None:
            (d / "normgpt.rc").write_text("2\n")
            (d / "normgpt.log").write_text("normgpt: error: out of luck\n")
        else:
            (d / "normgpt.rc").write_text("0\n")
            rows = [{"step": s, "tokens": (s + 1) * B * T * A, "train_loss": 10.8, "lr": 1e-4,
                     "grad_norm": 1.0, "step_ms": ms, "tokens_per_s": B * T * A / ms * 1e3}
                    for s, ms in enumerate(times)]
            (d / "normgpt" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        n = GPT2_N + (4 * 12 * 768 if name == "peri" else 0)
        (d / "info.txt").write_text(f"tensor  shape  parameters\ntotal   {n}  ({n / 1e6:.3f}M)\n")
        (d / "mem_baseline.txt").write_text("1000\n")
        (d / "mem.csv").write_text("1000\n20000\n31000\n30000\n")
        if torch_results is not None and name in torch_results:
            (d / "torch.json").write_text(json.dumps(torch_results[name]))
    return root


def torch_ok(tps, ms, mem=20.5):
    return {"strategy": "x", "tokens_per_s": tps, "step_ms": ms, "peak_mem_gb": mem,
            "error": None, "batch_size": 16, "grad_accum": 32, "torch_version": "2.5.1",
            "compile": True, "dtype": "bf16", "adamw": "fused",
            "ops": {"attention": "F.scaled_dot_product_attention(is_causal=True)"}}


def run_report(runs: Path, out: Path, *extra):
    return subprocess.run([PY, str(REPORT), "--runs-dir", str(runs), "--out", str(out),
                           "--device", "NVIDIA H100 80GB HBM3", "--driver", "550.54.15",
                           "--commit", "abc1234", "--date", "2026-01-02", *extra],
                          capture_output=True, text=True, timeout=60)


def test_report_json_schema_mfu_and_markdown(tmp_path):
    runs = write_runs(tmp_path / "runs", {
        "pre": [9000.0, 3000.0, 1000.0, 1000.0, 1100.0, 1000.0],
        "peri": [9000.0, 3000.0, 1040.0, 1040.0, 1040.0, 1040.0],
        "geonorm": [9000.0, 3000.0, 1200.0, 1200.0, 1200.0, 1200.0],
    }, torch_results={
        "pre": torch_ok(500_000.0, 1048.576),
        "peri": torch_ok(480_000.0, 1092.27),
        "geonorm": {"strategy": "geonorm", "tokens_per_s": None, "step_ms": None,
                    "peak_mem_gb": None, "error": "out of memory at B 1: CUDA out of memory"},
    })
    out = tmp_path / "bench"
    res = run_report(runs, out)
    assert res.returncode == 0, res.stderr
    jpath = out / "2026-01-02-h100-80gb-hbm3-abc1234.json"
    mpath = out / "2026-01-02-h100-80gb-hbm3-abc1234.md"
    assert jpath.exists() and mpath.exists()
    doc = json.loads(jpath.read_text())
    assert {"device", "driver", "commit", "config", "rows"} <= set(doc)
    assert doc["device"] == "NVIDIA H100 80GB HBM3" and doc["driver"] == "550.54.15"
    assert doc["commit"] == "abc1234" and doc["peak_tflops_bf16"] == 989.4
    assert doc["config"]["tokens_per_step"] == 524_288 and doc["config"]["n_layer"] == 12
    assert "6N + 12*L*T*d" in doc["mfu_formula"]
    rows = {r["strategy"]: r for r in doc["rows"]}
    assert [r["strategy"] for r in doc["rows"]] == ["pre", "peri", "geonorm"]
    for r in doc["rows"]:
        assert ISSUE_ROW_KEYS <= set(r)
    pre = rows["pre"]
    assert pre["step_ms"] == 1000.0 and pre["steps_measured"] == 4
    assert pre["tokens_per_s"] == pytest.approx(524_288.0)
    assert pre["params"] == GPT2_N and pre["flops_per_token"] == GPT2_FPT
    assert pre["mfu"] == pytest.approx(524_288 * GPT2_FPT / 989.4e12)
    assert pre["peak_mem_gb"] == pytest.approx(30_000 * 1048576 / 1e9)
    assert pre["peak_mem_source"].startswith("nvidia-smi")
    assert pre["pytorch_tokens_per_s"] == 500_000.0
    assert pre["ratio_to_pytorch"] == pytest.approx(524_288 / 500_000)
    assert pre["pytorch_mfu"] == pytest.approx(500_000 * GPT2_FPT / 989.4e12)
    peri = rows["peri"]
    assert peri["params"] == GPT2_N + 4 * 12 * 768  # its own N, from its info.txt
    assert peri["step_vs_pre"] == pytest.approx(1.04)
    geo = rows["geonorm"]
    assert geo["pytorch_tokens_per_s"] is None and "out of memory" in geo["pytorch_error"]
    assert geo["step_vs_pre"] == pytest.approx(1.2)
    t = doc["targets"]
    assert t["pre_tokens_per_s_met"] is True
    assert t["every_strategy_at_least_pytorch_met"] is None  # geonorm has no PyTorch number
    assert t["every_strategy_within_5pct_of_pre_met"] is False  # geonorm is 1.2x

    md = mpath.read_text()
    assert md == mpath.read_text() and md.startswith("# normgpt GPU benchmark")
    lines = md.splitlines()
    header = next(i for i, l in enumerate(lines) if l.startswith("| strategy |"))
    assert "vs pre" in lines[header] and "vs PyTorch" in lines[header] and "MFU" in lines[header]
    pre_line = lines[header + 2]
    cells = [c.strip() for c in pre_line.strip("|").split("|")]
    assert cells[:6] == ["pre", "524,288", "45.6%", "1000.0", "1.000x", "31.46"]
    assert cells[6:8] == ["500,000", "1.049x"]
    assert "| peri |" in md and "1.040x" in md
    assert "geonorm: PyTorch: out of memory" in md
    assert "2026-01-02-h100-80gb-hbm3-abc1234.json" in md
    assert "NOT met" in md
    # Printed too.
    assert "| pre | 524,288 | 45.6% |" in res.stdout

    # A second run the same day: a new JSON, the Markdown gets a second section.
    res = run_report(runs, out)
    assert res.returncode == 0, res.stderr
    assert (out / "2026-01-02-h100-80gb-hbm3-abc1234-2.json").exists()
    md2 = mpath.read_text()
    assert md2.startswith(md) and md2.count("\n## 2026-01-02") == 2
    assert "abc1234-2.json" in md2


def test_report_failed_normgpt_run_is_recorded_and_exits_1(tmp_path):
    runs = write_runs(tmp_path / "runs", {"pre": [1.0, 1.0, 1.0, 1.0], "post": None})
    res = run_report(runs, tmp_path / "out", "--peak-tflops", "100")
    assert res.returncode == 1
    doc = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert doc["peak_tflops_bf16"] == 100.0
    post = doc["rows"][1]
    assert post["tokens_per_s"] is None and post["mfu"] is None and post["step_ms"] is None
    assert post["normgpt_error"] == "normgpt: error: out of luck"
    assert post["pytorch_error"].startswith("not run")
    assert "post: normgpt failed: normgpt: error: out of luck" in res.stdout


def test_report_prefers_normgpt_peak_memory(tmp_path):
    runs = write_runs(tmp_path / "runs", {"pre": [1.0, 1.0, 1.0, 1.0]})
    (runs / "01-pre" / "normgpt" / "summary.json").write_text(json.dumps({"peak_mem_gb": 12.5}))
    res = run_report(runs, tmp_path / "out")
    assert res.returncode == 0, res.stderr
    row = json.loads(next((tmp_path / "out").glob("*.json")).read_text())["rows"][0]
    assert row["peak_mem_gb"] == 12.5 and row["peak_mem_source"] == "normgpt"


def test_report_without_nvidia_smi_samples_leaves_memory_null(tmp_path):
    runs = write_runs(tmp_path / "runs", {"pre": [1.0, 1.0, 1.0, 1.0]}, mode="smoke")
    (runs / "01-pre" / "mem.csv").unlink()
    res = subprocess.run([PY, str(REPORT), "--runs-dir", str(runs), "--out", str(tmp_path / "o"),
                          "--commit", "abc1234"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    doc = json.loads(next((tmp_path / "o").glob("*-cpu-smoke-abc1234.json")).read_text())
    row = doc["rows"][0]
    assert doc["peak_tflops_bf16"] is None and row["mfu"] is None
    assert row["peak_mem_gb"] is None and row["peak_mem_source"] is None
    assert all(v is None for k, v in doc["targets"].items() if k.endswith("_met"))
    assert "not judged on a CPU smoke run" in res.stdout


def test_report_bad_input_exits_2(tmp_path):
    res = subprocess.run([PY, str(REPORT), "--runs-dir", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    (tmp_path / "empty").mkdir()
    res = subprocess.run([PY, str(REPORT), "--runs-dir", str(tmp_path / "empty"), "--out",
                          str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "bench.json" in res.stderr


# ------------------------------------------------------------------------------------------------
# bench_gpu.sh

def test_shell_syntax_and_help():
    assert subprocess.run(["bash", "-n", str(SH)]).returncode == 0
    assert os.access(SH, os.X_OK)
    text = SH.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    res = subprocess.run(["bash", str(SH), "--help"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and "Usage: bash scripts/bench_gpu.sh" in res.stdout
    assert "--smoke" in res.stdout and "--no-torch" in res.stdout


@pytest.mark.parametrize("args", [["--steps", "x"], ["--steps", "5", "--warmup", "5"],
                                  ["--batch-size", "0"], ["--accum", "-1"], ["--bogus"],
                                  ["--strategies", "pre;rm"], ["--function", "batchnorm"],
                                  ["--out"]])
def test_shell_rejects_bad_arguments(args):
    res = subprocess.run(["bash", str(SH), *args], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2, res.stderr
    assert "bench_gpu:" in res.stderr


FAKE_SMI = """#!/usr/bin/env bash
case "$*" in
  *-L*) echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)" ;;
  *name,driver_version*) echo "NVIDIA H100 80GB HBM3, 550.54.15" ;;
  *-lms*) v=2000; while :; do echo $v; v=$((v + 1000)); sleep 0.05; done ;;
  *memory.used*) echo 1000 ;;
esac
"""

# Stands in for build/normgpt: `train` writes metrics as if each step took 1 s (the first 2: 5 s).
FAKE_NORMGPT = """#!/usr/bin/env bash
cmd=$1; shift
out="" steps=0 B=0 A=0 dev=""
while (($#)); do
  case "$1" in
    -o) out=$2; shift 2 ;;
    --set) case "$2" in train.steps=*) steps=${2#*=} ;; train.batch_size=*) B=${2#*=} ;;
           train.grad_accum=*) A=${2#*=} ;; device=*) dev=${2#*=} ;; esac; shift 2 ;;
    *) shift ;;
  esac
done
if [[ $cmd == info ]]; then echo "total     124475904  (124.476M)"; exit 0; fi
[[ $dev == cuda ]] || { echo "expected device=cuda" >&2; exit 9; }
mkdir -p "$out"
tok=$((B * 1024 * A))
sleep 0.3
for ((s = 0; s < steps; s++)); do
  ms=1000; ((s < 2)) && ms=5000
  echo "{\\"step\\": $s, \\"train_loss\\": 10.8, \\"step_ms\\": $ms, \\"tokens_per_s\\": $((tok * 1000 / ms))}" >>"$out/metrics.jsonl"
done
"""

FAKE_TORCH_PY = """#!/usr/bin/env bash
out="" s=""
while (($#)); do case "$1" in --out) out=$2; shift 2 ;; --strategy) s=$2; shift 2 ;; *) shift ;; esac; done
echo "{\\"strategy\\": \\"$s\\", \\"tokens_per_s\\": 400000.0, \\"step_ms\\": 1310.72, \\"peak_mem_gb\\": 30.0, \\"error\\": null}" >"$out"
"""


def test_gpu_path_with_stand_ins(tmp_path):
    """The GPU mode end to end with fake nvidia-smi, normgpt and PyTorch: arguments, the memory
    poller, the data file, and the record."""
    bin_dir = tmp_path / "bin"
    build = tmp_path / "build"
    bin_dir.mkdir()
    build.mkdir()
    for path, text in ((bin_dir / "nvidia-smi", FAKE_SMI), (build / "normgpt", FAKE_NORMGPT),
                       (bin_dir / "torchpy", FAKE_TORCH_PY)):
        path.write_text(text)
        path.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}",
               TORCH_PYTHON=str(bin_dir / "torchpy"))
    out = tmp_path / "out"
    res = subprocess.run(["bash", str(SH), "--strategies", "pre,peri", "--steps", "6", "--warmup",
                          "2", "--batch-size", "8", "--build-dir", str(build), "--out", str(out)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 2 and files[0].endswith("-h100-80gb-hbm3-" + files[0].split("-")[-1])
    doc = json.loads(next(out.glob("*.json")).read_text())
    assert doc["device"] == "NVIDIA H100 80GB HBM3" and doc["driver"] == "550.54.15"
    c = doc["config"]
    assert (c["batch_size"], c["grad_accum"], c["tokens_per_step"]) == (8, 64, 524_288)
    assert [r["strategy"] for r in doc["rows"]] == ["pre", "peri"]
    pre = doc["rows"][0]
    assert pre["step_ms"] == 1000.0 and pre["steps_measured"] == 4
    assert pre["tokens_per_s"] == pytest.approx(524_288)
    assert pre["mfu"] == pytest.approx(524_288 * GPT2_FPT / 989.4e12)
    assert pre["pytorch_tokens_per_s"] == 400_000.0
    assert pre["ratio_to_pytorch"] == pytest.approx(524_288 / 400_000)
    assert pre["peak_mem_gb"] is not None and pre["peak_mem_gb"] > 0  # polled during the run
    assert doc["rows"][1]["step_vs_pre"] == pytest.approx(1.0)
    assert doc["targets"]["every_strategy_within_5pct_of_pre_met"] is True
    assert "| pre | 524,288 | 45.6% | 1000.0 | 1.000x |" in res.stdout


# ------------------------------------------------------------------------------------------------
# --smoke with the real binary (CPU).

needs_binary = pytest.mark.skipif(not os.access(BINARY, os.X_OK),
                                  reason=f"{BINARY} not built (cmake --build build)")


@needs_binary
def test_smoke_end_to_end(tmp_path):
    out = tmp_path / "bench"
    res = subprocess.run(["bash", str(SH), "--smoke", "--no-torch", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    if not os.access(BINARY, os.X_OK):
        pytest.skip(f"{BINARY} disappeared during the run (a concurrent rebuild)")
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(next(out.glob("*-cpu-smoke-*.json")).read_text())
    names = ["pre", "post", "peri", "reordered", "mixln", "lns", "deepnorm", "b2t", "geonorm", "dyt"]
    assert [r["strategy"] for r in doc["rows"]] == names
    for r in doc["rows"]:
        assert ISSUE_ROW_KEYS <= set(r)
        assert r["tokens_per_s"] > 0 and r["step_ms"] > 0 and r["steps_measured"] == 4
        assert r["mfu"] is None and r["pytorch_tokens_per_s"] is None
        assert r["params_source"] == "normgpt info"
    rows = {r["strategy"]: r for r in doc["rows"]}
    assert rows["peri"]["params"] > rows["pre"]["params"]  # its output norms
    assert rows["pre"]["step_vs_pre"] == 1.0
    assert doc["config"]["mode"] == "smoke" and doc["config"]["n_layer"] == 2
    assert "| geonorm |" in res.stdout and "vs PyTorch" in res.stdout


@needs_binary
def test_smoke_with_pytorch_on_cpu(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "bench"
    res = subprocess.run(["bash", str(SH), "--smoke", "--strategies", "pre", "--add", "geonorm",
                          "--steps", "4", "--warmup", "1", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    if not os.access(BINARY, os.X_OK):
        pytest.skip(f"{BINARY} disappeared during the run (a concurrent rebuild)")
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(next(out.glob("*.json")).read_text())
    for r in doc["rows"]:
        assert r["pytorch_tokens_per_s"] and r["pytorch_tokens_per_s"] > 0, r
        assert r["ratio_to_pytorch"] > 0 and r["pytorch"]["compile"] is False
    assert "PyTorch" in res.stdout and "eager" in res.stdout


# ------------------------------------------------------------------------------------------------
# bench_gpu_torch.py

def test_torch_script_reports_a_missing_torch_cleanly(tmp_path):
    code = ("import sys, runpy; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    out = tmp_path / "t.json"
    res = subprocess.run([PY, "-c", code, str(TORCH_SCRIPT), "--strategy", "pre", "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    line = json.loads(res.stdout.strip().splitlines()[-1])
    assert line["tokens_per_s"] is None and "torch is not importable" in line["error"]
    assert json.loads(out.read_text()) == line
    res = subprocess.run([PY, "-c", code, str(TORCH_SCRIPT), "--help"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and "--strategy" in res.stdout
    res = subprocess.run([PY, str(TORCH_SCRIPT), "--strategy", "pre", "--steps", "3", "--warmup",
                          "3"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2


@pytest.mark.parametrize("strategy", ["pre", "peri", "geonorm", "dyt", "deepnorm", "ngpt"])
def test_torch_model_is_the_twin(strategy):
    """The benchmark's model (per-layer parameters, fused ops swapped in) computes the twin's loss
    and gradients (float64, CPU; the twin's attention, as scaled_dot_product_attention may be
    missing here), and leaves the shared gpt_ref module untouched."""
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(SCRIPTS / "reference"))
    import gpt_ref
    attention_before = gpt_ref.attention
    bt = load("bench_gpu_torch", TORCH_SCRIPT)
    ref = bt.load_twin()
    bt.install_fast_ops(ref, torch, torch.nn.functional, use_sdpa=False)
    dims = dict(V=50, Vp=64, maxT=16, L=3, NH=2, C=16, strategy=strategy)
    model = bt.build_model(ref, torch, ref.Config(**dims), torch.device("cpu")).double()
    cfg = gpt_ref.Config(**dims)
    params = gpt_ref.init_params(cfg, seed=5)
    model.load_stacked(params)
    twin = gpt_ref.GPT(cfg, params)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 50, (2, 16), generator=g)
    tgt = torch.randint(0, 50, (2, 16), generator=g)
    loss = model(idx, tgt)
    ref_loss = twin(idx, tgt)[1]
    assert float(loss) == pytest.approx(float(ref_loss), rel=1e-12, abs=1e-12)
    loss.backward()
    ref_loss.backward()
    for name in ("qkvw", "fcprojw", "ln1w"):  # (ngpt has no norms: ln1w gets no gradient)
        for l in range(3):
            mine, theirs = model.w[f"{name}_{l}"].grad, twin.params[name].grad
            assert (mine is None) == (theirs is None)
            if mine is not None:
                assert torch.allclose(mine, theirs[l], rtol=1e-9, atol=1e-12)
    assert torch.allclose(model.w["wte"].grad, twin.params["wte"].grad, rtol=1e-9, atol=1e-12)
    assert gpt_ref.attention is attention_before
    assert gpt_ref.NORM_FUNCTIONS["layernorm"] is gpt_ref.layernorm
