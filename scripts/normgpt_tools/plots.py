"""The report's figures (matplotlib, Agg), returned as PNG bytes. One colour per group; a group
of several runs (seeds) is drawn as its mean with a min-max band."""

from __future__ import annotations

import io
import math
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import stats  # noqa: E402
from .compare_data import Group  # noqa: E402

DPI = 100
WIDE = (12.0, 3.6)


def to_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def bottom_legend(fig, ax) -> None:
    """The legend of `ax`'s lines, below the figure, so that no curve is hidden."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                   ncol=min(3, len(handles)), fontsize=8, frameon=False)


def aggregate(curves: list[tuple[np.ndarray, np.ndarray, np.ndarray]]):
    """curves: per run (steps, x, y). Union of steps; at each step the mean of x and y over the
    runs that have it (NaN-aware), and the min and max of y. Returns x, mean, lo, hi."""
    curves = [c for c in curves if len(c[0])]
    if not curves:
        return (np.zeros(0),) * 4
    steps = np.unique(np.concatenate([c[0] for c in curves]))
    xs = np.full((len(curves), len(steps)), np.nan)
    ys = np.full((len(curves), len(steps)), np.nan)
    for i, (s, x, y) in enumerate(curves):
        pos = np.searchsorted(steps, s)
        xs[i, pos] = x
        ys[i, pos] = np.where(np.isfinite(y), y, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return (np.nanmean(xs, 0), np.nanmean(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0))


def legend_label(g: Group) -> str:
    n = g.numbers.get("n", len(g.entries))
    extra = f" (n={n})" if n > 1 else ""
    if g.numbers.get("n_running"):
        extra += " running"
    if g.numbers.get("n_diverged"):
        extra += f" {g.numbers['n_diverged']} diverged"
    return g.label + extra


def draw(ax, g: Group, curves, smooth: float = 0.0, logx: bool = False, label: bool = True,
         style: str = "-") -> np.ndarray:
    if smooth > 0:
        curves = [(s, x, stats.ema(y, smooth)) for s, x, y in curves]
    x, mean, lo, hi = aggregate(curves)
    if len(x) == 0:
        return np.zeros(0)
    ok = np.isfinite(x) & np.isfinite(mean)
    if logx:
        ok &= x > 0
    ax.plot(x[ok], mean[ok], style, color=g.color, lw=1.4, label=legend_label(g) if label else None)
    if len(g.entries) > 1:
        ax.fill_between(x[ok], lo[ok], hi[ok], color=g.color, alpha=0.18, lw=0)
    return mean[ok]


def robust_ylim(ax, values: list[np.ndarray], log: bool = False) -> None:
    """Limits that keep the bulk of the curves readable when a run blows up: the top is at most
    a bit above the highest early value (initial losses)."""
    v = np.concatenate([a[np.isfinite(a)] for a in values if len(a)] or [np.zeros(0)])
    if log:
        v = v[v > 0]
    if len(v) == 0:
        return
    early = np.concatenate([a[np.isfinite(a)][:5] for a in values if len(a)] or [v])
    lo, hi = float(v.min()), float(min(v.max(), max(early.max(), np.percentile(v, 99))))
    if log:
        ax.set_ylim(lo / 1.2, hi * 1.2)
    elif hi > lo:
        pad = 0.05 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)


XAXES = (("step", "step"), ("tokens", "tokens"), ("time_s", "wall time (s, sum of step times)"))


def loss_figure(groups: list[Group], kind: str, smooth: float, logx: bool) -> bytes | None:
    """kind 'train' (EMA-smoothed) or 'val': loss vs step, vs tokens and vs wall time."""
    fig, axes = plt.subplots(1, 3, figsize=WIDE)
    drawn = []
    for ax, (xkey, xlabel) in zip(axes, XAXES):
        for g in groups:
            curves = []
            for e in g.entries:
                m = e.run.metrics
                if kind == "train":
                    s = m.train["step"]
                    x = s + 1 if xkey == "step" and logx else m.train[xkey]
                    curves.append((s, x, m.train["train_loss"]))
                else:
                    s = m.val_step
                    x = {"step": s + (1 if logx else 0), "tokens": m.val_tokens(),
                         "time_s": m.val_time()}[xkey]
                    curves.append((s, x, m.val_loss))
            drawn.append(draw(ax, g, curves, smooth if kind == "train" else 0.0, logx,
                              label=ax is axes[0], style="-" if kind == "train" else ".-"))
        ax.set_xlabel(xlabel + (" + 1" if logx and xkey == "step" else ""))
        if logx:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    if not any(len(d) for d in drawn):
        plt.close(fig)
        return None
    for ax in axes:
        robust_ylim(ax, drawn)
    axes[0].set_ylabel(f"{kind} loss" + (f" (EMA {smooth:g})" if kind == "train" and smooth
                                         else ""))
    bottom_legend(fig, axes[0])
    return to_png(fig)


def grad_figure(groups: list[Group], smooth: float, logx: bool) -> bytes | None:
    fig, axes = plt.subplots(1, 2, figsize=WIDE)
    drawn = []
    for g in groups:
        curves = [(e.run.metrics.train["step"], e.run.metrics.train["step"] + (1 if logx else 0),
                   e.run.metrics.train["grad_norm"]) for e in g.entries]
        drawn.append(draw(axes[0], g, curves, smooth, logx))
        curves = [(s, x, e.run.metrics.train["lr"]) for (s, x, _), e in zip(curves, g.entries)]
        draw(axes[1], g, curves, 0.0, logx, label=False)
    if not any(len(d) for d in drawn):
        plt.close(fig)
        return None
    axes[0].set_yscale("log")
    robust_ylim(axes[0], drawn, log=True)
    axes[0].set_ylabel("grad norm (before clipping)" + (f", EMA {smooth:g}" if smooth else ""))
    axes[1].set_ylabel("learning rate")
    for ax in axes:
        ax.set_xlabel("step + 1" if logx else "step")
        if logx:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    bottom_legend(fig, axes[0])
    return to_png(fig)


def throughput_figure(groups: list[Group]) -> bytes | None:
    rows = [(e.name, e.numbers.get("tokens_per_s", math.nan), g.color)
            for g in groups for e in g.entries]
    rows = [r for r in rows if math.isfinite(r[1])]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(12, 0.3 * len(rows) + 1.0))
    y = np.arange(len(rows))
    ax.barh(y, [r[1] for r in rows], color=[r[2] for r in rows])
    ax.set_yticks(y, [r[0] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("tokens/s (median over steps, warm-up left out)")
    ax.grid(axis="x", alpha=0.3)
    return to_png(fig)
