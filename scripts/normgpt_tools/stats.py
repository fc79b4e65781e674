"""Numbers for the comparison report: EMA smoothing, the loss-spike rule, seed statistics and
Welch's t-test (no SciPy: the t distribution's tail comes from the incomplete beta function)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SPIKE_WINDOW = 20
SPIKE_RATIO = 1.15
SPIKE_MIN_HISTORY = 5


def spike_rule_text(window: int = SPIKE_WINDOW, ratio: float = SPIKE_RATIO,
                    min_history: int = SPIKE_MIN_HISTORY) -> str:
    return (f"a loss spike is a train step whose loss exceeds {ratio:g} × the median of the "
            f"previous {window} finite train losses (at least {min_history} of them); "
            f"consecutive spiking steps count as one spike; non-finite losses are divergence, "
            f"not spikes")


def ema(y: np.ndarray, alpha: float) -> np.ndarray:
    """Debiased exponential moving average, e[t] = alpha·e[t-1] + (1-alpha)·y[t], divided by
    (1 - alpha^n) as TensorBoard does; non-finite points are passed over (they stay NaN)."""
    y = np.asarray(y, dtype=float)
    if alpha <= 0 or len(y) == 0:
        return y.copy()
    out = np.full_like(y, np.nan)
    acc, weight = 0.0, 0.0
    for i, v in enumerate(y):
        if not math.isfinite(v):
            continue
        acc = alpha * acc + (1 - alpha) * v
        weight = alpha * weight + (1 - alpha)
        out[i] = acc / weight
    return out


def find_spikes(loss: np.ndarray, window: int = SPIKE_WINDOW, ratio: float = SPIKE_RATIO,
                min_history: int = SPIKE_MIN_HISTORY) -> list[int]:
    """Indices where a spike starts, by the rule of spike_rule_text()."""
    loss = np.asarray(loss, dtype=float)
    starts: list[int] = []
    history: list[float] = []
    in_spike = False
    for i, v in enumerate(loss):
        if not math.isfinite(v):
            in_spike = False
            continue
        prev = history[-window:]
        spiking = len(prev) >= min_history and v > ratio * float(np.median(prev))
        if spiking and not in_spike:
            starts.append(i)
        in_spike = spiking
        history.append(v)
    return starts


def first_nonfinite(values: np.ndarray) -> int | None:
    bad = np.flatnonzero(~np.isfinite(np.asarray(values, dtype=float)))
    return int(bad[0]) if len(bad) else None


@dataclass
class Summary:
    n: int
    mean: float
    std: float       # sample std (ddof 1); NaN when n < 2
    min: float
    max: float


def describe(values) -> Summary:
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    std = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
    return Summary(len(v), float(np.mean(v)), std, float(v.min()), float(v.max()))


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) (continued fraction, Numerical Recipes 6.4)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    ln_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - betainc(b, a, 1.0 - x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return math.exp(ln_front) * h / a


def t_two_sided_p(t: float, df: float) -> float:
    if not math.isfinite(t) or df <= 0:
        return math.nan
    return betainc(df / 2.0, 0.5, df / (df + t * t))


@dataclass
class Welch:
    diff: float      # mean(a) - mean(b)
    se: float
    t: float
    df: float
    p: float         # two-sided


def welch(a, b) -> Welch | None:
    """Welch's unequal-variance t-test of mean(a) - mean(b); None with fewer than 2 values in
    either sample, or no spread at all."""
    a = np.array([x for x in a if math.isfinite(x)], dtype=float)
    b = np.array([x for x in b if math.isfinite(x)], dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = math.sqrt(va + vb)
    diff = float(a.mean() - b.mean())
    if se == 0:
        return None
    t = diff / se
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return Welch(diff, se, t, df, t_two_sided_p(t, df))
