"""scripts/gpu_check.sh without a GPU: the plan (--dry-run), a machine without a GPU, and a fake
GPU machine whose steps fail, hang and are cut short. Whatever happens, the output folder holds at
most 8 plain files (the device tool returns no more, and nothing nested) with a valid summary JSON
and the logs' tarball, and the library path made for normgpt never reaches the PyTorch process."""

import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SH = ROOT / "scripts" / "gpu_check.sh"
STEPS = ["env", "parity", "ops", "memcheck", "racecheck", "train", "bench"]

FAKE_SMI = """#!/bin/sh
echo "GPU 0: Fake H200 (UUID: GPU-0000)"
"""
# test_cuda: the whole-step tests fail, the op tests hang, anything else passes.
FAKE_TEST_CUDA = """#!/bin/sh
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH-<unset>}" >> "$FAKE_LOG/test_cuda_env"
case "$*" in
  *--gtest_filter=-*) echo "[ RUN      ] CudaNorm.MatchesCpu"; exec sleep 600 ;;
  *CudaTraining*) echo "[  FAILED  ] 2 tests, listed below:"; exit 1 ;;
  *) echo "[  PASSED  ] 5 tests."; exit 0 ;;
esac
"""
FAKE_NORMGPT = """#!/bin/sh
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH-<unset>}" >> "$FAKE_LOG/normgpt_env"
echo "normgpt: error: fake normgpt" >&2
exit 2
"""
# The Python with "PyTorch": answers the probe, finds no libraries, fails the benchmark.
FAKE_TORCH_PY = """#!/bin/sh
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH-<unset>}" >> "$FAKE_LOG/torch_env"
case "$1" in
  -c) echo "torch fake"; exit 0 ;;
  -) cat > /dev/null; exit 0 ;;
  *) echo "no torch here" >&2; exit 1 ;;
esac
"""
FAKE_SANITIZER = """#!/bin/sh
echo "========= ERROR SUMMARY: 0 errors"
"""


