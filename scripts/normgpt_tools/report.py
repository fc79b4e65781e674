"""Writing the comparison report: index.html (self-contained, images inline as base64 PNG),
summary.csv (one row per run), summary_groups.csv and summary.md (the tables in Markdown)."""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import time
from pathlib import Path

from . import naming
from .compare_data import Entry, Group, Placeholder

STATUS_CLASS = {"completed": "ok", "running": "run", "diverged": "bad", "failed": "bad",
                "interrupted": "warn", "stopped": "warn", "empty": "dim", "pending": "dim"}


def fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if abs(x) >= 1e5 or (x != 0 and abs(x) < 10 ** -digits):
            return f"{x:.3e}"
        return f"{x:.{digits}f}"
    return str(x)


def fmt_big(x) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def mean_std(s, digits: int = 4) -> str:
    if s.n == 0:
        return "–"
    if s.n == 1:
        return fmt(s.mean, digits)
    return f"{fmt(s.mean, digits)} ± {fmt(s.std, digits)}"


def diff_text(g: Group, base: Group) -> str:
    if g is base:
        return "baseline"
    d = g.numbers["diff"]
    if not math.isfinite(d):
        return "–"
    w = g.numbers["welch"]
    n_a, n_b = g.numbers["final_val"].n, base.numbers["final_val"].n
    if w is None:
        return f"{d:+.4f} (n={n_a} vs {n_b}: no test)"
    return f"{d:+.4f} ± {w.se:.4f} (p={w.p:.2g}, n={n_a} vs {n_b})"


def run_rows(groups: list[Group]) -> list[dict]:
    rows = []
    for g in groups:
        for e in g.entries:
            n = e.numbers
            total = n["total_steps"]
            rows.append({
                "run": e.name, "group": g.label, "seed": e.seed, "status": e.status,
                "steps": n["steps"], "total_steps": total, "tokens": n["tokens"],
                "final_train_loss": n["final_train_loss"], "final_val_loss": n["final_val_loss"],
                "best_val_loss": n["best_val_loss"], "spikes": n["spikes"],
                "skipped_steps": n["skipped_steps"],
                "diverged": n["diverged"], "max_grad_norm": n["max_grad_norm"],
                "clipped_frac": n["clipped_frac"], "tokens_per_s": n["tokens_per_s"],
                "step_ms": n["step_ms"], "wall_s": n["wall_s"], "path": str(e.run.path)})
    return rows


def group_rows(groups: list[Group], base: Group) -> list[dict]:
    rows = []
    for g in groups:
        n = g.numbers
        w = n["welch"]
        rows.append({
            "group": g.label, "runs": n["n"], "diverged": n["n_diverged"],
            "running": n["n_running"],
            "final_val_mean": n["final_val"].mean, "final_val_std": n["final_val"].std,
            "best_val_mean": n["best_val"].mean, "best_val_std": n["best_val"].std,
            "diff_vs_baseline": n["diff"], "baseline": base.label,
            "welch_t": w.t if w else math.nan, "welch_p": w.p if w else math.nan,
            "spikes": n["spikes"], "tokens_per_s_mean": n["tokens_per_s"].mean})
    return rows


def write_csv(path: Path, rows: list[dict], extra_cols: dict[str, list] | None = None) -> None:
    if not rows:
        path.write_text("")
        return
    cols = list(rows[0]) + list(extra_cols or {})
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for i, r in enumerate(rows):
            vals = list(r.values()) + [v[i] for v in (extra_cols or {}).values()]
            w.writerow(["" if v is None or (isinstance(v, float) and math.isnan(v)) else
                        (json.dumps(v) if isinstance(v, (list, dict)) else v) for v in vals])


