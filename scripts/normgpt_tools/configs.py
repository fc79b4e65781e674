"""Config helpers: dotted key paths, flattening, a Python reading of `extends`, and the resolved
config as the normgpt binary prints it (`normgpt info`)."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

# Keys whose value may differ between runs without changing what is trained or measured.
# (eval.* changes what is measured, so it is not here.)
BOOKKEEPING_PREFIXES = ("checkpoint.", "log.")
BOOKKEEPING_KEYS = ("device",)


def is_bookkeeping(key: str) -> bool:
    return key in BOOKKEEPING_KEYS or key.startswith(BOOKKEEPING_PREFIXES)


def flatten(cfg: dict, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and scalars are leaves."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, path + "."))
        else:
            out[path] = v
    return out


def get_path(cfg: dict, path: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_path(cfg: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    node = cfg
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def merge(base: dict, child: dict) -> dict:
    """The binary's `extends` merge: objects merge recursively, anything else replaces."""
    out = copy.deepcopy(base)
    for k, v in child.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(path: Path, _chain: tuple = ()) -> dict:
    """Load a config file with its `extends` chain merged in (no defaults filled in)."""
    path = Path(path).resolve()
    if path in _chain:
        raise ValueError("extends cycle: " + " -> ".join(str(p) for p in _chain + (path,)))
    with open(path) as f:
        cfg = json.load(f)
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a JSON object")
    base = cfg.pop("extends", None)
    if base:
        cfg = merge(load_config(path.parent / base, _chain + (path,)), cfg)
    return cfg


def apply_sets(cfg: dict, sets: list[tuple[str, Any]]) -> dict:
    out = copy.deepcopy(cfg)
    for k, v in sets:
        set_path(out, k, v)
    return out


def set_arg(key: str, value: Any) -> str:
    """`key=value` for the binary's --set. Strings go raw unless raw text would parse as JSON
    (e.g. the string "12"), in which case they are JSON-quoted."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return f"{key}={value}"
    return f"{key}={json.dumps(value)}"


def resolve_with_binary(binary: str, config: Path, sets: list[tuple[str, Any]],
                        cwd: str | None = None) -> tuple[dict | None, str]:
    """Run `normgpt info -c CONFIG --set ...`: (resolved config, "") or (None, error message)."""
    cmd = [binary, "info", "-c", str(config)]
    for k, v in sets:
        cmd += ["--set", set_arg(k, v)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"could not run {binary} info: {e}"
    if p.returncode != 0:
        lines = [ln for ln in (p.stderr or p.stdout).strip().splitlines() if ln.strip()]
        return None, lines[-1] if lines else f"{binary} info exited with {p.returncode}"
    text = p.stdout
    start = text.find("{")
    try:
        cfg, _ = json.JSONDecoder().raw_decode(text[start:])
    except (ValueError, IndexError):
        return None, "could not parse the resolved config printed by normgpt info"
    return cfg, ""
