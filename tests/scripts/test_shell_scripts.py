"""Cheap checks of the shell entry points: syntax, executable bits, argument handling."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ["scripts/setup.sh", "scripts/run_default.sh", "scripts/test.sh",
           "scripts/bench_cpu.sh", "scripts/gpu_check.sh", "scripts/gpu_bundle.sh", "scripts/fuzz.sh",
           ".ci/run"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_bash_syntax(script):
    res = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_ci_run_is_executable_and_runs_test_sh():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    text = ci.read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert "scripts/test.sh" in text


@pytest.mark.parametrize("args", [["--steps", "1"], ["--steps", "x"], ["--bogus"]])
def test_bench_cpu_rejects_bad_arguments(args):
    # Arguments are checked before anything is built or run.
    res = subprocess.run(["bash", str(ROOT / "scripts" / "bench_cpu.sh"), *args],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "bench_cpu:" in res.stderr


def test_bench_cpu_help():
    res = subprocess.run(["bash", str(ROOT / "scripts" / "bench_cpu.sh"), "--help"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0
    assert "Usage: bash scripts/bench_cpu.sh" in res.stdout


def test_configs_are_valid_json_with_expected_keys():
    import json
    for name, vocab, data in (("default", 50257, "brown_gpt2"), ("tiny", 257, "brown_byte")):
        cfg = json.loads((ROOT / "configs" / f"{name}.json").read_text())
        assert cfg["model"]["vocab_size"] == vocab
        assert cfg["data"]["train"] == f"data/{data}/train_*.bin"
        assert cfg["data"]["val"] == f"data/{data}/val_*.bin"
        assert cfg["norm"] == {"strategy": "pre", "function": "layernorm"}