def markdown(groups: list[Group], base: Group, title: str) -> str:
    out = [f"# {title}", "", "## Groups (mean ± std over seeds; diverged runs left out)", "",
           "| group | runs | final val loss | best val loss | Δ final val vs baseline | spikes |",
           "|---|---:|---:|---:|---|---:|"]
    for g in groups:
        n = g.numbers
        runs = f"{n['n']}" + (f" ({n['n_diverged']} diverged)" if n["n_diverged"] else "") + \
            (f" ({n['n_running']} running)" if n["n_running"] else "")
        out.append(f"| {g.label} | {runs} | {mean_std(n['final_val'])} | "
                   f"{mean_std(n['best_val'])} | {diff_text(g, base)} | {n['spikes']} |")
    out += ["", "## Runs", "",
            "| run | status | steps | final train loss | final val loss | best val loss | "
            "spikes | tokens/s |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in run_rows(groups):
        out.append(f"| {r['run']} | {r['status']} | {r['steps']} | {fmt(r['final_train_loss'])} "
                   f"| {fmt(r['final_val_loss'])} | {fmt(r['best_val_loss'])} | {r['spikes']} | "
                   f"{fmt_big(r['tokens_per_s'])} |")
    out += ["", "Seeds are few: p is Welch's t-test on the final val loss, a rough guide only.", ""]
    return "\n".join(out)


# ---- HTML -------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1240px;
color:#222;padding:0 12px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
h3{font-size:15px}.meta{color:#666;font-size:13px}nav a{margin-right:12px;font-size:13px}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f4f4f4;cursor:pointer}td:first-child,th:first-child{text-align:left}
td.l{text-align:left}img{max-width:100%;display:block;margin:8px 0}
.ok{color:#1a7f37}.run{color:#0550ae;font-weight:600}.bad{color:#cf222e;font-weight:600}
.warn{color:#9a6700}.dim{color:#888}.note{font-size:13px;color:#444;max-width:950px}
#jserrors{display:none;background:#ffebe9;color:#cf222e;padding:8px;border:1px solid #cf222e}
.wide{overflow-x:auto}.swatch{display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:2px}
"""

HEAD_JS = """window.__reportErrors=[];window.addEventListener('error',function(e){
window.__reportErrors.push(String(e.message));var b=document.getElementById('jserrors');
if(b){b.style.display='block';b.textContent='JavaScript error: '+e.message;}});"""

TAIL_JS = """(function(){function key(td){var t=td.getAttribute('data-v');
if(t===null)t=td.textContent;var n=parseFloat(t);return isNaN(n)?t.toLowerCase():n;}
document.querySelectorAll('table.sortable th').forEach(function(th,i){
th.title='click to sort';th.addEventListener('click',function(){var tb=th.closest('table').tBodies[0];
var rows=Array.prototype.slice.call(tb.rows);var asc=th.getAttribute('data-asc')!=='1';
rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);if(typeof x!==typeof y){
x=String(x);y=String(y);}return (x<y?-1:x>y?1:0)*(asc?1:-1);});th.setAttribute('data-asc',asc?'1':'0');
rows.forEach(function(r){tb.appendChild(r);});});});
document.body.setAttribute('data-js',window.__reportErrors.length?'error':'ok');})();"""


def esc(x) -> str:
    return html.escape(str(x))


def table(head: list[str], rows: list[list], sortable: bool = True, left: int = 1) -> str:
    """rows: lists of cells; a cell is text, or (html, sort value)."""
    out = [f"<table class=\"{'sortable' if sortable else ''}\"><thead><tr>"]
    out += [f"<th>{esc(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>")
        for i, c in enumerate(r):
            cls = " class=\"l\"" if 0 < i < left else ""
            if isinstance(c, tuple):
                out.append(f"<td{cls} data-v=\"{esc(c[1])}\">{c[0]}</td>")
            else:
                out.append(f"<td{cls}>{esc(c)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def status_cell(status: str, note: str = "") -> tuple:
    t = f" title=\"{esc(note)}\"" if note else ""
    return (f"<span class=\"{STATUS_CLASS.get(status, '')}\"{t}>{esc(status)}</span>", status)


def img(png: bytes | None, alt: str) -> str:
    if not png:
        return f"<p class=\"note\">No data for: {esc(alt)}.</p>"
    return (f"<img alt=\"{esc(alt)}\" src=\"data:image/png;base64,"
            f"{base64.b64encode(png).decode()}\">")


def swatch(g: Group) -> str:
    c = {f"C{i}": v for i, v in enumerate(
        ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
         "#bcbd22", "#17becf"])}.get(g.color, "#999")
    return f"<span class=\"swatch\" style=\"background:{c}\"></span>{esc(g.label)}"


def config_table(entries: list[Entry], keys: list[str]) -> str:
    if not keys:
        return "<p class=\"note\">The runs' configs are identical.</p>"
    rows = [[e.name] + [naming.format_value(e.run.flat.get(k, "–")) for k in keys]
            for e in entries]
    return ("<div class=\"wide\">" + table(["run"] + keys, rows, left=len(keys) + 1)
            + "</div>")


def page(title: str, sections: list[tuple[str, str, str]], meta: str) -> str:
    nav = "".join(f"<a href=\"#{sid}\">{esc(name)}</a>" for sid, name, _ in sections)
    body = "".join(f"<section id=\"{sid}\"><h2>{esc(name)}</h2>{content}</section>"
                   for sid, name, content in sections)
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style><script>{HEAD_JS}</script></head>"
            f"<body><div id=\"jserrors\"></div><h1>{esc(title)}</h1><p class=\"meta\">{meta}</p>"
            f"<nav>{nav}</nav>{body}<script>{TAIL_JS}</script></body></html>\n")


def stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def placeholders_html(holders: list[Placeholder]) -> str:
    if not holders:
        return ""
    rows = [[h.name, status_cell(h.status), str(h.path or ""), h.note] for h in holders]
    return ("<h3>Runs without data (not plotted)</h3>"
            + table(["run", "status", "path", "note"], rows, left=4))