def write_exe(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def fake_machine(tmp_path: Path, gpu: bool) -> tuple[dict, Path]:
    """An environment with fake nvidia-smi (or none that works), PyTorch and sanitizer, and a
    fake bundle; returns (env, bundle)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    log.mkdir()
    write_exe(bin_dir / "nvidia-smi", FAKE_SMI if gpu else "#!/bin/sh\nexit 9\n")
    write_exe(bin_dir / "torchpy", FAKE_TORCH_PY)
    write_exe(bin_dir / "sanitizer", FAKE_SANITIZER)
    bundle = tmp_path / "bundle"
    write_exe(bundle / "bin" / "test_cuda", FAKE_TEST_CUDA)
    write_exe(bundle / "bin" / "normgpt", FAKE_NORMGPT)
    (bundle / "lib").mkdir()
    (bundle / "MANIFEST").write_text("commit abc1234\n")
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    # the machine's own library path (a driver's folder, say): kept for everyone
    env.update(PATH=f"{bin_dir}:{env['PATH']}", FAKE_LOG=str(log), TORCH_PYTHON=str(bin_dir / "torchpy"),
               COMPUTE_SANITIZER=str(bin_dir / "sanitizer"), LD_LIBRARY_PATH="/machine/lib")
    return env, bundle


def check_out(out: Path) -> dict:
    """OUT as the device tool needs it; returns the summary."""
    entries = sorted(p.name for p in out.iterdir())
    assert len(entries) <= 8, entries
    assert all((out / e).is_file() for e in entries), entries
    assert "gpu_check_summary.json" in entries and "gpu_check_logs.tar.gz" in entries, entries
    summary = json.loads((out / "gpu_check_summary.json").read_text())
    assert [s["name"] for s in summary["steps"]] == STEPS
    with tarfile.open(out / "gpu_check_logs.tar.gz") as tar:
        names = tar.getnames()
    assert "logs/console.log" in names and "logs/summary.json" in names, names
    return summary


def steps(summary: dict) -> dict:
    return {s["name"]: s for s in summary["steps"]}


def test_dry_run_records_the_plan_with_a_timeout_per_step_within_9_minutes(tmp_path):
    res = subprocess.run(["bash", str(SH), "--dry-run", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    summary = check_out(tmp_path / "out")
    assert summary["dry_run"] is True and summary["budget_s"] == 540
    for s in summary["steps"]:
        assert s["status"] == "planned" and s["timeout_s"] > 0, s
    # every step's timeout fits in the whole budget together, with room to write the outputs
    assert sum(s["timeout_s"] for s in summary["steps"]) <= summary["budget_s"] - 10
    assert "compute-sanitizer --tool memcheck" in steps(summary)["memcheck"]["note"]
    assert "NCCL_SOCKET_IFNAME=lo" in steps(summary)["parity"]["note"]
    for s in STEPS:
        assert f"{s}\ttimeout" in res.stdout


def test_without_a_gpu_every_device_step_is_skipped_and_the_outputs_are_written(tmp_path):
    env, bundle = fake_machine(tmp_path, gpu=False)
    out = tmp_path / "out"
    res = subprocess.run(["bash", str(SH), "--bundle", str(bundle), "--out", str(out)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 1, res.stdout + res.stderr
    summary = check_out(out)
    assert summary["ok"] is False
    by = steps(summary)
    assert by["env"]["status"] == "fail"
    for s in STEPS[1:]:
        assert by[s]["status"] == "skipped" and by[s]["note"] == "no GPU", by[s]


def test_failing_hanging_steps_leave_the_others_results_and_no_library_path_reaches_pytorch(tmp_path):
    env, bundle = fake_machine(tmp_path, gpu=True)
    out = tmp_path / "out"
    res = subprocess.run(["bash", str(SH), "--bundle", str(bundle), "--out", str(out),
                          "--timeout-scale", "0.1"], capture_output=True, text=True, timeout=180, env=env)
    assert res.returncode == 1, res.stdout + res.stderr
    summary = check_out(out)
    by = steps(summary)
    assert by["env"]["status"] == "pass", by["env"]
    assert by["parity"]["status"] == "fail" and "FAILED" in by["parity"]["headline"]
    assert by["ops"]["status"] == "timeout" and by["ops"]["seconds"] <= by["ops"]["timeout_s"] + 6
    assert by["memcheck"]["status"] == "pass" and "ERROR SUMMARY: 0 errors" in by["memcheck"]["headline"]
    assert by["racecheck"]["status"] == "pass"
    assert by["train"]["status"] == "fail" and by["bench"]["status"] == "fail"
    assert summary["bundle_commit"] == "abc1234" and summary["gpu"] == "Fake H200"
    assert summary["op_timing"] is None
    log = tmp_path / "log"
    for tool in ("normgpt_env", "test_cuda_env"):
        lines = (log / tool).read_text().splitlines()
        assert lines and all(line.startswith(f"LD_LIBRARY_PATH={bundle / 'lib'}:") and
                             line.endswith(":/machine/lib") for line in lines), lines
    torch_env = (log / "torch_env").read_text().splitlines()
    assert torch_env and all(line == "LD_LIBRARY_PATH=/machine/lib" for line in torch_env), torch_env


def test_a_run_cut_short_leaves_whole_outputs(tmp_path):
    env, bundle = fake_machine(tmp_path, gpu=True)
    out = tmp_path / "out"
    proc = subprocess.Popen(["bash", str(SH), "--bundle", str(bundle), "--out", str(out), "--only", "ops"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (tmp_path / "log" / "test_cuda_env").exists():
            time.sleep(0.2)  # until ops (which hangs) has started
        assert (tmp_path / "log" / "test_cuda_env").exists()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    summary = check_out(out)
    by = steps(summary)
    assert by["env"]["status"] == "pass"
    assert by["ops"]["status"] == "pending"
    assert by["parity"]["status"] == "skipped" and "not selected" in by["parity"]["note"]


@pytest.mark.parametrize("args", [["--bogus"], ["--only", "nope"], ["--timeout-scale", "x"], ["--bundle"]])
def test_bad_arguments_exit_2_with_one_line(tmp_path, args):
    res = subprocess.run(["bash", str(SH), "--out", str(tmp_path / "out"), *args],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert res.stderr.startswith("gpu_check: ") and res.stderr.count("\n") == 1, res.stderr


def test_gpu_bundle_checks_its_arguments_before_building():
    bundle_sh = ROOT / "scripts" / "gpu_bundle.sh"
    res = subprocess.run(["bash", str(bundle_sh), "--bogus"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and res.stderr.startswith("gpu_bundle: ")
    res = subprocess.run(["bash", str(bundle_sh), "--help"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and "x86-64-v2" in res.stdout and "Usage:" in res.stdout
