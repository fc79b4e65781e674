"""Sweep SPEC files: checking and expansion into a list of runs.

    {
      "description": "free text (optional)",
      "base": "configs/tiny.json",                 # relative to the current directory
      "set": {"train.steps": 200},                 # applied to every run first
      "grid": {"norm.strategy": ["pre", "peri"],   # cartesian product, in key order
               "optim.lr": [1e-3, 3e-3]},
      "runs": [{"name": "geo-sqrt",                # explicit runs, besides the grid
                "set": {"norm.strategy": "geonorm", "norm.geonorm.decay": "sqrt"}}],
      "seeds": [1, 2]                              # every run above once per seed
    }

Without "grid" and "runs" the sweep is one run (base + set), once per seed.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import configs, naming

TOP_KEYS = {"description", "base", "set", "grid", "runs", "seeds"}
RUN_KEYS = {"name", "set"}


class SpecError(Exception):
    """A bad SPEC; the message lists every problem found, one per line."""


@dataclass
class RunSpec:
    name: str
    sets: list[tuple[str, Any]]            # in the order they are passed as --set
    config: dict = field(default_factory=dict)   # base + sets, as Python reads it (no defaults)

    def flat(self) -> dict[str, Any]:
        return configs.flatten(self.config)


@dataclass
class Sweep:
    spec_path: Path
    spec: dict
    base: Path
    runs: list[RunSpec]


def _check_key(where: str, key: Any, errors: list[str]) -> None:
    if not isinstance(key, str) or not key or "=" in key or key.startswith(".") \
            or key.endswith(".") or ".." in key or any(c.isspace() for c in key):
        errors.append(f"{where}: bad key {key!r} (expected a dotted config path like 'optim.lr')")


def _check_value(where: str, value: Any, errors: list[str]) -> None:
    if isinstance(value, dict):
        errors.append(f"{where}: a value must be a JSON scalar or array, not an object")


def _check_sets(where: str, sets: Any, errors: list[str]) -> None:
    if not isinstance(sets, dict):
        errors.append(f"{where}: expected an object of key.path -> value")
        return
    for k, v in sets.items():
        _check_key(f"{where}", k, errors)
        _check_value(f"{where}.{k}", v, errors)


def resolve_base(base: str, spec_path: Path, cwd: Path) -> Path:
    p = Path(base)
    if not p.is_absolute():
        p = cwd / p
    if not p.is_file():
        hint = ""
        alt = spec_path.parent / base
        if alt.is_file():
            hint = f" (base is relative to the current directory; from here it is {alt})"
        raise SpecError(f"{spec_path}: base: no such config file '{base}'{hint}")
    return p.resolve()


def load(spec_path: str | Path, cwd: Path | None = None) -> Sweep:
    spec_path = Path(spec_path)
    cwd = Path.cwd() if cwd is None else Path(cwd)
    try:
        spec = json.loads(spec_path.read_text())
    except OSError as e:
        raise SpecError(f"{spec_path}: cannot read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise SpecError(f"{spec_path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") \
            from None
    errors: list[str] = []
    if not isinstance(spec, dict):
        raise SpecError(f"{spec_path}: expected a JSON object")
    for k in spec:
        if k not in TOP_KEYS:
            errors.append(f"{spec_path}: unknown key '{k}' (known: {', '.join(sorted(TOP_KEYS))})")
    if not isinstance(spec.get("base"), str) or not spec.get("base"):
        errors.append(f"{spec_path}: base: expected the path of a config file")
    _check_sets(f"{spec_path}: set", spec.get("set", {}), errors)
    grid = spec.get("grid", {})
    if not isinstance(grid, dict):
        errors.append(f"{spec_path}: grid: expected an object of key.path -> list of values")
        grid = {}
    for k, vals in grid.items():
        _check_key(f"{spec_path}: grid", k, errors)
        if not isinstance(vals, list) or not vals:
            errors.append(f"{spec_path}: grid.{k}: expected a non-empty list of values")
            continue
        for v in vals:
            _check_value(f"{spec_path}: grid.{k}", v, errors)
        if len({json.dumps(v, sort_keys=True) for v in vals}) != len(vals):
            errors.append(f"{spec_path}: grid.{k}: repeated value")
    runs = spec.get("runs", [])
    if not isinstance(runs, list):
        errors.append(f"{spec_path}: runs: expected a list of {{\"name\"?, \"set\"}} objects")
        runs = []
    for i, r in enumerate(runs):
        where = f"{spec_path}: runs[{i}]"
        if not isinstance(r, dict):
            errors.append(f"{where}: expected an object {{\"name\"?, \"set\": {{...}}}}")
            continue
        for k in r:
            if k not in RUN_KEYS:
                errors.append(f"{where}: unknown key '{k}' (known: name, set)")
        if "set" not in r:
            errors.append(f"{where}: missing 'set'")
        else:
            _check_sets(f"{where}.set", r["set"], errors)
        if "name" in r and (not isinstance(r["name"], str) or not r["name"]
                            or naming.sanitize(r["name"]) != r["name"]):
            errors.append(f"{where}.name: expected a non-empty name of letters, digits, . _ + -")
    seeds = spec.get("seeds")
    if seeds is not None and (not isinstance(seeds, list) or not seeds or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)):
        errors.append(f"{spec_path}: seeds: expected a non-empty list of non-negative integers")
    elif seeds is not None and len(set(seeds)) != len(seeds):
        errors.append(f"{spec_path}: seeds: repeated seed")
    if seeds is not None and ("seed" in spec.get("set", {}) or "seed" in grid):
        errors.append(f"{spec_path}: give seeds either in 'seeds' or as the key 'seed', not both")
    base = None
    if isinstance(spec.get("base"), str) and spec["base"]:
        try:
            base = resolve_base(spec["base"], spec_path, cwd)
        except SpecError as e:
            errors.append(str(e))
    if errors:
        raise SpecError("\n".join(errors))

    try:
        base_cfg = configs.load_config(base)
    except (OSError, ValueError) as e:
        raise SpecError(f"{spec_path}: base {base}: {e}") from None
    return Sweep(spec_path, spec, base, expand(spec, base_cfg))


def expand(spec: dict, base_cfg: dict) -> list[RunSpec]:
    common = list(spec.get("set", {}).items())
    grid = spec.get("grid", {})
    variants: list[tuple[str | None, list[tuple[str, Any]]]] = []
    if grid or not spec.get("runs"):
        keys = list(grid)
        for combo in itertools.product(*(grid[k] for k in keys)):
            variants.append((None, list(zip(keys, combo))))
    for r in spec.get("runs", []):
        variants.append((r.get("name"), list(r["set"].items())))

    name_keys: list[str] = []
    for _, sets in variants:
        for k, _v in sets:
            if k not in name_keys:
                name_keys.append(k)
    seeds = spec.get("seeds")
    with_seed = seeds is not None or "seed" in name_keys

    runs: list[RunSpec] = []
    explicit: list[bool] = []
    for given, sets in variants:
        for seed in (seeds if seeds is not None else [None]):
            all_sets = common + sets + ([("seed", seed)] if seed is not None else [])
            cfg = configs.apply_sets(base_cfg, all_sets)
            flat = configs.flatten(cfg)
            if given:
                name = given + (f"-s{seed}" if seed is not None else "")
            else:
                name = naming.label(flat, name_keys, with_seed, tokens_from=dict(sets))
            runs.append(RunSpec(name, all_sets, cfg))
            explicit.append(bool(given))
    seen = set()
    for r, ex in zip(runs, explicit):
        if ex and r.name in seen:
            raise SpecError(f"runs: the name '{r.name}' is given twice")
        seen.add(r.name)
    for r, n in zip(runs, naming.unique_names([r.name for r in runs])):
        r.name = n
    return runs
