"""Figures of the layer-stat rows of metrics.jsonl: residual RMS against depth at several steps
(the Peri-LN paper's hidden-state growth plot), per-layer gradient norms, update ratios, massive
activations and GeoNorm angles."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.ticker import MaxNLocator

from .compare_data import Entry, Group
from .plots import WIDE, aggregate, bottom_legend, draw, legend_label, plt, to_png

FIELDS = ("resid_rms_attn", "resid_rms", "max_abs_attn", "max_abs", "grad_norm", "update_ratio",
          "angle_attn", "angle_mlp", "clamped_attn", "clamped_mlp")


def layer_array(e: Entry, field: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps S, values S x L) of one field; NaN where a layer lacks it."""
    rows = e.run.metrics.layers
    if not rows:
        return np.zeros(0), np.zeros((0, 0))
    n_layer = max(len(r["layers"]) for r in rows)
    vals = np.full((len(rows), n_layer), np.nan)
    for i, r in enumerate(rows):
        layers = sorted(r["layers"], key=lambda d: d.get("layer", 0)) \
            if all(isinstance(d, dict) for d in r["layers"]) else []
        for j, d in enumerate(layers):
            v = d.get(field)
            if isinstance(v, bool):
                v = float(v)
            if isinstance(v, (int, float)):
                vals[i, j] = v
    return np.array([r["step"] for r in rows], dtype=float), vals


def has_field(groups: list[Group], field: str) -> bool:
    return any(np.isfinite(layer_array(e, field)[1]).any() for g in groups for e in g.entries)


def pick_steps(steps: np.ndarray, n: int) -> list[float]:
    if len(steps) <= n:
        return list(steps)
    idx = np.unique(np.round(np.linspace(0, len(steps) - 1, n)).astype(int))
    return [steps[i] for i in idx]


def profile_at(e: Entry, step: float, fields: tuple[str, str | None]):
    """Depth positions and values at one step: block outputs at l + 1 and, when the first field
    is given, the state after attention at l + 0.5 (interleaved)."""
    out_f, attn_f = fields
    s, v = layer_array(e, out_f)
    if len(s) == 0 or step not in s:
        return np.zeros(0), np.zeros(0)
    i = int(np.flatnonzero(s == step)[0])
    x, y = list(np.arange(v.shape[1]) + 1.0), list(v[i])
    if attn_f:
        sa, va = layer_array(e, attn_f)
        if step in sa and np.isfinite(va).any():
            j = int(np.flatnonzero(sa == step)[0])
            x += list(np.arange(va.shape[1]) + 0.5)
            y += list(va[j])
    order = np.argsort(x)
    return np.array(x)[order], np.array(y)[order]


def growth_figure(groups: list[Group], n_steps: int) -> bytes | None:
    """One panel per group: residual RMS against depth, a line per chosen step."""
    groups = [g for g in groups if any(e.run.metrics.layers for e in g.entries)]
    if not groups:
        return None
    ncols = min(4, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(12, 3.0 * nrows), squeeze=False,
                             sharey=True, layout="constrained")
    cmap = plt.get_cmap("viridis")
    for ax, g in zip(axes.flat, groups):
        steps = np.unique(np.concatenate([layer_array(e, "resid_rms")[0] for e in g.entries]))
        chosen = pick_steps(steps, n_steps)
        for k, st in enumerate(chosen):
            curves = []
            for e in g.entries:
                x, y = profile_at(e, st, ("resid_rms", "resid_rms_attn"))
                curves.append((x, x, y))
            x, mean, lo, hi = aggregate(curves)
            c = cmap(k / max(1, len(chosen) - 1))
            ax.plot(x, mean, "o-", ms=3, color=c, label=f"step {int(st)}")
            if len(g.entries) > 1:
                ax.fill_between(x, lo, hi, color=c, alpha=0.15, lw=0)
        ax.set_title(legend_label(g), fontsize=9)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("residual RMS")
    fig.supxlabel("depth: after block l at l+1, after its attention sublayer at l+0.5",
                  fontsize=9)
    return to_png(fig)


def depth_figure(groups: list[Group]) -> bytes | None:
    """Per-layer values at each run's last layer-stat step, one line per group."""
    panels = [("grad_norm", "per-layer grad norm"), ("max_abs", "max |activation|"),
              ("update_ratio", "update / weight ratio"), ("resid_rms", "residual RMS")]
    panels = [p for p in panels if has_field(groups, p[0])]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=WIDE, squeeze=False, layout="constrained")
    for ax, (field, title) in zip(axes[0], panels):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for g in groups:
            curves = []
            for e in g.entries:
                s, v = layer_array(e, field)
                if len(s):
                    x = np.arange(v.shape[1], dtype=float)
                    curves.append((x, x, v[-1]))
            if curves:
                draw(ax, g, curves, label=ax is axes[0][0], style="o-")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("layer")
        ax.grid(alpha=0.3)
    bottom_legend(fig, axes[0][0])
    return to_png(fig)


def time_figure(groups: list[Group]) -> bytes | None:
    """Over training: the largest activation over layers, and the last block's residual RMS."""
    panels = [("max_abs", np.nanmax, "max over layers of max |activation|"),
              ("resid_rms", lambda v, axis: v[:, -1], "residual RMS after the last block")]
    panels = [p for p in panels if has_field(groups, p[0])]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=WIDE, squeeze=False, layout="constrained")
    for ax, (field, reduce, title) in zip(axes[0], panels):
        for g in groups:
            curves = []
            for e in g.entries:
                s, v = layer_array(e, field)
                if len(s):
                    with np.errstate(all="ignore"):
                        curves.append((s, s, reduce(v, axis=1)))
            draw(ax, g, curves, label=ax is axes[0][0])
        ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    bottom_legend(fig, axes[0][0])
    return to_png(fig)


def angle_figure(groups: list[Group]) -> bytes | None:
    """GeoNorm: the rotation angles per layer (attention solid, MLP dashed) at the last step, and
    their mean over layers against step."""
    groups = [g for g in groups if has_field([g], "angle_attn") or has_field([g], "angle_mlp")]
    if not groups:
        return None
    fig, axes = plt.subplots(1, 2, figsize=WIDE, layout="constrained")
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    for g in groups:
        for field, style in (("angle_attn", "o-"), ("angle_mlp", "s--")):
            depth, time = [], []
            for e in g.entries:
                s, v = layer_array(e, field)
                if len(s) and np.isfinite(v).any():
                    x = np.arange(v.shape[1], dtype=float)
                    depth.append((x, x, v[-1]))
                    with np.errstate(all="ignore"):
                        time.append((s, s, np.nanmean(v, axis=1)))
            if depth:
                draw(axes[0], g, depth, style=style, label=field == "angle_attn")
                draw(axes[1], g, time, style=style.replace("o", "").replace("s", ""),
                     label=False)
    axes[0].set_title("angle per layer at the last step (solid attention, dashed MLP)",
                      fontsize=9)
    axes[0].set_xlabel("layer")
    axes[1].set_title("mean angle over layers", fontsize=9)
    axes[1].set_xlabel("step")
    for ax in axes:
        ax.set_ylabel("radians")
        ax.grid(alpha=0.3)
    bottom_legend(fig, axes[0])
    return to_png(fig)
