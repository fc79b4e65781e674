"""Readable, filesystem-safe names from config values: `peri-rmsnorm-lr3e-3-s1`.

A name is the strategy and the norm function, then one token per other key that varies across
the runs being named (in the order the keys first appear), then `s<seed>` when seeds vary.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Iterable

STRATEGY = "norm.strategy"
FUNCTION = "norm.function"
SEED = "seed"

# Short prefixes for keys that are commonly swept; other keys use their last path component.
ABBREV = {
    "optim.lr": "lr",
    "optim.schedule": "sched",
    "optim.warmup_steps": "wu",
    "optim.weight_decay": "wd",
    "optim.grad_clip": "clip",
    "optim.min_lr_ratio": "minlr",
    "optim.beta1": "b1",
    "optim.beta2": "b2",
    "optim.eps": "adameps",
    "model.n_layer": "L",
    "model.d_model": "d",
    "model.n_head": "h",
    "model.seq_len": "T",
    "model.init": "init",
    "train.batch_size": "B",
    "train.grad_accum": "ga",
    "train.steps": "steps",
    "norm.eps": "eps",
    "norm.embed_norm": "embnorm",
    "norm.final_norm": "finalnorm",
    "norm.mixln.post_fraction": "mixp",
    "norm.geonorm.decay": "decay",
    "norm.geonorm.clamp": "clamp",
    "norm.geonorm.learn_angle": "learnangle",
    "norm.geonorm.input_norm": "inputnorm",
    "data.shuffle": "shuffle",
    "eval.every": "evalevery",
    "eval.batches": "evalbatches",
    SEED: "s",
}

# Shorthands for compare.py --by: the abbreviations above, plus a few words.
SHORTHANDS = {abbr: key for key, abbr in ABBREV.items()}
SHORTHANDS.update({
    "strategy": STRATEGY,
    "placement": STRATEGY,
    "function": FUNCTION,
    "layers": "model.n_layer",
    "depth": "model.n_layer",
    "width": "model.d_model",
    "seed": SEED,
})


def expand_key(key: str) -> str:
    """`strategy` -> `norm.strategy`, `lr` -> `optim.lr`; dotted paths pass through."""
    if "." in key:
        return key
    return SHORTHANDS.get(key, key)


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def format_number(v: float | int) -> str:
    """Shortest exact text: 3 -> '3', 0.003 -> '3e-3', 2.5e-4 -> '2.5e-4', 0.5 -> '0.5'
    (scientific below 0.1 and from 1e4, so learning rates read alike)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if math.isnan(v) or math.isinf(v):
        return str(v)
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    if 0.1 <= abs(v) < 1e4:
        return repr(v)
    for p in range(17):
        s = f"{v:.{p}e}"
        if float(s) == v:
            break
    mant, exp = s.split("e")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"


def format_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, (bool, int, float)):
        return format_number(v)
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"))


def key_token(key: str, value: Any) -> str:
    if key in (STRATEGY, FUNCTION):
        return format_value(value)
    prefix = ABBREV.get(key, key.split(".")[-1].replace("_", ""))
    text = format_value(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{prefix}{text}"
    return f"{prefix}_{text}"


def sanitize(name: str, limit: int = 120) -> str:
    s = _UNSAFE.sub("_", name).strip("._") or "run"
    if len(s) > limit:
        digest = hashlib.sha1(s.encode()).hexdigest()[:8]
        s = s[: limit - 9] + "-" + digest
    return s


def varying_keys(configs: list[dict[str, Any]], exclude: Iterable[str] = ()) -> list[str]:
    """Keys (of flat configs) whose value differs across configs, in first-appearance order.
    A key missing from a config counts as a value of its own."""
    excl = set(exclude)
    order: list[str] = []
    for c in configs:
        for k in c:
            if k not in excl and k not in order:
                order.append(k)
    missing = object()
    out = []
    for k in order:
        vals = {json.dumps(c.get(k, missing), sort_keys=True, default=str) for c in configs}
        if len(vals) > 1:
            out.append(k)
    return out


def label(flat: dict[str, Any], keys: list[str], with_seed: bool,
          tokens_from: dict[str, Any] | None = None) -> str:
    """The name of one config: strategy and function (from `flat`, the resolved config), a token
    per key of `keys` found in `tokens_from` (default `flat`), then the seed."""
    src = flat if tokens_from is None else tokens_from
    parts = [format_value(flat.get(STRATEGY, "pre")), format_value(flat.get(FUNCTION, "layernorm"))]
    for k in keys:
        if k in (STRATEGY, FUNCTION, SEED):
            continue
        if k in src:
            parts.append(key_token(k, src[k]))
    if with_seed and SEED in flat:
        parts.append(key_token(SEED, flat[SEED]))
    return "-".join(parts)


def distinguishing_keys(flats: list[dict[str, Any]], keys: list[str]) -> list[str]:
    """A short subset of `keys` whose tokens tell the configs apart: keys are taken in order of
    preference (the commonly swept keys of ABBREV first, data paths last) until the labels of
    configs that differ are unique; the result keeps the preference order."""
    known = [k for k in ABBREV if k in keys]
    rest = [k for k in keys if k not in ABBREV and not k.startswith("data.")]
    data = [k for k in keys if k.startswith("data.")]
    chosen: list[str] = []

    def distinct(ks):
        labels = {label(f, ks, with_seed=False) for f in flats}
        return len(labels) == len({json.dumps(f, sort_keys=True, default=str) for f in flats})

    for k in [STRATEGY, FUNCTION] + known + rest + data:
        if distinct(chosen):
            break
        if k in keys and k not in chosen and k not in (STRATEGY, FUNCTION):
            chosen.append(k)
    return chosen


def unique_names(names: list[str]) -> list[str]:
    """Sanitize, then make unique by appending -2, -3, ... to repeats (in list order)."""
    seen: dict[str, int] = {}
    out = []
    taken = set()
    for n in names:
        s = sanitize(n)
        cand = s
        while cand in taken:
            seen[s] = seen.get(s, 1) + 1
            cand = f"{s}-{seen[s]}"
        taken.add(cand)
        out.append(cand)
    return out
